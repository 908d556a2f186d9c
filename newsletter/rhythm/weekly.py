"""The weekly e-mail: one per weekly reader with the run of ``delivery.weekly_weekday``.

How a weekly e-mail is represented: an ``issues`` row of kind ``weekly`` for the date of the run
that sends it (no papers of its own). Its ``deliveries`` rows are the weekly readers' e-mails,
so the outbox's unique (issue, subscriber) and state machine give exactly-once and resume after
a crash exactly as for a day's issue. Readers who switched from weekly to daily get their
missed days once, in an issue row of kind ``catch-up`` for that run's date.

Rules (docs/cadence-language.md):
- the week's day T is the latest ``weekly_weekday`` on or before the run's date D; the run of D
  is the week's run when D is T, or when arXiv announced nothing on T (no day issue from T to D
  while there were issues before T: the next run sends it), and no ``weekly`` row exists for a
  date in [T, D) (a rerun of D resumes it);
- a reader's window is every day issue after the last e-mail they actually got (status ``sent``
  or ``unknown``, daily, weekly or catch-up) up to D; never e-mailed: the last seven days;
- their papers are chosen by ``select_all`` (the daily readers' function: their keywords,
  categories and maximum) over the window's papers merged into one view, each paper once
  (its latest day), labelled with its day;
- a daily reader whose last e-mail was a weekly one and who got nothing since gets the days in
  between (not D, which their daily e-mail of D carries) in a catch-up e-mail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter.config import WEEKDAYS, Settings
from newsletter.delivery.models import Delivery
from newsletter.domain import IssueEntry, IssueView
from newsletter.email.loading import Audience, active_prefs
from newsletter.email.selection import Selection, SubscriberPrefs, select_all
from newsletter.models import IssueRow, utcnow

log = logging.getLogger(__name__)

WEEKLY = "weekly"
CATCH_UP = "catch-up"
FIRST_WINDOW_DAYS = 7  # a reader never e-mailed before gets this many days
RECEIVED = ("sent", "unknown")  # "unknown": may have arrived; never sent again, so it counts
ISSUES = IssueRow.__table__  # type: ignore[attr-defined]
DELIVERIES = Delivery.__table__  # type: ignore[attr-defined]


def week_day(day: dt.date, weekday: str) -> dt.date:
    """The latest ``weekday`` ("fri") on or before ``day``."""
    target = WEEKDAYS.index(weekday)
    return day - dt.timedelta(days=(day.weekday() - target) % 7)


def merge_days(day: dt.date, views: Sequence[IssueView], kind: str = WEEKLY) -> IssueView:
    """Several day issues as one view dated ``day``: each paper once (its latest day), every
    entry labelled with its day; the digest is the days' digests by score (ties: oldest day)."""
    latest: dict[str, IssueEntry] = {}
    for view in sorted(views, key=lambda v: v.date):
        for entry in view.pool:
            latest.pop(entry.paper.arxiv_id, None)
            latest[entry.paper.arxiv_id] = dataclasses.replace(entry, day=view.date)
    in_digest = {e.paper.arxiv_id for v in views for e in v.digest}
    order = list(latest)
    position = {a: i for i, a in enumerate(order)}
    digest = sorted(
        (latest[a] for a in order if a in in_digest),
        key=lambda e: (-e.score, position[e.paper.arxiv_id]),
    )
    categories: dict[str, None] = {}
    for view in views:
        categories.update(dict.fromkeys(view.categories))
    return IssueView(
        date=day,
        papers_found=sum(v.papers_found for v in views),
        categories=tuple(categories),
        digest=tuple(digest),
        pool=tuple(latest.values()),
        kind=kind,
        days=tuple(sorted(v.date for v in views)),
    )


def window_of(merged: IssueView, days: Iterable[dt.date]) -> IssueView:
    """The part of a merged view whose entries came from ``days`` (the same entry objects)."""
    keep = set(days)
    return dataclasses.replace(
        merged,
        digest=tuple(e for e in merged.digest if e.day in keep),
        pool=tuple(e for e in merged.pool if e.day in keep),
        days=tuple(d for d in merged.days if d in keep),
    )


