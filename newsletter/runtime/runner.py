"""The one way a day's digest runs: ``finish_day`` under the day's lock, whoever asks.

``newsletter run``, ``newsletter send``, the schedule, the start-up resume and ``POST /admin/run``
all end here. ``finish_day`` builds the day's issue if it is not built, summarises what is
missing (stored summaries and the cache first), archives it and sends every delivery still
queued, recording the run in ``runs``. A day is done only when every delivery row of its issue
has an outcome; until then every scheduled firing and every start finishes it
(``finish_unfinished``, over the last ``schedule.resume_days`` days).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from rich.console import Console
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Engine

from newsletter import issue_store
from newsletter.arxiv.client import ArxivClient, ArxivStopped
from newsletter.config import Settings
from newsletter.db import display_url, make_engine, session_scope, upgrade
from newsletter.delivery.models import Delivery
from newsletter.models import IssueRow, RunRow, utcnow
from newsletter.pipeline import (
    DEFAULT_STAGES,
    Outcome,
    RunContext,
    RunResult,
    Stage,
    describe,
    ok_message,
)
from newsletter.rhythm.weekly import unfinished as weekly_unfinished
from newsletter.runtime.locking import DayLock

log = logging.getLogger(__name__)

# The stages that make the issue; a day whose issue is built skips them (unless rebuilt).
BUILD_STAGES = frozenset({"fetch", "store", "rank", "issue"})
WAITING = ("queued", "sending")  # delivery rows without an outcome yet


def run_day(settings: Settings, now: dt.datetime | None = None) -> dt.date:
    """Today in the schedule's time zone (the window of ``finish_unfinished`` ends here)."""
    moment = now if now is not None else utcnow()
    return moment.astimezone(ZoneInfo(settings.schedule.timezone)).date()


def lock_name(day: dt.date) -> str:
    """The lock of the issue of ``day``: every process that builds or sends it takes this one."""
    return f"digest:{day.isoformat()}"


@dataclass(frozen=True, slots=True)
class DayState:
    """Where the issue of a day stands: ``waiting`` counts the deliveries without an outcome of
    every e-mail of the day (its issue, and the weekly or catch-up e-mails its run sends)."""

    status: str | None  # None: no issue; built, sending, sent
    waiting: int
    weekly_open: bool = False  # a weekly or catch-up e-mail of the day is not sent yet

    @property
    def built(self) -> bool:
        return self.status is not None

    @property
    def unfinished(self) -> bool:
        """A send was asked for (status ``sending``) or deliveries are still waiting."""
        return self.status == "sending" or self.waiting > 0 or self.weekly_open


def day_state(engine: Engine, day: dt.date) -> DayState:
    issues = IssueRow.__table__.c  # type: ignore[attr-defined]
    rows = Delivery.__table__.c  # type: ignore[attr-defined]
    with engine.connect() as conn:
        issue = conn.execute(
            select(issues.id, issues.status).where(issues.date == day, issues.kind == "daily")
        ).first()
        if issue is None:
            return DayState(None, 0)
        of_the_day = select(issues.id).where(issues.date == day)
        waiting = conn.execute(
            select(func.count())
            .select_from(Delivery.__table__)  # type: ignore[attr-defined]
            .where(rows.issue_id.in_(of_the_day), rows.status.in_(WAITING))
        ).scalar_one()
    return DayState(str(issue.status), int(waiting), weekly_unfinished(engine, day))


def waiting_by_issue(engine: Engine, since: dt.date | None = None) -> list[tuple[dt.date, int]]:
    """(day, deliveries without an outcome) of every unfinished day, oldest first; a day counts
    its issue and the weekly or catch-up e-mails its run sends."""
    issues = IssueRow.__table__.c  # type: ignore[attr-defined]
    rows = Delivery.__table__.c  # type: ignore[attr-defined]
    waiting = (
        select(rows.issue_id, func.count().label("n"))
        .where(rows.status.in_(WAITING))
        .group_by(rows.issue_id)
        .subquery()
    )
    stmt = (
        select(issues.date, func.coalesce(waiting.c.n, 0))
        .select_from(IssueRow.__table__.outerjoin(waiting, waiting.c.issue_id == issues.id))  # type: ignore[attr-defined]
        .where(
            or_(
                issues.status == "sending",
                waiting.c.n > 0,
                and_(issues.kind != "daily", issues.status != "sent"),
            )
        )
        .order_by(issues.date)
    )
    if since is not None:
        stmt = stmt.where(issues.date >= since)
    days: dict[dt.date, int] = {}
    with engine.connect() as conn:
        for day, n in conn.execute(stmt):
            days[day] = days.get(day, 0) + int(n)
    return list(days.items())


