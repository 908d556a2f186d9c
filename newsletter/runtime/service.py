"""The long-running side of ``newsletter serve``: scheduler, background runs, graceful stop.

``start_background(settings, engine)`` starts the schedule and, in a background thread, the
start-up resume (``runner.resume``: every issue of the last ``schedule.resume_days`` days with
deliveries waiting is finished). ``handle.stop()`` (on SIGTERM) tells running runs to stop
taking new batches, waits for the in-flight one, and leaves the day resumable: the next start
or the next firing finishes it through the same lock.
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
from newsletter.runtime.locking import DayLock
from newsletter.runtime.runner import day_state, finish_day, lock_name, resume, run_due
from newsletter.runtime.scheduler import DigestScheduler, stored_next_run

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Launch:
    """What ``RunLauncher.launch`` did: ``started`` or why not (``locked``, ``shutting-down``)."""

    status: str
    day: dt.date | None
    message: str | None = None

    @property
    def started(self) -> bool:
        return self.status == "started"


@dataclass
class RunLauncher:
    """Starts runs in background threads and remembers them, so a stop can wait for them."""

    settings: Settings
    engine: Engine
    stop_event: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], dt.datetime] = utcnow
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def launch(self, *, date: dt.date | None = None, trigger: str) -> Launch:
        """Start a run in a thread: of ``date`` (its lock is taken now, so a busy day answers
        at once) or, without a date, what a scheduled firing does."""
        if self.stop_event.is_set():
            return Launch("shutting-down", date, "service is stopping")
        if date is None:
            self._start(
                lambda: run_due(self.settings, self.engine, trigger=trigger, stop=self.stop_event),
                f"digest-{trigger}",
            )
            return Launch("started", None)
        lock = DayLock(self.engine, lock_name(date))
        if not lock.acquire():
            return Launch("locked", date, "another run of this day is in progress")
        state = day_state(self.engine, date)
        if state.status == "sent" and not state.waiting:
            lock.release()
            return Launch("already-done", date, f"the issue of {date} was already sent")

        def run() -> None:
            finish_day(
                self.settings,
                date=date,
                trigger=trigger,
                engine=self.engine,
                stop=self.stop_event,
                lock=lock,
                migrate=False,
            )

        self._start(run, f"digest-{trigger}-{date}")
        return Launch("started", date)

    def resume(self) -> None:
        """The start-up resume, in a thread (the web app answers meanwhile)."""
        self._start(
            lambda: resume(self.settings, self.engine, stop=self.stop_event, clock=self.clock),
            "digest-resume",
        )

    def _start(self, target: Callable[[], object], name: str) -> None:
        def guarded() -> None:
            try:
                target()
            except Exception:  # finish_day never raises; anything else is a bug, logged
                log.exception("background run %s failed", name)

        thread = threading.Thread(target=guarded, name=name)
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
        """Stop firing, ask runs to stop after their in-flight batch, wait for them.

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


def launcher_for(settings: Settings, engine: Engine) -> RunLauncher:
    """The process's launcher for ``engine`` (created on first use)."""
    with _launchers_lock:
        launcher = _launchers.get(engine)
        if launcher is None:
            launcher = RunLauncher(settings, engine)
            _launchers[engine] = launcher
        return launcher


def start_background(
    settings: Settings,
    engine: Engine,
    *,
    scheduler: bool = True,
    resume_runs: bool = True,
) -> ServiceHandle:
    """Start the schedule (unless ``scheduler`` is False or ``schedule.enabled`` is off) and the
    start-up resume of unfinished days."""
    launcher = launcher_for(settings, engine)
    launcher.stop_event.clear()
    digest_scheduler: DigestScheduler | None = None
    if scheduler and settings.schedule.enabled:
        stop = launcher.stop_event
        digest_scheduler = DigestScheduler(
            settings,
            engine,
            fire=lambda: run_due(settings, engine, trigger="schedule", stop=stop),
        )
        digest_scheduler.start()
        log.info("scheduler started; next run %s", digest_scheduler.next_run_time())
    handle = ServiceHandle(launcher, digest_scheduler)
    if resume_runs:
        launcher.resume()
    return handle


def background(settings: Settings, engine: Engine) -> Callable[[], None]:
    """``create_app(..., background=background)``: start with the app, stop with it (the
    lifespan's shutdown, which uvicorn runs on SIGTERM after draining requests)."""
    handle = start_background(settings, engine)

    def stop() -> None:
        handle.stop()

    return stop
