"""Send one day's issue to every active subscriber, exactly once, resumable after any crash.

Stages: load (issue, subscribers) -> select (pure) -> enqueue (bulk rows) -> render (the day's
shared body, once per variant) -> plan (each reader's slots, grouped by body) -> send (batches
of up to the backend's maximum, one body each, ``delivery.concurrency`` in flight, claimed and
recorded in waves: ``waves.run_waves``; each batch prepared by ``newsletter.delivery.prepare``,
in separate processes for a large SendGrid send). Each
recipient's own papers, keywords and counts travel as substitutions that refer to the body's
card sections, so subscribers with different selections share one body and one request. A
backend that cannot take sections (SendGrid with ``delivery.sendgrid_sections`` off), or a
recipient whose substitutions would break SendGrid's 10,000-byte limit, gets a body expanded
for its batch instead (one per distinct selection, where its batch is prepared). The outbox
module's state machine makes a rerun safe at any point; see its docstring for the in-flight
window and ``delivery.in_flight_policy``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import multiprocessing
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter.config import Settings
from newsletter.delivery import outbox, prepare
from newsletter.delivery.backends import Backend, Outcome, Sender, make_backend
from newsletter.delivery.backends.sendgrid import Prepared, SendGridBackend
from newsletter.delivery.outbox import NewDelivery, Pending
from newsletter.delivery.prepare import BodyKey, Context, Item, Job, Variant
from newsletter.delivery.suppression import blocked_ids
from newsletter.delivery.waves import run_waves
from newsletter.domain import IssueView, Summary
from newsletter.email import tags
from newsletter.email.headers import list_id, new_message_id
from newsletter.email.loading import Audience, active_prefs, selections_for
from newsletter.email.render import DigestRenderer, Expander, shared_content
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


Results = list[tuple[int, Outcome]]  # (delivery id, outcome) of one batch


PreparedJob = tuple[Prepared, float]  # a batch's requests, and the seconds spent expanding it


@dataclass(frozen=True, slots=True)
class _Claimed:
    """A claimed batch, with the task of a preparing process that makes its requests (None: it
    is prepared where it is sent) and its place among that task's batches."""

    job: Job
    prepared: Future[list[PreparedJob]] | None = None
    index: int = 0


class _Sender:
    """What ``waves.run_waves`` does for one issue: a step (record the outcomes that arrived and
    claim the next wave, one transaction) in the dispatcher, and one batch's request in a
    worker. A batch is prepared (``newsletter.delivery.prepare``: links, body, request bytes)
    in the worker, or for a large SendGrid send in the preparing processes, so the dispatcher's
    loop stays short."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        backend: Backend,
        report: SendReport,
        ctx: Context,
        pool: Executor | None,
    ) -> None:
        self.engine, self.backend, self.report = engine, backend, report
        self.ctx, self.pool = ctx, pool
        self.policy = settings.delivery.in_flight_policy
        self.processes = max(1, settings.delivery.prepare_processes)
        self._render_lock = threading.Lock()

    def step(
        self, results: Sequence[Results], wave: Sequence[tuple[BodyKey, list[Item]]]
    ) -> list[_Claimed | None]:
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
        jobs: list[Job | None] = []
        for key, batch in wave:
            live = [i for i in batch if i.pending.delivery_id in claimed]
            jobs.append(Job(key, live) if live else None)
        return self._to_prepare(jobs)

    def _to_prepare(self, jobs: list[Job | None]) -> list[_Claimed | None]:
        """The wave's jobs, handed to the preparing processes now (a few tasks a wave, not one
        a batch: each task costs the parent a round trip) when there are any."""
        live = [j for j in jobs if j is not None]
        ahead: dict[int, tuple[Future[list[PreparedJob]], int]] = {}
        if self.pool is not None and live:
            share = -(-len(live) // self.processes)
            try:
                for start in range(0, len(live), share):
                    chunk = live[start : start + share]
                    future = self.pool.submit(prepare.sendgrid_requests_here, chunk)
                    ahead.update({id(job): (future, n) for n, job in enumerate(chunk)})
            except Exception as exc:  # claimed already: these batches must still go out
                self._lost_preparers(exc)  # the rest are prepared where they are sent
        return [None if j is None else _Claimed(j, *ahead.get(id(j), (None, 0))) for j in jobs]

    def _lost_preparers(self, exc: BaseException) -> None:
        """A preparing process died (killed, out of memory): its batches are prepared by the
        sending threads from now on. Preparing has no side effect, so nothing is lost or sent
        twice; the send only gets slower."""
        if self.pool is not None:
            log.warning(
                "a preparing process stopped (%s); the sending threads prepare the rest", exc
            )
            self.pool = None

    def _outcomes(self, claimed: _Claimed) -> dict[str, Outcome]:
        """Prepare the batch (here, or take what a preparing process made of it) and send it."""
        backend, job = self.backend, claimed.job
        if isinstance(backend, SendGridBackend):
            made: PreparedJob | None = None
            if claimed.prepared is not None:
                try:
                    made = claimed.prepared.result()[claimed.index]
                except BrokenExecutor as exc:
                    self._lost_preparers(exc)
            prepared, spent = made or prepare.sendgrid_requests(self.ctx, job)
            self._rendered(spent)
            return backend.deliver(prepared)
        batch, spent = prepare.batch(self.ctx, job)
        self._rendered(spent)
        return backend.send_batch(batch)

    def _rendered(self, seconds: float) -> None:
        """Bodies are expanded in the workers: their CPU time is added to the ``render`` stage
        (it overlaps ``send``, which includes it)."""
        if seconds:
            with self._render_lock:
                t = self.report.timings
                t["render"] = t.get("render", 0.0) + seconds

    def send(self, claimed: _Claimed) -> Results:
        """One batch's request(s); never raises for a bad recipient or a provider problem."""
        job = claimed.job
        try:
            outcomes = self._outcomes(claimed)
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