def _record_start(engine: Engine, day: dt.date | None, trigger: str) -> int | None:
    with session_scope(engine) as session:
        if day is not None:
            # We hold the day's lock, so any other "running" row of this day is a run that died.
            session.exec(
                update(RunRow)
                .where(RunRow.date == day, RunRow.outcome == "running")  # type: ignore[arg-type]
                .values(outcome="abandoned", finished_at=utcnow())
            )
        row = RunRow(date=day, trigger=trigger, started_at=utcnow(), outcome="running")
        session.add(row)
        session.flush()
        return row.id


def _record_end(engine: Engine, ctx: RunContext, outcome: Outcome) -> None:
    if ctx.run_id is None:
        return
    with session_scope(engine) as session:
        row = session.get(RunRow, ctx.run_id)
        if row is None:
            return
        row.date = ctx.date
        row.finished_at = utcnow()
        row.outcome = outcome
        row.message = ctx.message
        row.papers = ctx.counts.get("papers", 0)
        row.emails_sent = ctx.counts.get("emails_sent", 0)
        row.emails_failed = ctx.counts.get("emails_failed", 0)
        row.model_calls = ctx.counts.get("model_calls", 0)
        session.add(row)


def _run_stages(ctx: RunContext, stages: Sequence[Stage]) -> BaseException | None:
    """Run ``stages`` in order until one ends the run, fails or a stop arrives."""
    for stage in stages:
        if ctx.outcome is not None:
            break
        if ctx.stop_event.is_set():
            ctx.stop("stopped", f"stopped before {stage.name}: the next start finishes the day")
            break
        started = time.perf_counter()
        try:
            stage.run(ctx)
        except ArxivStopped:
            ctx.stop("stopped", "stopped while waiting for arXiv: the next start runs the day")
        except Exception as exc:
            log.debug("stage %s failed", stage.name, exc_info=True)
            ctx.stop("failed", f"{stage.name} failed: {describe(exc)}")
            return exc
        finally:
            log.debug("stage %s took %.2f s", stage.name, time.perf_counter() - started)
    return None


def _load_built(ctx: RunContext, day: dt.date) -> None:
    """Put the stored issue of ``day`` into the context, as the build stages would have."""
    with session_scope(ctx.engine) as session:
        ctx.issue_id = issue_store.issue_id_for(session, day)
        ctx.view = issue_store.load_issue(session, day)
    if ctx.view is not None:
        ctx.counts["papers"] = len(ctx.view.digest)


def _finish_locked(
    ctx: RunContext, day: dt.date, stages: Sequence[Stage], *, rebuild: bool, build: bool
) -> BaseException | None:
    """Under the day's lock: decide what is left of the day and do it."""
    state = day_state(ctx.engine, day)
    later = [s for s in stages if s.name not in BUILD_STAGES]
    if not state.built or rebuild:
        if not build:
            ctx.stop("failed", f"no issue for {day.isoformat()}: build it first (newsletter run)")
            return None
        todo = [s for s in stages if s.name in BUILD_STAGES]
        if ctx.announcement is not None:  # fetched before the lock (the feed's day)
            todo = [s for s in todo if s.name != "fetch"]
        return _run_stages(ctx, [*todo, *later])
    if ctx.requested_date is None and not (ctx.send and state.unfinished):
        ctx.stop(
            "no-announcement",
            f"no new announcement: the feed still shows {day}, whose issue is already built "
            f"(use --date {day} to rebuild it)",
        )
        return None
    if ctx.requested_date is not None and state.status == "sent" and not state.waiting:
        ctx.stop("already-done", f"the issue of {day} was already sent to everyone")
        return None
    _load_built(ctx, day)
    return _run_stages(ctx, later)


