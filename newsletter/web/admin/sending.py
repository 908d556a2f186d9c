"""The dashboard's "send what is still queued": ``newsletter send``'s path, in a thread.

``send_queued`` is the one function that decides what sending means; it takes the day's lock so
it never runs beside a scheduled or CLI run of the same day. Progress is not kept here: the
pages read it from the deliveries table, so it shows whichever process is sending.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from newsletter.config import Settings
from newsletter.delivery.send import SendError, SendReport, send_issue
from newsletter.locking import day_lock
from newsletter.runner import lock_name

log = logging.getLogger(__name__)


class SendBusy(Exception):
    """Another run or send of the same day holds its lock."""


def send_queued(
    engine: Engine, settings: Settings, day: dt.date, *, stop: threading.Event | None = None
) -> SendReport:
    """Send the issue of ``day`` to everyone not yet sent to (what ``newsletter send`` does)."""
    with day_lock(engine, lock_name(day)) as acquired:
        if not acquired:
            raise SendBusy(f"a run or send of {day.isoformat()} is already in progress")
        return send_issue(engine, settings, day, stop=stop)


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
        try:
            report = send_queued(self.engine, self.settings, day, stop=self.stop)
            text = (
                f"sent {report.sent}, failed {report.failed}, skipped {report.skipped}, "
                f"unknown {report.unknown}"
            )
        except (SendBusy, SendError) as exc:
            text = f"not sent: {exc}"
        except Exception as exc:  # reported on the page; the send is resumable
            log.exception("dashboard send of %s failed", day)
            text = f"failed: {type(exc).__name__}"
        with self._lock:
            self._results[day] = text
