"""The dashboard's "send what is still queued": ``newsletter send``'s path, in a thread.

``send_queued`` is ``runner.finish_day`` without the build, as ``newsletter send`` calls it: under
the day's lock, so it never runs beside a scheduled or CLI run of the same day, with the issue's
stored summaries. Progress is not kept here: the pages read it from the deliveries table, so it
shows whichever process is sending.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from newsletter.config import Settings
from newsletter.pipeline import RunResult
from newsletter.runtime.runner import finish_day

log = logging.getLogger(__name__)


def send_queued(
    engine: Engine, settings: Settings, day: dt.date, *, stop: threading.Event | None = None
) -> RunResult:
    """Send the issue of ``day`` to everyone not yet sent to (what ``newsletter send`` does)."""
    return finish_day(
        settings, date=day, trigger="admin", build=False, engine=engine, stop=stop, migrate=False
    )


@dataclass
class SendThreads:
    """Sends started from this process, one per day at a time, with how the last one ended."""

    engine: Engine
    settings: Settings
    stop: threading.Event = field(default_factory=threading.Event)
    _threads: dict[dt.date, threading.Thread] = field(default_factory=dict)
    _results: dict[dt.date, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def running(self, day: dt.date) -> bool:
        with self._lock:
            thread = self._threads.get(day)
            return thread is not None and thread.is_alive()

    def result(self, day: dt.date) -> str | None:
        with self._lock:
            return self._results.get(day)

    def start(self, day: dt.date) -> bool:
        """Start a send of ``day`` unless this process already runs one; False then."""
        with self._lock:
            thread = self._threads.get(day)
            if thread is not None and thread.is_alive():
                return False
            self._results.pop(day, None)
            thread = threading.Thread(
                target=self._run, args=(day,), name=f"admin-send-{day}", daemon=True
            )
            self._threads[day] = thread
            thread.start()
            return True

    def join(self, day: dt.date, timeout: float | None = None) -> bool:
        with self._lock:
            thread = self._threads.get(day)
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _run(self, day: dt.date) -> None:
        result = send_queued(self.engine, self.settings, day, stop=self.stop)
        if result.outcome in ("ok", "already-done"):
            text = (
                f"sent {result.counts.get('emails_sent', 0)}, "
                f"failed {result.counts.get('emails_failed', 0)}"
            )
        else:
            text = f"not sent ({result.outcome}): {result.message}"
        with self._lock:
            self._results[day] = text