def last_received(
    engine: Engine,
    subscriber_ids: Sequence[int] | None,
    *,
    before: dt.date | None = None,
    kind: str | None = None,
) -> dict[int, dt.date]:
    """Per reader (``None``: everyone), the date of the newest e-mail they actually got (of
    any kind of issue, or of ``kind``; dated before ``before`` when given)."""
    out: dict[int, dt.date] = {}
    base = (
        select(DELIVERIES.c.subscriber_id, func.max(ISSUES.c.date))
        .join(ISSUES, ISSUES.c.id == DELIVERIES.c.issue_id)
        .where(DELIVERIES.c.status.in_(RECEIVED))
        .group_by(DELIVERIES.c.subscriber_id)
    )
    if before is not None:
        base = base.where(ISSUES.c.date < before)
    if kind is not None:
        base = base.where(ISSUES.c.kind == kind)
    with engine.connect() as conn:
        if subscriber_ids is None:
            return {sid: day for sid, day in conn.execute(base).all()}
        ids = list(subscriber_ids)
        for start in range(0, len(ids), 900):
            query = base.where(DELIVERIES.c.subscriber_id.in_(ids[start : start + 900]))
            out.update({sid: day for sid, day in conn.execute(query).all()})
    return out


def _day_dates(engine: Engine, after: dt.date, until: dt.date) -> list[dt.date]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(ISSUES.c.date)
                .where(ISSUES.c.kind == "daily", ISSUES.c.date > after, ISSUES.c.date <= until)
                .order_by(ISSUES.c.date)
            ).scalars()
        )


def is_week_run(engine: Engine, settings: Settings, day: dt.date) -> bool:
    """Whether the run of ``day`` is the week's weekly run (or a rerun of it): ``day`` is the
    week's day T, or T had no announcement (no day issue from T to ``day``, while the site
    already had issues before T) and no weekly e-mail went out since T."""
    start = week_day(day, settings.delivery.weekly_weekday)
    with engine.connect() as conn:
        earlier = conn.execute(
            select(ISSUES.c.id).where(
                ISSUES.c.kind == WEEKLY, ISSUES.c.date >= start, ISSUES.c.date < day
            )
        ).first()
        if earlier is not None:
            return False
        if day == start:
            return True
        between = conn.execute(
            select(ISSUES.c.id).where(
                ISSUES.c.kind == "daily", ISSUES.c.date >= start, ISSUES.c.date < day
            )
        ).first()
        before = conn.execute(
            select(ISSUES.c.id).where(ISSUES.c.kind == "daily", ISSUES.c.date < start)
        ).first()
    return between is None and before is not None


def issue_row(engine: Engine, day: dt.date, kind: str, categories: Sequence[str]) -> int:
    """The id of the (``day``, ``kind``) issue row, created once (insert-or-ignore)."""
    values = {
        "date": day,
        "kind": kind,
        "created_at": utcnow(),
        "updated_at": utcnow(),
        "papers_found": 0,
        "papers_selected": 0,
        "categories": list(categories),
        "source": kind[:16],
        "status": "built",
    }
    dialect = engine.dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(ISSUES).values(**values).on_conflict_do_nothing(index_elements=["date", "kind"])
    with engine.begin() as conn:
        conn.execute(stmt)
        found = conn.execute(
            select(ISSUES.c.id).where(ISSUES.c.date == day, ISSUES.c.kind == kind)
        ).scalar_one()
    return int(found)


def _finish_empty(engine: Engine, issue_id: int) -> None:
    """Nobody had a paper this time: the row is done (nothing to resume)."""
    with engine.begin() as conn:
        conn.execute(
            update(ISSUES)
            .where(ISSUES.c.id == issue_id, ISSUES.c.status != "sent")
            .values(status="sent", sent_at=utcnow(), updated_at=utcnow())
        )


def unfinished(engine: Engine, day: dt.date) -> bool:
    """Whether a weekly or catch-up e-mail of ``day`` is still to be sent (a run died in the
    weekly step after the day's own issue went out): the day must be run again."""
    with engine.connect() as conn:
        found = conn.execute(
            select(ISSUES.c.id).where(
                ISSUES.c.date == day, ISSUES.c.kind != "daily", ISSUES.c.status != "sent"
            )
        ).first()
    return found is not None


@dataclass
class Plan:
    """Who gets which days in one kind of e-mail of this run."""

    kind: str
    windows: dict[int, tuple[dt.date, ...]] = field(default_factory=dict)  # reader -> days


def plan_weekly(
    engine: Engine, settings: Settings, day: dt.date, readers: Sequence[SubscriberPrefs]
) -> Plan:
    """Weekly readers' windows when the run of ``day`` is the week's run (empty otherwise)."""
    plan = Plan(WEEKLY)
    if not readers or not is_week_run(engine, settings, day):
        return plan
    last = last_received(engine, [r.id for r in readers])
    first = day - dt.timedelta(days=FIRST_WINDOW_DAYS)
    since = {r.id: last.get(r.id, first) for r in readers}
    dates = _day_dates(engine, min(since.values()), day)  # one query for every reader
    for reader in readers:
        days = tuple(d for d in dates if d > since[reader.id])
        if days:
            plan.windows[reader.id] = days
    return plan


