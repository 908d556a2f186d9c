"""Waves: the database work of many batches in one transaction, without widening the window."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Sequence

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from newsletter.db import make_engine
from newsletter.delivery.backends import Batch, Recipient, Sender
from newsletter.delivery.backends.sendgrid import SendGridBackend, plan_requests
from newsletter.delivery.models import Delivery
from newsletter.delivery.send import send_issue
from newsletter.delivery.waves import run_waves
from newsletter.email.render import RenderedEmail
from tests.fixtures_delivery import (
    API_KEY,
    SEND_PATH,
    FakeSendGrid,
    delivery_settings,
    recorded_view,
    seed_issue,
    seed_subscribers,
)
from tests.fixtures_email import RECORDED_DAY
from tests.httpserver import Request, Response

ROWS = Delivery.__table__.c  # type: ignore[attr-defined]
WORDS = ["learning", "graph", "privacy", "model", "data", "federated", "llm", "time"]


def test_every_request_finds_its_rows_sending_and_the_window_bounded(
    engine: Engine, database_url: str
) -> None:
    """The recording server looks at the outbox as each request arrives: every recipient's row
    is already committed ``sending`` (never ``queued``), and no more rows are ``sending`` than
    ``concurrency`` batches."""
    seed_issue(engine)
    seed_subscribers(engine, 24, keywords=lambda i: [WORDS[i % 8]])
    concurrency, per_batch = 3, 2
    reader = make_engine(database_url)
    seen: list[tuple[Counter[str], int]] = []
    with FakeSendGrid() as sg:
        sg.delay = 0.01  # requests overlap, so waves of several batches form

        def checking(req: Request) -> Response:
            ids = [p["custom_args"]["message_id"] for p in json.loads(req.body)["personalizations"]]
            with reader.connect() as conn:
                mine = conn.execute(select(ROWS.status).where(ROWS.message_id.in_(ids))).scalars()
                sending = conn.execute(
                    select(func.count()).where(ROWS.status == "sending")
                ).scalar_one()
            seen.append((Counter(mine), sending))
            return sg.handle(req)

        sg.server.routes[("POST", SEND_PATH)] = checking
        settings = delivery_settings(
            database_url, backend="sendgrid", sendgrid_host=sg.url, concurrency=concurrency
        )
        backend = SendGridBackend(API_KEY, sg.url, max_retries=0, sections=False)
        backend.max_batch = per_batch
        report = send_issue(engine, settings, RECORDED_DAY, view=recorded_view(), backend=backend)
    reader.dispose()
    assert report.sent == 24 and report.complete and report.requests == len(seen) == 16
    assert all(set(statuses) == {"sending"} for statuses, _ in seen), seen
    assert sum(sum(statuses.values()) for statuses, _ in seen) == 24
    assert max(n for _, n in seen) <= concurrency * per_batch
    assert report.waves < report.batches  # several batches shared a claim transaction


def _fake_run(
    n: int, concurrency: int, *, fail_at: int | None = None, stop_after: int | None = None
) -> tuple[list[int], list[int], list[int], int]:
    """run_waves over batches 0..n-1 with a fake outbox; returns (claimed, sent, recorded,
    the most batches ever claimed and not yet recorded)."""
    claimed: list[int] = []
    sent: list[int] = []
    recorded: list[int] = []
    live: list[int] = []  # claimed with something left to send
    open_most = 0
    stop = threading.Event()
    lock = threading.Lock()

    def step(outcomes: Sequence[int], wave: Sequence[int]) -> list[int | None]:
        nonlocal open_most
        recorded.extend(outcomes)
        claimed.extend(wave)
        jobs = [b if b % 5 != 4 else None for b in wave]  # every 5th: all suppressed
        live.extend(b for b in jobs if b is not None)
        open_most = max(open_most, len(live) - len(recorded))
        return jobs

    def send(batch: int) -> int:
        with lock:
            sent.append(batch)
        if batch == fail_at:
            raise RuntimeError("a bug")
        if stop_after is not None and len(sent) >= stop_after:
            stop.set()
        return batch

    run_waves(list(range(n)), concurrency=concurrency, step=step, send=send, stop=stop)
    return claimed, sent, recorded, open_most


def test_waves_record_every_batch_once_within_the_window() -> None:
    claimed, sent, recorded, open_most = _fake_run(200, 7)
    assert claimed == list(range(200))
    live = [b for b in range(200) if b % 5 != 4]
    assert sorted(sent) == live and sorted(recorded) == live
    assert open_most <= 7


def test_waves_stop_takes_no_new_wave_and_records_the_ones_in_flight() -> None:
    claimed, sent, recorded, _ = _fake_run(200, 4, stop_after=10)
    assert len(claimed) < 200
    assert sorted(recorded) == sorted(sent)  # every batch sent was recorded


def test_a_failing_send_stops_new_waves_and_is_raised_after_the_rest_are_recorded() -> None:
    with pytest.raises(RuntimeError, match="a bug"):
        _fake_run(200, 4, fail_at=12)


def test_a_request_body_is_serialised_once_and_is_the_body() -> None:
    body = RenderedEmail("Digest é", "<p>Hello é -unsubscribe_url-</p>", "Hello é")
    recipients = tuple(
        Recipient(f"r{i}@example.com", f"<m{i}@example.org>", {"-unsubscribe_url-": f"u{i}"})
        for i in range(5)
    )
    batch = Batch(body, recipients, Sender("d@example.org", "Digest"), categories=("digest",))
    requests, failed = plan_requests(batch, max_bytes=700)
    assert not failed and len(requests) > 1
    for req in requests:
        assert json.loads(req.data) == req.body
        assert len(req.data.encode("utf-8")) <= 700  # the limit holds on the bytes sent


class _WatchedStop(threading.Event):
    """A stop event that tells when the dispatcher has looked at it."""

    def __init__(self) -> None:
        super().__init__()
        self.looked = threading.Event()

    def is_set(self) -> bool:
        answer = super().is_set()
        self.looked.set()
        return answer


def test_a_stop_that_arrives_while_waiting_takes_no_new_wave() -> None:
    """The stop comes during the only batch in flight, after the dispatcher looked at the stop
    and went to wait for that batch: woken by its outcome, it records it and claims nothing
    more (it must look at the stop again after waiting)."""
    stop = _WatchedStop()
    sent: list[int] = []
    recorded: list[int] = []

    def step(outcomes: Sequence[int], wave: Sequence[int]) -> list[int | None]:
        recorded.extend(outcomes)
        stop.looked.clear()  # from here on: has the dispatcher looked at the stop again?
        return list(wave)

    def send(job: int) -> int:
        sent.append(job)
        assert stop.looked.wait(timeout=10)  # the dispatcher is past its look, about to wait
        stop.set()  # SIGTERM arrives while this batch is in flight
        return job

    run_waves([1, 2, 3], concurrency=1, step=step, send=send, stop=stop)
    assert sent == [1] and recorded == [1]
