"""Send one day's issue to every active subscriber, exactly once, resumable after any crash.

Stages: load (issue, subscribers) -> select (pure) -> enqueue (bulk rows) -> render (the day's
shared body, once per variant) -> send (batches of up to the backend's maximum, one body each,
``delivery.concurrency`` in flight, claimed and recorded in waves: ``waves.run_waves``). Each
recipient's own papers, keywords and counts travel as substitutions that refer to the body's
card sections, so subscribers with different selections share one body and one request. A
backend that cannot take sections (SendGrid with ``delivery.sendgrid_sections`` off), or a
recipient whose substitutions would break SendGrid's 10,000-byte limit, gets a body expanded
for its batch instead (one per distinct selection, in the worker that sends it). The outbox
module's state machine makes a rerun safe at any point; see its docstring for the in-flight
window and ``delivery.in_flight_policy``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter.config import Settings
from newsletter.delivery import outbox
from newsletter.delivery.backends import Backend, Batch, Outcome, Recipient, Sender, make_backend
from newsletter.delivery.outbox import NewDelivery, Pending
from newsletter.delivery.suppression import blocked_ids
from newsletter.delivery.waves import run_waves
from newsletter.domain import IssueView, Summary
from newsletter.email import tags
from newsletter.email.headers import digest_headers, list_id, new_message_id
from newsletter.email.loading import Audience, active_prefs, selections_for
from newsletter.email.render import (
    DigestRenderer,
    RenderedEmail,
    link_substitutions,
    personalise,
    shared_content,
)
from newsletter.email.shared import with_feedback
from newsletter.models import IssueRow, utcnow
from subscribers.links import feedback_token, link_keys, preferences_url, unsubscribe_url
from subscribers.rhythm import effective_language

log = logging.getLogger(__name__)
Sleep = Callable[[float], None]
ISSUES = IssueRow.__table__.c  # type: ignore[attr-defined]


class SendError(Exception):
    """The issue cannot be sent (no such issue, bad configuration)."""


@dataclass
class SendReport:
    """What one run did. Counts are this run's; ``totals`` are the issue's rows after it."""

    issue_date: dt.date
    backend: str
    recipients: int = 0
    no_match: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    unknown: int = 0
    deferred: int = 0
    batches: int = 0
    waves: int = 0  # claim transactions (each covers up to ``delivery.concurrency`` batches)
    requests: int = 0
    distinct_bodies: int = 0
    stopped: bool = False
    in_flight: list[Pending] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.totals.get("queued") and not self.totals.get("sending")


@dataclass(frozen=True, slots=True)
class _Item:
    """One recipient of a batch; ``slots`` are their substitutions for the shared body (empty
    when their batch's body was expanded for them beforehand)."""

    pending: Pending
    email: str
    slots: Mapping[str, str]


# A body variant: (include_summaries, the reader's language).
Variant = tuple[bool, str]
# A batch's body: (variant, None) for the shared body, or
# (variant, the slot values it was expanded with).
BodyKey = tuple[Variant, tuple[tuple[str, str], ...] | None]


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


def _issue_id(engine: Engine, issue_date: dt.date) -> int:
    with engine.connect() as conn:
        found = conn.execute(
            select(ISSUES.id).where(ISSUES.date == issue_date, ISSUES.kind == "daily")
        ).scalar()
    if found is None:
        raise SendError(f"no issue for {issue_date.isoformat()}: build it first")
    return int(found)


def _set_issue_status(engine: Engine, issue_id: int, status: str) -> None:
    values: dict[str, Any] = {"status": status, "updated_at": utcnow()}
    if status == "sent":
        values["sent_at"] = utcnow()
    with engine.begin() as conn:
        conn.execute(update(IssueRow.__table__).where(ISSUES.id == issue_id).values(**values))  # type: ignore[attr-defined]


def _load_view(engine: Engine, issue_date: dt.date) -> IssueView:
    from newsletter.issue_store import load_issue

    with Session(engine) as session:
        view: IssueView | None = load_issue(session, issue_date)
    if view is None:
        raise SendError(f"no issue for {issue_date.isoformat()}: build it first")
    return view


@dataclass(frozen=True, slots=True)
class _Job:
    """A claimed batch: the key of its body and the recipients whose rows are now ``sending``."""

    key: BodyKey
    items: Sequence[_Item]


Results = list[tuple[int, Outcome]]  # (delivery id, outcome) of one batch


class _Sender:
    """What ``waves.run_waves`` does for one issue: a step (record the outcomes that arrived and
    claim the next wave, one transaction) in the dispatcher, and one batch's request in a
    worker (its body is expanded there, so the dispatcher's loop stays short)."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        backend: Backend,
        report: SendReport,
        render: Callable[[BodyKey], RenderedEmail],
        categories: tuple[str, ...],
        keys: Mapping[int, str],
    ) -> None:
        self.engine, self.settings, self.backend = engine, settings, backend
        self.keys = keys  # subscriber id -> link key: every digest brings fresh, dated links
        self.report, self.render, self.categories = report, render, categories
        self.policy = settings.delivery.in_flight_policy
        s = settings
        self.sender = Sender(s.email.from_email, s.email.from_name, s.email.reply_to)
        self.list_id = list_id(s)

    def recipient(self, item: _Item) -> Recipient:
        sid = item.pending.subscriber_id
        key = self.keys[sid]
        links = link_substitutions(
            {
                "unsubscribe_url": unsubscribe_url(self.settings, sid, key),
                "preferences_url": preferences_url(self.settings, sid, key),
            }
        )
        headers = digest_headers(
            self.settings,
            to=item.email,
            unsubscribe_url=links["-unsubscribe_url-"],
            message_id=item.pending.message_id,
        )
        return Recipient(
            email=item.email,
            message_id=item.pending.message_id,
            substitutions=with_feedback(
                {**item.slots, **links}, feedback_token(self.settings, sid, key)
            ),
            headers={k: v for k, v in headers.items() if k.startswith("List-") and k != "List-Id"},
        )

    def step(
        self, results: Sequence[Results], wave: Sequence[tuple[BodyKey, list[_Item]]]
    ) -> list[_Job | None]:
        """Record ``results``, re-check suppression for ``wave`` and claim it: one commit, made
        before any of the wave's requests."""
        flat = [r for batch in results for r in batch]
        items = [i for _, batch in wave for i in batch]
        with self.engine.begin() as conn:
            outbox.record(conn, flat, self.policy)
            blocked = (
                blocked_ids(conn, [i.pending.subscriber_id for i in items]) if items else set()
            )
            skipped = [i.pending.delivery_id for i in items if i.pending.subscriber_id in blocked]
            if skipped:
                outbox.mark(conn, skipped, "skipped", "suppressed or no longer active")
            claimed = outbox.claim(
                conn,
                [i.pending.delivery_id for i in items if i.pending.subscriber_id not in blocked],
            )
        r = self.report
        r.batches += len(wave)
        r.skipped += len(skipped)
        for _, outcome in flat:
            target = outbox.status_after(outcome, self.policy)
            if target == "queued":
                r.deferred += 1
            else:
                setattr(r, target, getattr(r, target) + 1)
        jobs: list[_Job | None] = []
        for key, batch in wave:
            live = [i for i in batch if i.pending.delivery_id in claimed]
            jobs.append(_Job(key, live) if live else None)
        return jobs

    def send(self, job: _Job) -> Results:
        """One batch's request(s); never raises for a bad recipient or a provider problem."""
        try:
            recipients = tuple(self.recipient(i) for i in job.items)
            batch = Batch(
                content=self.render(job.key),
                recipients=recipients,
                sender=self.sender,
                headers={"List-Id": self.list_id},
                categories=self.categories,
            )
            outcomes = self.backend.send_batch(batch)
        except Exception as exc:  # a bug or bad data: record it, keep the other batches going
            log.exception("batch of %d failed before sending", len(job.items))
            outcomes = {
                i.pending.message_id: Outcome("retry", error=f"{type(exc).__name__}: {exc}")
                for i in job.items
            }
        return [
            (i.pending.delivery_id, outcomes.get(i.pending.message_id, Outcome("unknown")))
            for i in job.items
        ]


def _json_size(value: Mapping[str, str]) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


def _links_size(settings: Settings) -> int:
    """Room kept for a recipient's two links in the substitutions limit (a long id's links)."""
    try:
        links = {
            "-unsubscribe_url-": unsubscribe_url(settings, 10**15, "k" * 32),
            "-preferences_url-": preferences_url(settings, 10**15, "k" * 32),
            "-feedback_token-": feedback_token(settings, 10**15, "k" * 32),
        }
    except ValueError:  # no secret key: the recipients fail later with that message
        return 1000
    return _json_size(links) + 64


def _feedback_size(settings: Settings, subs: Mapping[str, str]) -> int:
    """Room for the reader's feedback token in each of their cards (put in per recipient)."""
    uses = sum(subs.get(k, "").count(tags.FEEDBACK) for k in (tags.CARDS, tags.TEXT_CARDS))
    if not uses:
        return 0
    try:
        return uses * len(feedback_token(settings, 10**15, "k" * 32))
    except ValueError:
        return uses * 300


def plan_batches(
    groups: Mapping[Any, list[_Item]], max_batch: int
) -> list[tuple[Any, list[_Item]]]:
    """Chunks of at most ``max_batch`` recipients, each sharing one body."""
    out: list[tuple[Any, list[_Item]]] = []
    for key, items in groups.items():
        for start in range(0, len(items), max_batch):
            out.append((key, items[start : start + max_batch]))
    return out


def send_issue(
    engine: Engine,
    settings: Settings,
    issue_date: dt.date,
    *,
    view: IssueView | None = None,
    summaries: Mapping[str, Summary] | None = None,
    translations: Mapping[str, Mapping[str, Summary]] | None = None,
    environ: Mapping[str, str] | None = None,
    backend: Backend | None = None,
    sleep: Sleep = time.sleep,
    stop: threading.Event | None = None,
    audience: Audience | None = None,
    issue_id: int | None = None,
) -> SendReport:
    """Deliver the issue of ``issue_date`` to every active subscriber not yet sent to.

    Safe to call again after a crash or a ``stop``: it sends what is still queued and applies
    ``delivery.in_flight_policy`` to rows a crashed run left ``sending``. ``audience`` is the
    run's already computed selections (suppression is re-checked before each wave anyway).
    ``translations`` are the summaries of each reader language other than the site's (a reader
    of a language without them reads ``summaries``); ``issue_id`` names the issue row when it
    is not the day issue of ``issue_date`` (a weekly e-mail's, see ``newsletter.rhythm.weekly``).
    """
    stop = stop or threading.Event()
    chosen = backend or make_backend(settings, environ, sleep=sleep)
    report = SendReport(issue_date=issue_date, backend=chosen.name)
    t = report.timings
    try:
        with _timed(t, "load"):
            issue_id = issue_id if issue_id is not None else _issue_id(engine, issue_date)
            view = view or _load_view(engine, issue_date)
        if audience is None:
            with _timed(t, "load"):
                everyone = active_prefs(engine)
            with _timed(t, "select"):
                audience = Audience(everyone, selections_for(engine, view, everyone, settings))
        prefs, selections = audience.prefs, audience.selections
        report.no_match = len(prefs) - len(selections)
        emails = {p.id: p.email for p in prefs}
        languages = {p.id: effective_language(p.language, settings) for p in prefs}
        site_language = settings.ai_summary.language
        summary_sets = {site_language: summaries or {}, **(translations or {})}
        with _timed(t, "enqueue"):
            _set_issue_status(engine, issue_id, "sending")
            new = [
                NewDelivery(sid, new_message_id(settings, issue_date, sid)) for sid in selections
            ]
            outbox.enqueue(engine, issue_id, new)
            report.in_flight = outbox.resolve_in_flight(
                engine, issue_id, settings.delivery.in_flight_policy
            )
            for row in report.in_flight:
                log.warning(
                    "in flight when a previous run stopped (policy %s): delivery %d, "
                    "subscriber %d, %s",
                    settings.delivery.in_flight_policy,
                    row.delivery_id,
                    row.subscriber_id,
                    row.message_id,
                )
            pending = outbox.queued(engine, issue_id)
        renderer = DigestRenderer(settings)
        with _timed(t, "render"):
            wanted: set[Variant] = {
                (sel.include_summaries, languages.get(sid, site_language))
                for sid, sel in selections.items()
            }
            bodies = {
                variant: renderer.shared(
                    view,
                    summary_sets.get(variant[1], summary_sets[site_language]),
                    variant[0],
                    variant[1],
                )
                for variant in wanted
            }
        sections_ok = chosen.sections
        limit = chosen.substitution_limit
        margin = _links_size(settings)
        # per (Selection, language): slots, fits
        slots_of: dict[tuple[int, str], tuple[dict[str, str], bool]] = {}
        groups: dict[BodyKey, list[_Item]] = defaultdict(list)
        gone: list[int] = []
        for row in pending:
            selection = selections.get(row.subscriber_id)
            if selection is None:
                gone.append(row.delivery_id)
                continue
            variant = (selection.include_summaries, languages.get(row.subscriber_id, site_language))
            known = slots_of.get((id(selection), variant[1]))
            if known is None:
                subs = bodies[variant].substitutions(selection)
                size = _json_size(subs) + margin + _feedback_size(settings, subs)
                fits = sections_ok and (limit is None or size <= limit)
                known = slots_of[(id(selection), variant[1])] = (subs, fits)
            slots, fits = known
            email = emails[row.subscriber_id]
            if fits:
                groups[(variant, None)].append(_Item(row, email, slots))
            else:
                groups[(variant, tuple(slots.items()))].append(_Item(row, email, {}))
        if gone:
            outbox.mark(engine, gone, "skipped", "no longer active or nothing matched")
            report.skipped += len(gone)
        report.recipients = sum(len(v) for v in groups.values())
        report.distinct_bodies = len(groups)
        categories = ("digest", f"digest-{issue_date.isoformat()}")
        render_lock = threading.Lock()

        def render(key: BodyKey) -> RenderedEmail:
            """A batch's body, expanded in the worker that sends it and dropped with the batch,
            so memory holds the bodies in flight, not one per distinct selection. Its CPU time
            is added to the ``render`` stage (it overlaps ``send``, which includes it)."""
            variant, expanded = key
            content = shared_content(bodies[variant])
            if expanded is None:
                return content
            started = time.thread_time()
            content = personalise(content, dict(expanded))
            with render_lock:
                t["render"] = t.get("render", 0.0) + time.thread_time() - started
            return content

        with _timed(t, "send"):
            keys = link_keys(engine, emails)
            runner = _Sender(engine, settings, chosen, report, render, categories, keys)
            report.waves = run_waves(
                plan_batches(groups, chosen.max_batch),
                concurrency=settings.delivery.concurrency,
                step=runner.step,
                send=runner.send,
                stop=stop,
            )
        report.stopped = stop.is_set()
        report.requests = report.batches if chosen.requests is None else chosen.requests
        report.totals = outbox.counts(engine, issue_id)
        if report.complete:
            _set_issue_status(engine, issue_id, "sent")
    finally:
        if backend is None:
            chosen.close()
    return report
