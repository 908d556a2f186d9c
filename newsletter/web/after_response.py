"""Work that must not hold up a request: one worker thread fed by a queue.

Starlette's ``BackgroundTasks`` run after the answer is sent but before the server reads the
next request on the same connection, so their duration (and whether they ran a query or sent
an e-mail) would still show in the next answer's timing. Jobs queued here run beside the
server instead; ``close`` (at shutdown) finishes the jobs already queued.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Job = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class AfterResponse:
    def __init__(self, name: str = "after-response") -> None:
        self._name = name
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        self._jobs.put((fn, args, kwargs))

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                fn, args, kwargs = job
                fn(*args, **kwargs)
            except Exception:
                log.exception("work after a response failed")
            finally:
                self._jobs.task_done()

    def drain(self) -> None:
        """Wait until every job queued so far has run (tests, and shutdown)."""
        self._jobs.join()

    def close(self) -> None:
        with self._lock:
            thread = self._thread
            self._thread = None
        if thread is not None:
            self._jobs.put(None)
            thread.join()
