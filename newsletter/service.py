"""The long-running side of ``newsletter serve``: scheduler, background runs, graceful stop.

``start_background(settings, engine)`` starts the schedule and resumes a run of today that a
shutdown interrupted; ``handle.stop()`` (on SIGTERM) tells running jobs to stop taking new
batches, waits for the in-flight one, and leaves the day resumable (the run is recorded as
``stopped``; the next start or the next trigger picks it up through the same lock).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from newsletter.config import Settings
from newsletter.models import utcnow
from newsletter.runner import Claim, Job, RunOutcome, begin_run, interrupted_day, pipeline_job
from newsletter.scheduler import DigestScheduler, stored_next_run

log = logging.getLogger(__name__)


@dataclass
class RunLauncher:
    """Starts claimed runs in background threads and remembers them, so a stop can wait."""

    settings: Settings
    engine: Engine
    job: Job = pipeline_job
    stop_event: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], dt.datetime] = utcnow
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def launch(self, *, date: dt.date | None = None, trigger: str) -> RunOutcome:
        """Claim the day now (lock + re-check, synchronously) and run it in a thread.

        Returns the claimed run (``run_id`` set, outcome ``running``) or why nothing started.
        """
        if self.stop_event.is_set():
            return RunOutcome(date or dt.date.min, "shutting-down", message="service is stopping")
        claim = begin_run(self.settings, self.engine, date=date, trigger=trigger, clock=self.clock)
        if isinstance(claim, RunOutcome):
            return claim
        self._start(claim)
        return RunOutcome(claim.day, "running", claim.run_id)

    def _start(self, claim: Claim) -> None:
        thread = threading.Thread(
            target=claim.execute,
            args=(self.job, self.stop_event),
            name=f"digest-run-{claim.run_id}",
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def running(self) -> int:
        with self._lock:
            return sum(t.is_alive() for t in self._threads)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for every launched run; True when none is left running."""
        with self._lock:
            threads = list(self._threads)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)


@dataclass
class ServiceHandle:
    """What ``newsletter serve`` holds while it runs; ``stop()`` once, on the way out."""

    launcher: RunLauncher
    scheduler: DigestScheduler | None
    _stopped: bool = False

    @property
    def stop_event(self) -> threading.Event:
        return self.launcher.stop_event

    def next_run_time(self) -> dt.datetime | None:
        if self.scheduler is not None:
            return self.scheduler.next_run_time()
        return stored_next_run(self.launcher.engine)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop firing, ask jobs to stop after their in-flight batch, wait for them.

        Returns True when every run finished within ``timeout`` (None: wait as long as it takes).
        """
        if self._stopped:
            return True
        self._stopped = True
        log.info("stopping: no new runs; waiting for the in-flight batch")
        self.stop_event.set()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
        done = self.launcher.join(timeout)
        log.info("stopped%s", "" if done else " (a run is still finishing)")
        return done


# The launcher of each engine, shared by the scheduler's handle and the admin route (which only
# sees the app's engine), so one stop event reaches every run of the process.
_launchers: weakref.WeakKeyDictionary[Engine, RunLauncher] = weakref.WeakKeyDictionary()
_launchers_lock = threading.Lock()


def launcher_for(settings: Settings, engine: Engine, *, job: Job | None = None) -> RunLauncher:
    """The process's launcher for ``engine`` (created on first use; ``job`` replaces its job)."""
    with _launchers_lock:
        launcher = _launchers.get(engine)
        if launcher is None:
            launcher = RunLauncher(settings, engine, job or pipeline_job)
            _launchers[engine] = launcher
        elif job is not None:
            launcher.job = job
        return launcher


def start_background(
    settings: Settings,
    engine: Engine,
    *,
    job: Job | None = None,
    scheduler: bool = True,
    resume: bool = True,
) -> ServiceHandle:
    """Start the schedule (unless ``scheduler`` is False or ``schedule.enabled`` is off) and
    resume today's run if a shutdown or crash interrupted it."""
    launcher = launcher_for(settings, engine, job=job)
    launcher.stop_event.clear()
    clock = launcher.clock
    digest_scheduler: DigestScheduler | None = None
    if scheduler and settings.schedule.enabled:
        digest_scheduler = DigestScheduler(
            settings, engine, job=launcher.job, stop=launcher.stop_event
        )
        digest_scheduler.start()
        log.info("scheduler started; next run %s", digest_scheduler.next_run_time())
    handle = ServiceHandle(launcher, digest_scheduler)
    if resume:
        day = interrupted_day(settings, engine, clock=clock)
        if day is not None:
            outcome = launcher.launch(date=None, trigger="resume")
            log.info("resuming the interrupted run of %s: %s", day, outcome.outcome)
    return handle


def background(settings: Settings, engine: Engine) -> Callable[[], None]:
    """``create_app(..., background=background)``: start with the app, stop with it (the
    lifespan's shutdown, which uvicorn runs on SIGTERM after draining requests)."""
    handle = start_background(settings, engine)

    def stop() -> None:
        handle.stop()

    return stop
