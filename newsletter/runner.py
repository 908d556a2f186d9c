"""One digest run per day, whatever the number of processes: lock, re-check, run, record.

Every trigger (schedule, admin, resume after a shutdown) goes through :func:`begin_run`, which
takes the day's lock and re-checks that the day was not already done; :meth:`Claim.execute`
runs the job under that lock and records the outcome in ``runs``. :func:`run_once` is both in a
row, in the calling thread.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import select

from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.locking import DayLock
from newsletter.models import IssueRow, RunRow, daily_issue, utcnow
from newsletter.rhythm.weekly import unfinished as weekly_unfinished

log = logging.getLogger(__name__)

# Outcomes a job can end with; "stopped" (graceful shutdown) and "failed" are resumable.
DONE_OUTCOMES = ("ok", "no-announcement")
SKIPPED_LOCKED = "locked"
SKIPPED_DONE = "already-done"


@dataclass(frozen=True, slots=True)
class JobResult:
    """What a job reports back; the pipeline's ``RunResult`` is converted to this."""

    outcome: str  # ok, no-announcement, failed, stopped
    papers: int = 0
    emails_sent: int = 0
    emails_failed: int = 0
    model_calls: int = 0
    message: str | None = None


class Job(Protocol):
    def __call__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        date: dt.date | None,
        trigger: str,
        stop: threading.Event,
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """The result of a trigger: ``run_id`` is None when nothing ran (locked or already done)."""

    day: dt.date
    outcome: str
    run_id: int | None = None
    message: str | None = None

    @property
    def ran(self) -> bool:
        return self.run_id is not None


def pipeline_job(
    settings: Settings,
    engine: Engine,
    *,
    date: dt.date | None,
    trigger: str,
    stop: threading.Event,
) -> Any:
    """The real digest; ``stop`` reaches the sender, so a shutdown stops between batches."""
    from newsletter.pipeline import run_pipeline

    return run_pipeline(
        settings,
        date=date,
        send=True,
        trigger=trigger,
        engine=engine,
        stop=stop,
        record_run=False,
    )


def as_job_result(value: Any) -> JobResult:
    """Accept a JobResult, a plain outcome string, or any object with ``outcome`` and counts."""
    if isinstance(value, JobResult):
        return value
    if isinstance(value, str):
        return JobResult(outcome=value)

    counts = getattr(value, "counts", None)

    def count(name: str) -> int:
        raw = getattr(value, name, None)
        if raw is None and isinstance(counts, dict):
            raw = counts.get(name)
        return int(raw) if isinstance(raw, int | float) else 0

    message = getattr(value, "message", None)
    return JobResult(
        outcome=str(getattr(value, "outcome", "ok")),
        papers=count("papers") or count("papers_selected"),
        emails_sent=count("emails_sent"),
        emails_failed=count("emails_failed"),
        model_calls=count("model_calls"),
        message=str(message) if message is not None else None,
    )


def run_day(settings: Settings, now: dt.datetime | None = None) -> dt.date:
    """Today in the schedule's time zone: the day a trigger without a date is about."""
    moment = now if now is not None else utcnow()
    return moment.astimezone(ZoneInfo(settings.schedule.timezone)).date()


def lock_name(day: dt.date) -> str:
    return f"digest:{day.isoformat()}"


def _already_done(engine: Engine, day: dt.date, trigger: str) -> str | None:
    """Why the day needs no run: its issue went out, or (scheduled) a run already finished it."""
    with session_scope(engine) as session:
        issue = session.exec(select(IssueRow).where(IssueRow.date == day, daily_issue())).first()
        if issue is not None and issue.status == "sent" and not weekly_unfinished(engine, day):
            return f"the issue of {day} was already sent"
        if trigger in ("schedule", "resume"):
            done = session.exec(
                select(RunRow).where(
                    RunRow.date == day,
                    RunRow.outcome.in_(DONE_OUTCOMES),  # type: ignore[attr-defined]
                )
            ).first()
            if done is not None:
                return f"run {done.id} already finished {day} ({done.outcome})"
    return None


