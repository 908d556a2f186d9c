"""The daily schedule: APScheduler 3 with its job store in the project's database.

The job store keeps the digest job's next run time across restarts, so a service that was down
at the scheduled time runs once when it comes back within ``schedule.misfire_grace_seconds``
(coalesced: never twice), and not at all when it comes back later (the next fire time then
takes over). Every fire calls ``newsletter.runtime.runner.run_due`` (the service passes it in): it
finishes the unfinished days of the window, then today's, each under its day's lock, which makes
it safe for several processes to share one job store.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import text
from sqlalchemy.engine import Engine

from newsletter.config import Settings
from newsletter.runtime.crontab import crontab_trigger

log = logging.getLogger(__name__)

JOB_ID = "daily-digest"
JOBSTORE_TABLE = "apscheduler_jobs"
JOB_FUNC_REF = "newsletter.runtime.scheduler:scheduled_run"


Fire = Callable[[], object]


class _JobStore(SQLAlchemyJobStore):
    """The database job store, handing out no due job once the scheduler is closing.

    APScheduler 3's loop looks for due jobs once more after ``shutdown`` (it only skips that
    when paused); a job due at that moment would be stored as done without running. A job
    store is APScheduler's documented extension point, so the check lives here."""

    def __init__(self, closing: threading.Event, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.closing = closing

    def get_due_jobs(self, now: dt.datetime) -> list[Any]:
        if self.closing.is_set():
            return []
        due: list[Any] = super().get_due_jobs(now)
        return due


@dataclass(frozen=True, slots=True)
class ServiceContext:
    fire: Fire


# A persistent job store can only hold a textual function reference and picklable arguments,
# never the engine or the settings (they hold secrets), so the running scheduler registers
# its context here and the stored job finds it. One scheduler per process.
_context_lock = threading.Lock()
_context: ServiceContext | None = None


def scheduled_run() -> None:
    """What the stored job calls: the running scheduler's ``fire`` (``runner.run_due``)."""
    with _context_lock:
        ctx = _context
    if ctx is None:
        log.error("scheduled run fired but no scheduler context is registered; skipped")
        return
    ctx.fire()


def grace_seconds(settings: Settings) -> int:
    """0 means "no catch-up"; APScheduler needs at least one second to run an on-time job."""
    return max(1, settings.schedule.misfire_grace_seconds)


class DigestScheduler:
    """A BackgroundScheduler owning the one daily-digest job."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        fire: Fire,
    ) -> None:
        """``fire`` is what each firing does (the service: ``runner.run_due``)."""
        self.settings = settings
        self.engine = engine
        self.fire = fire
        self.closing = threading.Event()
        self.trigger: CronTrigger = crontab_trigger(
            settings.schedule.cron, settings.schedule.timezone
        )
        self.scheduler: BackgroundScheduler = BackgroundScheduler(
            jobstores={"default": _JobStore(self.closing, engine=engine, tablename=JOBSTORE_TABLE)},
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": grace_seconds(settings),
            },
            timezone=self.trigger.timezone,
        )

    def start(self) -> None:
        """Start, keeping a stored job whose schedule is unchanged (that is how a missed run
        survives a restart); a changed cron, time zone or grace replaces it."""
        global _context
        with _context_lock:
            if _context is not None:
                raise RuntimeError("a digest scheduler is already running in this process")
            _context = ServiceContext(self.fire)
        try:
            self.scheduler.start(paused=True)
            existing = self.scheduler.get_job(JOB_ID)
            if existing is not None and self._same_schedule(existing):
                log.info("schedule kept; next run %s", existing.next_run_time)
            else:
                self.scheduler.add_job(
                    JOB_FUNC_REF,
                    trigger=self.trigger,
                    id=JOB_ID,
                    name="daily digest",
                    replace_existing=True,
                )
                log.info("schedule set to %r; next run %s", self.trigger, self.next_run_time())
            self.scheduler.resume()
        except BaseException:
            self._unregister()
            raise

    def _same_schedule(self, existing: object) -> bool:
        return (
            repr(getattr(existing, "trigger", None)) == repr(self.trigger)
            and getattr(existing, "func_ref", None) == JOB_FUNC_REF
            and getattr(existing, "misfire_grace_time", None) == grace_seconds(self.settings)
        )

    def next_run_time(self) -> dt.datetime | None:
        job = self.scheduler.get_job(JOB_ID)
        return getattr(job, "next_run_time", None) if job is not None else None

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop firing; with ``wait``, return only when a running job has finished."""
        self.closing.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        self._unregister()

    def _unregister(self) -> None:
        global _context
        with _context_lock:
            _context = None


def stored_next_run(engine: Engine) -> dt.datetime | None:
    """The next run time in the job store, readable by any process (web-only ones too)."""
    try:
        with engine.connect() as conn:
            value = conn.execute(
                text(f"SELECT next_run_time FROM {JOBSTORE_TABLE} WHERE id = :id"),
                {"id": JOB_ID},
            ).scalar()
    except Exception:  # no table yet (scheduler never started) or no database
        return None
    if value is None:
        return None
    return dt.datetime.fromtimestamp(float(value), dt.UTC)