def _feedback_token_size(settings: Settings) -> int:
    """The length of a reader's feedback token (a long id's), as it goes in their cards."""
    try:
        return len(feedback_token(settings, 10**15, "k" * 32))
    except ValueError:  # no secret key: the recipients fail later with that message
        return 300


def _feedback_size(token_size: int, subs: Mapping[str, str]) -> int:
    """Room for the reader's feedback token in each of their cards (put in per recipient)."""
    uses = sum(subs.get(k, "").count(tags.FEEDBACK) for k in (tags.CARDS, tags.TEXT_CARDS))
    return uses * token_size


def plan_batches(groups: Mapping[Any, list[Item]], max_batch: int) -> list[tuple[Any, list[Item]]]:
    """Chunks of at most ``max_batch`` recipients, each sharing one body."""
    out: list[tuple[Any, list[Item]]] = []
    for key, items in groups.items():
        for start in range(0, len(items), max_batch):
            out.append((key, items[start : start + max_batch]))
    return out


@contextmanager
def _preparers(backend: Backend, ctx: Context, batches: int) -> Iterator[Executor | None]:
    """The preparing processes of a large SendGrid send (``delivery.prepare_processes``, from
    ``delivery.prepare_min_batches`` batches on: starting one costs about half a second), or
    None: each sending thread prepares its own batches. Spawned, not forked: the parent has
    threads and open database connections."""
    d = ctx.settings.delivery
    if (
        not isinstance(backend, SendGridBackend)
        or d.prepare_processes < 1
        or batches < d.prepare_min_batches
    ):
        yield None
        return
    try:
        pool = ProcessPoolExecutor(
            max_workers=d.prepare_processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=prepare.start_process,
            initargs=(ctx,),
        )
    except OSError as exc:  # no process can be made here (no /dev/shm, a process limit)
        log.warning("no preparing process (%s); the sending threads prepare every batch", exc)
        yield None
        return
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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
        token_room = _feedback_token_size(settings)
        # per (Selection, language): slots, fits
        slots_of: dict[tuple[int, str], tuple[dict[str, str], bool]] = {}
        groups: dict[BodyKey, list[Item]] = defaultdict(list)
        gone: list[int] = []
        with _timed(t, "plan"):
            for row in pending:
                selection = selections.get(row.subscriber_id)
                if selection is None:
                    gone.append(row.delivery_id)
                    continue
                language = languages.get(row.subscriber_id, site_language)
                variant = (selection.include_summaries, language)
                known = slots_of.get((id(selection), language))
                if known is None:
                    subs = bodies[variant].substitutions(selection)
                    # Sections off: every body is expanded, whatever the size of its slots.
                    fits = sections_ok and (
                        limit is None
                        or _json_size(subs) + margin + _feedback_size(token_room, subs) <= limit
                    )
                    known = slots_of[(id(selection), language)] = (subs, fits)
                slots, fits = known
                email = emails[row.subscriber_id]
                if fits:
                    groups[(variant, None)].append(Item(row, email, slots))
                else:
                    groups[(variant, tuple(slots.items()))].append(Item(row, email, {}))
        if gone:
            outbox.mark(engine, gone, "skipped", "no longer active or nothing matched")
            report.skipped += len(gone)
        report.recipients = sum(len(v) for v in groups.values())
        report.distinct_bodies = len(groups)
        batches = plan_batches(groups, chosen.max_batch)
        with _timed(t, "send"):
            s = settings
            contents = {variant: shared_content(body) for variant, body in bodies.items()}
            ctx = Context(
                settings=s,
                keys=link_keys(engine, emails),
                contents=contents,
                expanders={variant: Expander.of(c) for variant, c in contents.items()},
                sender=Sender(s.email.from_email, s.email.from_name, s.email.reply_to),
                list_id=list_id(s),
                categories=("digest", f"digest-{issue_date.isoformat()}"),
                sandbox=s.delivery.sandbox_mode,
                sections=sections_ok,
            )
            with _preparers(chosen, ctx, len(batches)) as pool:
                runner = _Sender(engine, settings, chosen, report, ctx, pool)
                report.waves = run_waves(
                    batches,
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
