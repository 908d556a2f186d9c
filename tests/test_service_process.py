"""The day always completes, with real processes: `newsletter serve` fired by its schedule, a
slow SendGrid-compatible server, ~1,000 subscribers, the OpenAI-compatible model server.

Three interruptions, each once per database: SIGTERM in the middle of the send, then a new
`newsletter serve` finishes by itself; the same with SIGKILL (policy ``resend``: only the
in-flight requests may be doubled); `newsletter run` killed mid-send, `newsletter send` refused
beside a running send, and `newsletter run` again.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from newsletter.arxiv.replay import ReplayServer, demo_server
from newsletter.config import Settings, load_settings
from newsletter.delivery.models import Delivery
from newsletter.runtime.scheduler import JOB_ID, JOBSTORE_TABLE, DigestScheduler
from tests.fixtures_delivery import API_KEY, SECRET, FakeSendGrid, seed_subscribers
from tests.fixtures_pipeline import recorded_papers, repo_config
from tests.fixtures_service import RecordingFire, wait_for
from tests.fixtures_summaries import ENV as AI_ENV
from tests.fixtures_summaries import FakeOpenAI, ai_section
from tests.httpserver import TestServer

ROOT = Path(__file__).resolve().parent.parent
READERS = 1000
CONCURRENCY = 2
TLDR = re.compile(r"A short summary of [^<\n]*?\.")


def _keywords() -> list[str]:
    """One distinctive title word of each of 40 recorded papers: about 40 distinct e-mails."""
    words: list[str] = []
    for paper in recorded_papers()[:40]:
        longest = max(re.findall(r"[A-Za-z]{6,}", paper.title), key=len, default="")
        if longest and longest.lower() not in words:
            words.append(longest.lower())
    return words


@dataclass
class Proc:
    popen: subprocess.Popen[str]
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> str:
        """Send ``sig`` (if it still runs), wait for the exit; the output so far."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout)
        finally:
            if self.popen.poll() is None:
                self.popen.kill()
                self.popen.wait()
        return self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Stack:
    """The services around the newsletter and how to start its commands."""

    tmp: Path
    database_url: str
    engine: Engine
    arxiv: ReplayServer
    sendgrid: FakeSendGrid
    model: FakeOpenAI
    config: Path
    settings: Settings

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        env.update(AI_ENV)
        env.update(
            PYTHONPATH=str(ROOT),
            NEWSLETTER_CONFIG=str(self.config),
            NEWSLETTER_SECRET_KEY=SECRET,
            SENDGRID_API_KEY=API_KEY,
        )
        return env

    def start(self, *args: str) -> Proc:
        """A command whose output goes to a log file (a pipe nobody reads could block it)."""
        log = self.tmp / f"log-{len(list(self.tmp.glob('log-*')))}.txt"
        with log.open("w") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "newsletter", *args],
                cwd=self.tmp,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        return Proc(popen, log)

    def serve(self) -> Proc:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return self.start("serve", "--port", str(port))

    def waiting(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(Delivery)
                    .where(Delivery.status.in_(("queued", "sending")))  # type: ignore[attr-defined]
                ).scalar_one()
            )

    def statuses(self) -> Counter[str]:
        with self.engine.connect() as conn:
            return Counter(conn.execute(select(Delivery.status)).scalars())

    def due_now(self) -> None:
        """The stored schedule's next fire time is now: the next `serve` fires at once, through
        APScheduler's catch-up, as a service back within the grace time does."""
        primer = DigestScheduler(self.settings, self.engine, fire=RecordingFire())
        primer.start()
        primer.shutdown()
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        store = SQLAlchemyJobStore(engine=self.engine, tablename=JOBSTORE_TABLE)
        store.start(BackgroundScheduler(), "default")
        job = store.lookup_job(JOB_ID)
        assert job is not None
        job._modify(next_run_time=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        store.update_job(job)

    def readers_mailed(self) -> Counter[str]:
        return Counter(self.sendgrid.recipients())

    def expected(self) -> set[str]:
        """Readers with something to read today (their delivery row is not ``skipped``)."""
        from subscribers.models import Subscriber

        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Subscriber.email)
                .join(Delivery, Delivery.subscriber_id == Subscriber.id)  # type: ignore[arg-type]
                .where(Delivery.status != "skipped")
            )
            return set(rows.scalars())


