"""Waves: many requests in flight, with the database touched once per wave, not once per batch.

The sender's database work per batch (suppression check, claim, record) used to cost more CPU
than building and sending the request, and 32 threads each opening transactions fought over
connections and SQLite's write lock. Here one thread, the dispatcher (the caller's), is the only
one that touches the database. Each turn of its loop is one ``step`` (one transaction):

1. it records every outcome that has arrived since the last turn, and
2. it claims the next *wave*, as many batches as there are free slots (the suppression re-check,
   then ``queued -> sending``),

commits, and only then hands the wave's batches to the pool, one request each. Workers send
and queue their outcome. The dispatcher takes a new wave once a quarter of the slots are free
(or as many as there are batches left), with every other outcome that has arrived by then.

A slot is held from the claim until the outcome is committed, so at any committed state at most
``concurrency`` batches are ``sending``: the in-flight window of a crash is the same as with one
claim per batch. Waves size themselves: the more outcomes arrive together, the larger the next
wave, so the busier the sender, the fewer transactions per request; the quarter is their floor
(without it, a busy dispatcher took one wave per freed slot: 3.6 batches a wave on average).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)
B = TypeVar("B")  # a batch as planned
J = TypeVar("J")  # a claimed batch, ready to send
R = TypeVar("R")  # a batch's outcomes


@dataclass(frozen=True, slots=True)
class _Crashed:
    """A worker raised (a bug): its rows stay ``sending`` for the next run to resolve."""

    error: BaseException


Step = Callable[[Sequence[R], Sequence[B]], Sequence[J | None]]


def run_waves(
    batches: Sequence[B],
    *,
    concurrency: int,
    step: Step[R, B, J],
    send: Callable[[J], R],
    stop: threading.Event,
) -> int:
    """Send every batch, at most ``concurrency`` at a time, in waves; returns how many waves.

    ``step(outcomes, wave)`` records ``outcomes`` and claims ``wave`` in one transaction and
    returns, per batch of the wave, what to send, or None when nothing of it is left to send
    (all suppressed or already claimed). On ``stop`` no new wave is taken; the batches in flight
    finish and are recorded. The first error of ``send`` or ``step`` stops new waves and is
    raised once the batches in flight are done (and, for ``send``, recorded).
    """
    done: queue.SimpleQueue[R | _Crashed] = queue.SimpleQueue()
    errors: list[BaseException] = []
    in_flight = waves = start = 0
    min_wave = max(1, concurrency // 4)

    def work(job: J) -> None:
        try:
            done.put(send(job))
        except BaseException as exc:
            log.exception("sending a batch failed")
            done.put(_Crashed(exc))

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="delivery") as pool:
        while True:
            halted = stop.is_set() or bool(errors)
            more = not halted and start < len(batches)
            arrived: list[R | _Crashed] = []
            if in_flight and not more:
                arrived.append(done.get())
            # A wave waits until a quarter of the slots (or all that is left) can be filled: a
            # transaction per freed slot would cost the dispatcher more than the requests.
            want = min(min_wave, len(batches) - start)
            while more and in_flight - len(arrived) > concurrency - want:
                arrived.append(done.get())
            while True:
                try:
                    arrived.append(done.get_nowait())
                except queue.Empty:
                    break
            in_flight -= len(arrived)
            outcomes: list[R] = []
            for item in arrived:
                if isinstance(item, _Crashed):
                    errors.append(item.error)
                else:
                    outcomes.append(item)
            # Again after the wait: a stop (or an error) may have arrived meanwhile.
            more = more and not stop.is_set() and not errors
            take = min(concurrency - in_flight, len(batches) - start) if more else 0
            if not outcomes and not take:
                if in_flight:
                    continue
                break
            wave = batches[start : start + take]
            try:
                jobs = step(outcomes, wave)
            except BaseException as exc:  # nothing of this turn was committed
                errors.append(exc)
                if not in_flight:
                    break
                continue
            start += take
            waves += 1 if take else 0
            for job in jobs:
                if job is not None:
                    pool.submit(work, job)
                    in_flight += 1
    if errors:
        raise errors[0]
    return waves