def plan_catch_up(
    engine: Engine, day: dt.date, weekly: Mapping[int, dt.date], readers: Sequence[SubscriberPrefs]
) -> Plan:
    """Daily ``readers`` whose last e-mail was a weekly one (``weekly``: the date of each
    reader's last weekly e-mail): the days between it and ``day``."""
    plan = Plan(CATCH_UP)
    candidates = [r for r in readers if r.id in weekly]
    if not candidates:
        return plan
    got = last_received(engine, [r.id for r in candidates], before=day)
    since = {r.id: weekly[r.id] for r in candidates if got.get(r.id) == weekly[r.id]}
    if not since:  # everyone already got an e-mail after their last weekly one
        return plan
    dates = [d for d in _day_dates(engine, min(since.values()), day) if d < day]
    for sid, last in since.items():
        days = tuple(d for d in dates if d > last)
        if days:
            plan.windows[sid] = days
    return plan


def audience_for(
    merged: IssueView, plan: Plan, prefs: Mapping[int, SubscriberPrefs], settings: Settings
) -> Audience:
    """Each reader's selection of their window, by the daily readers' ``select_all``."""
    groups: dict[tuple[dt.date, ...], list[SubscriberPrefs]] = defaultdict(list)
    for sid, days in plan.windows.items():
        groups[days].append(prefs[sid])
    selections: dict[int, Selection] = {}
    for days, members in groups.items():
        selections.update(select_all(window_of(merged, days), members, settings))
    return Audience([prefs[sid] for sid in plan.windows], selections)


@dataclass
class WeeklyReport:
    """What the weekly step did in one run (counts per kind of e-mail)."""

    sent: int = 0
    failed: int = 0
    recipients: int = 0
    complete: bool = True
    stopped: bool = False
    model_calls: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


def send_weekly(
    engine: Engine,
    settings: Settings,
    day: dt.date,
    *,
    stop: threading.Event | None = None,
    pdf_fetcher: object = None,
    **send_options: object,
) -> WeeklyReport:
    """The weekly step of the run of ``day`` (after the day's own send): the weekly readers'
    e-mails on the week's run, and catch-ups for readers who switched to daily. Safe to call
    again: it resumes what a crash left queued and mails nobody twice."""
    from newsletter.delivery.send import send_issue
    from newsletter.issue_store import load_issue
    from newsletter.rhythm.languages import summarise_for_audience

    report = WeeklyReport()
    weekly_readers = active_prefs(engine, cadence=WEEKLY)
    had_weekly = last_received(engine, None, kind=WEEKLY)  # usually few: no scan of everyone
    daily_readers = active_prefs(engine, cadence="daily") if had_weekly else []
    by_id = {p.id: p for p in (*weekly_readers, *daily_readers)}
    plans = [
        plan_weekly(engine, settings, day, weekly_readers),
        plan_catch_up(engine, day, had_weekly, daily_readers),
    ]
    for plan in plans:
        if not plan.windows:
            continue
        days = sorted({d for window in plan.windows.values() for d in window})
        with Session(engine) as session:
            views = [v for v in (load_issue(session, d) for d in days) if v is not None]
        merged = merge_days(day, views, plan.kind)
        # The row exists before anything slow, so a crash from here on leaves it unfinished
        # and the day is run again (``unfinished``).
        issue_id = issue_row(engine, day, plan.kind, merged.categories)
        audience = audience_for(merged, plan, by_id, settings)
        if not audience.selections:
            _finish_empty(engine, issue_id)
            continue
        made = summarise_for_audience(
            engine,
            settings,
            merged,
            audience,
            pdf_fetcher=pdf_fetcher,  # type: ignore[arg-type]
        )
        report.model_calls += made.calls
        sent = send_issue(
            engine,
            settings,
            day,
            view=merged,
            summaries=made.site,
            translations=made.by_language,
            audience=audience,
            issue_id=issue_id,
            stop=stop,
            **send_options,  # type: ignore[arg-type]
        )
        report.sent += sent.sent
        report.failed += sent.failed
        report.recipients += sent.recipients
        report.kinds[plan.kind] = sent.sent
        report.complete = report.complete and sent.complete
        report.stopped = report.stopped or sent.stopped
        log.info(
            "%s e-mails of %s (%d days): sent %d, failed %d, skipped %d",
            plan.kind,
            day,
            len(days),
            sent.sent,
            sent.failed,
            sent.skipped,
        )
        if sent.stopped:
            break
    return report
