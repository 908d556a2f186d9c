"""Waves: many requests in flight, with the database touched once per wave, not once per batch.

The sender's database work per batch (suppression check, claim, record) used to cost more CPU
than building and sending the request itself, and 32 threads each opening transactions fought
over connections and SQLite's write lock. Here one dispatcher (the caller's thread) and one
recorder thread are the only ones that touch the database:

- the dispatcher waits for a free slot, then takes as many batches as there are free slots (a
  *wave*), claims them all with one ``claim`` call (one transaction: suppression re-check, then
  ``queued -> sending``, committed), and only then hands them to the pool, one request each;
- each worker sends its batch and queues the outcome;
- the recorder commits whatever outcomes have arrived with one ``record`` call (one transaction),
  and only then frees their slots.

A slot is taken from the claim until the outcome is committed, so at any moment at most
``concurrency`` batches are claimed and not yet recorded: that bounds the in-flight window of a
crash exactly as one-claim-per-batch did. Waves size themselves: when responses arrive together
(or the recorder is busy) several slots free at once and the next wave is larger.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
B = TypeVar("B")  # a batch as planned
J = TypeVar("J")  # a claimed batch, ready to send
R = TypeVar("R")  # a batch's outcomes

Claim = Callable[[Sequence[B]], Sequence[J | None]]


class _Recorder(Generic[R]):
    """One thread commits outcomes in bulk as they arrive, then frees their slots."""

    def __init__(self, record: Callable[[Sequence[R]], None], slots: threading.Semaphore) -> None:
        self.record, self.slots = record, slots
        self.queue: queue.SimpleQueue[R | None] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="delivery-recorder", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        done = False
        while not done:
            items: list[R] = []
            item = self.queue.get()
            while True:
                if item is None:
                    done = True
                else:
                    items.append(item)
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
            if items and self.error is None:
                try:
                    self.record(items)
                except BaseException as exc:  # the rows stay `sending`: the next run resolves them
                    log.exception("recording %d outcomes failed", len(items))
                    self.error = exc
            for _ in items:
                self.slots.release()

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()


def run_waves(
    batches: Sequence[B],
    *,
    concurrency: int,
    claim: Claim[B, J],
    send: Callable[[J], R],
    record: Callable[[Sequence[R]], None],
    stop: threading.Event,
) -> None:
    """Send every batch, at most ``concurrency`` at a time, in waves; see the module docstring.

    ``claim(wave)`` returns, per batch, what to send, or None when nothing of it is left to
    send (all suppressed or already claimed). On ``stop`` no new wave is taken; the batches in
    flight finish and are recorded. The first error of ``send`` or ``record`` stops new waves
    and is raised once the in-flight batches are done.
    """
    slots = threading.Semaphore(concurrency)
    recorder: _Recorder[R] = _Recorder(record, slots)
    errors: list[BaseException] = []

    def work(job: J) -> None:
        try:
            result = send(job)
        except BaseException as exc:  # a bug: its rows stay `sending` for the next run
            log.exception("sending a batch failed")
            errors.append(exc)
            slots.release()
        else:
            recorder.queue.put(result)

    def halted() -> bool:
        return stop.is_set() or bool(errors) or recorder.error is not None

    try:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="delivery") as pool:
            start = 0
            while start < len(batches):
                slots.acquire()
                size = 1
                while size < len(batches) - start and slots.acquire(blocking=False):
                    size += 1
                if halted():
                    break
                wave = batches[start : start + size]
                start += size
                jobs = claim(wave)
                for job in jobs:
                    if job is None:
                        slots.release()
                    else:
                        pool.submit(work, job)
    finally:
        recorder.close()
    if errors:
        raise errors[0]
    if recorder.error is not None:
        raise recorder.error