def finish_day(
    settings: Settings,
    *,
    date: dt.date | None = None,
    trigger: str = "cli",
    send: bool = True,
    rebuild: bool = False,
    build: bool = True,
    engine: Engine | None = None,
    client: ArxivClient | None = None,
    console: Console | None = None,
    today: dt.date | None = None,
    stages: Sequence[Stage] = DEFAULT_STAGES,
    stop: threading.Event | None = None,
    lock: DayLock | None = None,
    migrate: bool = True,
) -> RunResult:
    """Finish the day ``date`` (None: the day today's arXiv feed shows); never raises.

    Takes the day's lock (or uses ``lock``, already held) and gives up with outcome ``locked``
    when another process holds it. ``rebuild`` rebuilds a built issue in place (``run --date``);
    ``build=False`` refuses to build a missing one (``send``). ``stop`` ends the run between
    stages and between send batches (graceful shutdown; the next start finishes the day).
    """
    own_engine = engine is None
    eng = make_engine(settings.database_url) if engine is None else engine
    ctx = RunContext(
        settings=settings,
        engine=eng,
        console=console or Console(stderr=True),
        requested_date=date,
        send=send,
        trigger=trigger,
        client=client,
        today=today,
        stop_event=stop if stop is not None else threading.Event(),
    )
    held: DayLock | None = None
    error: BaseException | None = None
    try:
        if migrate:
            try:
                upgrade(eng)
            except Exception as exc:
                log.debug("migration failed", exc_info=True)
                message = (
                    f"database {display_url(settings.database_url)!r} could not be prepared: {exc}"
                )
                return RunResult("failed", date, None, {}, message, {}, None, exc)
        day = date
        if day is None:
            error = _run_stages(ctx, [s for s in stages if s.name == "fetch"])
            if ctx.announcement is None:  # no announcement, arXiv down, or stopped
                ctx.run_id = _record_start(eng, None, trigger)
                _record_end(eng, ctx, ctx.outcome or "no-announcement")
                return _result(ctx, ctx.outcome or "no-announcement", error)
            day = ctx.announcement.date
        held = lock if lock is not None else DayLock(eng, lock_name(day))
        if not held.acquire():
            held = None
            message = (
                f"another run of {day} is in progress (the service or another `newsletter run`/"
                "`newsletter send`); try again when it has finished"
            )
            log.info("%s run of %s skipped: another process holds the day", trigger, day)
            return RunResult("locked", day, None, {}, message, {})
        ctx.run_id = _record_start(eng, day, trigger)
        error = _finish_locked(ctx, day, stages, rebuild=rebuild, build=build)
        outcome: Outcome = ctx.outcome or "ok"
        if outcome == "ok":
            ctx.message = ok_message(ctx)
        try:
            _record_end(eng, ctx, outcome)
        except Exception:
            log.warning("could not record the run's end in the database", exc_info=True)
        log.info("run %s (%s) of %s: %s", ctx.run_id, trigger, day, outcome)
        return _result(ctx, outcome, error, day)
    finally:
        if held is not None:
            held.release()
        if client is None and ctx.client is not None:
            ctx.client.close()  # a stage made it; close its connections
        if own_engine:
            eng.dispose()


def _result(
    ctx: RunContext, outcome: Outcome, error: BaseException | None, day: dt.date | None = None
) -> RunResult:
    return RunResult(
        outcome,
        ctx.date or day,
        ctx.issue_id,
        ctx.counts,
        ctx.message,
        ctx.outputs,
        ctx.run_id,
        error,
    )


def finish_unfinished(
    settings: Settings,
    engine: Engine,
    *,
    trigger: str,
    stop: threading.Event,
    clock: Callable[[], dt.datetime] = utcnow,
) -> list[RunResult]:
    """Finish every issue of the last ``schedule.resume_days`` days with deliveries waiting."""
    since = run_day(settings, clock()) - dt.timedelta(days=settings.schedule.resume_days)
    results: list[RunResult] = []
    for day, waiting in waiting_by_issue(engine, since):
        if stop.is_set():
            break
        log.info("%s: finishing the issue of %s, %d deliveries waiting", trigger, day, waiting)
        results.append(
            finish_day(settings, date=day, trigger=trigger, engine=engine, stop=stop, migrate=False)
        )
    return results


def run_due(
    settings: Settings,
    engine: Engine,
    *,
    trigger: str,
    stop: threading.Event,
    clock: Callable[[], dt.datetime] = utcnow,
) -> list[RunResult]:
    """A scheduled firing (or an admin run without a date): unfinished days, then today's."""
    results = finish_unfinished(settings, engine, trigger=trigger, stop=stop, clock=clock)
    if not stop.is_set():
        results.append(
            finish_day(settings, trigger=trigger, engine=engine, stop=stop, migrate=False)
        )
    return results


def interrupted(
    engine: Engine, *, clock: Callable[[], dt.datetime] = utcnow, within: dt.timedelta
) -> bool:
    """True when the latest run started within ``within`` and never finished (stopped, or its
    process died): a run stopped before its issue was built, which only a new run can redo."""
    runs = RunRow.__table__.c  # type: ignore[attr-defined]
    with engine.connect() as conn:
        row = conn.execute(
            select(runs.outcome, runs.started_at).order_by(runs.id.desc()).limit(1)
        ).first()
    if row is None:
        return False
    started = row.started_at if row.started_at.tzinfo else row.started_at.replace(tzinfo=dt.UTC)
    return row.outcome in ("stopped", "running", "abandoned") and clock() - started <= within


def resume(
    settings: Settings,
    engine: Engine,
    *,
    stop: threading.Event,
    clock: Callable[[], dt.datetime] = utcnow,
) -> list[RunResult]:
    """At start-up: finish the unfinished days, and rerun today's feed if a run was cut short
    before it built its issue."""
    results = finish_unfinished(settings, engine, trigger="resume", stop=stop, clock=clock)
    if not stop.is_set() and interrupted(engine, clock=clock, within=dt.timedelta(days=1)):
        log.info("resume: the last run was interrupted; running today's feed again")
        results.append(
            finish_day(settings, trigger="resume", engine=engine, stop=stop, migrate=False)
        )
    return results