@dataclass
class Claim:
    """A run that holds the day's lock and has its ``runs`` row; execute it once."""

    settings: Settings
    engine: Engine
    lock: DayLock
    day: dt.date
    date: dt.date | None
    trigger: str
    run_id: int
    clock: Callable[[], dt.datetime] = utcnow
    _done: bool = field(default=False, repr=False)

    def execute(self, job: Job, stop: threading.Event | None = None) -> RunOutcome:
        """Run the job under the lock, record how it ended, release the lock (always)."""
        if self._done:
            raise RuntimeError("a claim runs once")
        self._done = True
        stop_event = stop if stop is not None else threading.Event()
        started = time.monotonic()
        try:
            try:
                raw = job(
                    self.settings,
                    self.engine,
                    date=self.date,
                    trigger=self.trigger,
                    stop=stop_event,
                )
                result = as_job_result(raw)
            except Exception as exc:  # a failed run is recorded, never lost in a thread
                log.exception("run %s for %s failed", self.run_id, self.day)
                result = JobResult(outcome="failed", message=f"{type(exc).__name__}: {exc}")
            self._record(result)
        finally:
            self.lock.release()
        log.info(
            "run %s (%s) for %s: %s in %.1fs",
            self.run_id,
            self.trigger,
            self.day,
            result.outcome,
            time.monotonic() - started,
        )
        return RunOutcome(self.day, result.outcome, self.run_id, result.message)

    def _record(self, result: JobResult) -> None:
        with session_scope(self.engine) as session:
            row = session.get(RunRow, self.run_id)
            if row is None:  # the row was deleted under us; keep the record anyway
                row = RunRow(date=self.day, trigger=self.trigger)
            row.outcome = result.outcome
            row.finished_at = self.clock()
            row.papers = result.papers
            row.emails_sent = result.emails_sent
            row.emails_failed = result.emails_failed
            row.model_calls = result.model_calls
            row.message = result.message
            session.add(row)


def begin_run(
    settings: Settings,
    engine: Engine,
    *,
    date: dt.date | None = None,
    trigger: str,
    clock: Callable[[], dt.datetime] = utcnow,
) -> Claim | RunOutcome:
    """Take the day's lock and record a ``running`` row, or say why nothing will run.

    ``date=None`` (the schedule) locks today in ``schedule.timezone`` and lets the pipeline
    pick the announcement; an explicit date locks and builds that date.
    """
    day = date if date is not None else run_day(settings, clock())
    lock = DayLock(engine, lock_name(day), clock=clock)
    if not lock.acquire():
        log.info("%s run for %s skipped: another run holds the lock", trigger, day)
        return RunOutcome(day, SKIPPED_LOCKED, message="another run holds the lock")
    try:
        reason = _already_done(engine, day, trigger)
        if reason is not None:
            log.info("%s run for %s skipped: %s", trigger, day, reason)
            lock.release()
            return RunOutcome(day, SKIPPED_DONE, message=reason)
        with session_scope(engine) as session:
            # We hold the lock, so any other "running" row of this day is a run that died.
            session.exec(
                update(RunRow)
                .where(RunRow.date == day, RunRow.outcome == "running")  # type: ignore[arg-type]
                .values(outcome="abandoned", finished_at=clock())
            )
            row = RunRow(date=day, trigger=trigger, started_at=clock(), outcome="running")
            session.add(row)
            session.flush()
            if row.id is None:
                raise RuntimeError("the runs row got no id")
            run_id = row.id
    except BaseException:
        lock.release()
        raise
    return Claim(settings, engine, lock, day, date, trigger, run_id, clock)


def run_once(
    settings: Settings,
    engine: Engine,
    *,
    date: dt.date | None = None,
    trigger: str,
    job: Job = pipeline_job,
    stop: threading.Event | None = None,
    clock: Callable[[], dt.datetime] = utcnow,
) -> RunOutcome:
    """Run the day's digest unless another process is running it or it is already done."""
    claim = begin_run(settings, engine, date=date, trigger=trigger, clock=clock)
    if isinstance(claim, RunOutcome):
        return claim
    return claim.execute(job, stop)


def interrupted_day(
    settings: Settings, engine: Engine, *, clock: Callable[[], dt.datetime] = utcnow
) -> dt.date | None:
    """Today, if today's last run was stopped, failed or died and nothing finished it since."""
    day = run_day(settings, clock())
    with session_scope(engine) as session:
        last = session.exec(
            select(RunRow).where(RunRow.date == day).order_by(RunRow.id.desc())  # type: ignore[union-attr]
        ).first()
    if last is None or last.outcome in DONE_OUTCOMES:
        return None
    if last.outcome in ("stopped", "running", "abandoned"):
        return day
    return None