@pytest.fixture
def stack(engine: Engine, database_url: str, tmp_path: Path) -> Iterator[Stack]:
    words = _keywords()
    seed_subscribers(engine, READERS, keywords=lambda i: [words[i % len(words)]])
    with demo_server() as arxiv, FakeSendGrid() as sg, TestServer() as model_server:
        arxiv.feed_date = dt.datetime.now(dt.UTC).date()  # the feed shows today
        model = FakeOpenAI(model_server)
        sg.delay = 0.05  # slow, and the test holds one request to interrupt the send there
        cfg = {
            "database_url": database_url,
            "archive_dir": str(tmp_path / "archive"),
            "categories": list(arxiv.categories),
            "keywords": repo_config()["keywords"],
            "base_url": "https://digest.example.org",
            "log_level": "INFO",
            "arxiv": {
                "rss_url": f"{arxiv.url}/rss/",
                "api_url": f"{arxiv.url}/api/query",
                "delay_seconds": 0,
            },
            "delivery": {
                "backend": "sendgrid",
                "sendgrid_host": sg.url,
                "concurrency": CONCURRENCY,
                "max_retries": 0,
                "in_flight_policy": "resend",
            },
            "ai_summary": ai_section(model.base_url),
            "schedule": {"cron": "* * * * *", "misfire_grace_seconds": 3600},
        }
        config = tmp_path / "config.json"
        config.write_text(json.dumps(cfg))
        settings = load_settings(config, environ={})
        yield Stack(
            tmp_path,
            database_url,
            engine,
            arxiv,
            sg,
            model,
            config,
            settings,
        )


def _mid_send(stack: Stack, proc: Proc, requests: int = 8) -> None:
    """Wait until request ``requests`` arrives; the server holds it until ``_release``."""
    sg = stack.sendgrid
    sg.release = threading.Event()
    sg.block_at = {requests}
    wait_for(
        lambda: sg.count >= requests or proc.popen.poll() is not None,
        timeout=90,
        what="the send to be under way",
    )
    assert proc.popen.poll() is None, proc.output()[-3000:]


def _release(stack: Stack) -> None:
    stack.sendgrid.block_at = set()
    stack.sendgrid.release.set()


def _tldrs(bodies: list[dict[str, object]]) -> set[str]:
    found: set[str] = set()
    for body in bodies:
        for part in body["content"]:  # type: ignore[attr-defined]
            found.update(TLDR.findall(part["value"]))
    return found


def test_a_new_serve_finishes_a_send_stopped_by_sigterm(stack: Stack) -> None:
    """A deploy in the middle of the scheduled send; a new `serve` finishes it by itself."""
    stack.due_now()
    first = stack.serve()
    try:
        _mid_send(stack, first)
        first.popen.send_signal(signal.SIGTERM)  # the held request is in flight meanwhile
        wait_for(
            lambda: "stopping: no new runs" in first.output(), timeout=60, what="the stop to begin"
        )
        assert first.popen.poll() is None  # waiting for its in-flight requests
    finally:
        _release(stack)
        log = first.stop()
    assert first.popen.returncode == 0, log[-3000:]
    assert stack.waiting() > 0, "the send finished before the SIGTERM: nothing was tested"
    sent_before, calls_before = len(stack.sendgrid.requests), len(stack.model.server.requests)
    again = stack.serve()
    try:
        wait_for(lambda: stack.waiting() == 0, timeout=90, what="the restarted service to finish")
    finally:
        log = again.stop()
    assert re.search(r"resume: finishing the issue of \S+, \d+ deliveries waiting", log), log
    mailed = stack.readers_mailed()
    assert set(mailed) == stack.expected() and len(mailed) >= READERS * 0.9
    assert set(mailed.values()) == {1}, "a graceful stop doubles nobody"
    assert stack.statuses() == Counter({"sent": len(mailed), "skipped": READERS - len(mailed)})
    # The resumed e-mails carry the summaries the first process stored, without new calls.
    assert _tldrs(stack.sendgrid.bodies()[sent_before:])
    assert len(stack.model.server.requests) == calls_before > 0


def test_a_new_serve_finishes_a_send_killed_by_sigkill(stack: Stack) -> None:
    """SIGKILL in the middle of the send: only the in-flight requests may be doubled."""
    stack.due_now()
    killed = stack.serve()
    try:
        _mid_send(stack, killed)
    finally:
        killed.stop(signal.SIGKILL)
        _release(stack)
    again = stack.serve()
    try:
        wait_for(lambda: stack.waiting() == 0, timeout=90, what="the service to finish the day")
    finally:
        again.stop()
    mailed = stack.readers_mailed()
    assert set(mailed) == stack.expected()
    doubled = [r for r, n in mailed.items() if n > 1]
    assert max(mailed.values()) <= 2
    biggest = max(len(b["personalizations"]) for b in stack.sendgrid.bodies())
    assert len(doubled) <= CONCURRENCY * biggest


def test_run_killed_mid_send_then_send_refused_and_run_again(stack: Stack) -> None:
    """`newsletter run` (no --date) killed mid-send; `send` beside a running send is refused;
    `run` again finishes the day."""
    run = stack.start("run")
    try:
        _mid_send(stack, run)
        day = dt.datetime.now(dt.UTC).date().isoformat()
        refused = stack.start("send", "--date", day)
        refused.popen.wait(60)
        assert refused.popen.returncode == 1, refused.output()
        assert f"another run of {day} is in progress" in refused.output()
    finally:
        run.stop(signal.SIGKILL)
        _release(stack)
    rerun = stack.start("run")
    assert rerun.popen.wait(120) == 0, rerun.output()[-3000:]
    assert stack.waiting() == 0
    mailed = stack.readers_mailed()
    assert set(mailed) == stack.expected() and max(mailed.values()) <= 2
