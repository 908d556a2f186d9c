"""Requests built in a separate preparing process (a large SendGrid send) against a real
recording server: the same e-mails as the sending threads build, and a preparing process
killed mid-send loses no reader and mails none twice."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from newsletter.delivery.models import Delivery
from newsletter.delivery.send import SendReport, send_issue
from tests.fixtures_delivery import (
    ENV,
    FakeSendGrid,
    delivery_settings,
    recorded_view,
    seed_issue,
    seed_subscribers,
    sendgrid_delivers,
    undated,
)
from tests.fixtures_email import RECORDED_DAY
from tests.httpserver import Request, Response

DT = Delivery.__table__.c  # type: ignore[attr-defined]
READERS = 30
WORDS = ["learning", "graph", "privacy", "model", "data", "neural", "time", "robust"]


def _keywords(i: int) -> list[str]:
    """Most readers a selection of their own (several share one), a few the whole digest."""
    return [] if i % 7 == 0 else [WORDS[i % len(WORDS)], WORDS[(i * 3) % len(WORDS)]]


class Preparers:
    """Notes, at each request the server answers, which processes the sender has started
    (its preparing processes are its children); with ``kill``, kills them at the first."""

    def __init__(self, sg: FakeSendGrid, kill: bool = False) -> None:
        self.seen: set[int] = set()
        self.killed: list[int] = []
        self.kill = kill
        self._handle = sg.handle
        sg.server.routes[("POST", "/v3/mail/send")] = self.handle

    def handle(self, req: Request) -> Response:
        children = [p.pid for p in multiprocessing.active_children() if p.pid is not None]
        self.seen.update(children)
        if self.kill and children and not self.killed:
            for pid in children:
                os.kill(pid, signal.SIGKILL)
            self.killed = children
        return self._handle(req)


def _run(
    engine: Engine, database_url: str, *, processes: int, kill: bool = False
) -> tuple[SendReport, list[dict[str, Any]], Preparers]:
    with FakeSendGrid() as sg:
        preparers = Preparers(sg, kill)
        settings = delivery_settings(
            database_url,
            backend="sendgrid",
            sendgrid_host=sg.url,
            concurrency=2,
            prepare_processes=processes,
            prepare_min_batches=1,
        )
        report = send_issue(engine, settings, RECORDED_DAY, view=recorded_view(), environ=ENV)
        return report, sg.bodies(), preparers


def _delivered(bodies: list[dict[str, Any]]) -> dict[str, tuple[str, ...]]:
    """Each recipient's e-mail as SendGrid would make it (tokens masked); fails on a reader
    mailed twice."""
    out: dict[str, tuple[str, ...]] = {}
    for body in bodies:
        for p in body["personalizations"]:
            to = p["to"][0]["email"]
            assert to not in out, f"{to} mailed twice"
            out[to] = tuple(undated(x) for x in sendgrid_delivers(body, to))
    return out


def _statuses(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(DT.status)).scalars())


def test_a_preparing_process_builds_the_requests_the_sending_threads_build(
    engine: Engine, database_url: str
) -> None:
    seed_issue(engine)
    seed_subscribers(engine, READERS, keywords=_keywords)
    report, bodies, preparers = _run(engine, database_url, processes=1)
    assert report.sent == READERS and report.failed == report.unknown == report.deferred == 0
    assert preparers.seen, "no preparing process was running while the requests went out"
    assert report.distinct_bodies == len(bodies) > 5  # expanded bodies: one per selection
    in_process = _delivered(bodies)
    assert _statuses(engine) == ["sent"] * READERS

    with engine.begin() as conn:
        conn.execute(delete(Delivery.__table__))  # type: ignore[attr-defined]
    threads, thread_bodies, none = _run(engine, database_url, processes=0)
    assert threads.sent == READERS and not none.seen
    assert _delivered(thread_bodies) == in_process
    assert len(in_process) == READERS


def test_a_killed_preparing_process_loses_no_reader_and_mails_none_twice(
    engine: Engine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    seed_issue(engine)
    seed_subscribers(engine, READERS, keywords=_keywords)
    with caplog.at_level(logging.WARNING, logger="newsletter.delivery.send"):
        report, bodies, preparers = _run(engine, database_url, processes=1, kill=True)
    assert preparers.killed, "the preparing process was not killed"
    # The batches it had not prepared are prepared by the sending threads instead.
    assert report.sent == READERS and report.failed == report.unknown == report.deferred == 0
    assert len(_delivered(bodies)) == READERS
    assert _statuses(engine) == ["sent"] * READERS
    assert "preparing process" in caplog.text
