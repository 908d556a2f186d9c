"""Test helpers for delivery: a recording SendGrid-compatible server and seeded databases."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from newsletter.config import Settings, settings_for_tests
from newsletter.models import IssueRow
from subscribers.models import Subscriber
from tests.fixtures_email import RECORDED_DAY, make_view, recorded_papers
from tests.fixtures_service import wait_for
from tests.httpserver import Request, Response, TestServer

SECRET = "dlv-7Qm2xK9pL4vN8rT1wZ6yB3cF5hJ0sD"
API_KEY = "SG.test-key"
ENV = {"SENDGRID_API_KEY": API_KEY}
SEND_PATH = "/v3/mail/send"


def with_secret(settings: Settings) -> Settings:
    return settings.model_copy(update={"secret_key": SecretStr(SECRET)})


def delivery_settings(database_url: str, **delivery: Any) -> Settings:
    """Settings of the delivery tests; the file outbox goes to a temp dir, never the checkout."""
    delivery.setdefault("outbox_dir", tempfile.mkdtemp(prefix="nl-outbox-"))
    return with_secret(
        settings_for_tests(
            database_url=database_url,
            categories=["cs.LG"],
            base_url="https://digest.example.org",
            delivery=delivery,
        )
    )


def seed_issue(engine: Engine, day: dt.date = RECORDED_DAY) -> int:
    with engine.begin() as conn:
        result = conn.execute(
            insert(IssueRow.__table__).values(  # type: ignore[attr-defined]
                date=day,
                categories=["cs.LG"],
                papers_found=50,
                status="built",
                created_at=dt.datetime.now(dt.UTC),
                updated_at=dt.datetime.now(dt.UTC),
                source="api",
            )
        )
        return int(result.inserted_primary_key[0])


def seed_subscribers(
    engine: Engine, n: int, *, keywords: Callable[[int], list[str]] | None = None
) -> list[int]:
    """``n`` active subscribers ``reader{i}@example.com``; default digest unless ``keywords``."""
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "email": f"reader{i}@example.com",
            "status": "active",
            "created_at": now,
            "status_changed_at": now,
            "keywords": keywords(i) if keywords else [],
            "categories": [],
            "include_summaries": True,
            "token_nonce": "",
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        conn.execute(insert(Subscriber.__table__), rows)  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return [
            r[0]
            for r in conn.execute(
                Subscriber.__table__.select().with_only_columns(Subscriber.__table__.c.id)
            )
        ]  # type: ignore[attr-defined]


def recorded_view(day: dt.date = RECORDED_DAY):  # type: ignore[no-untyped-def]
    papers = recorded_papers()[:30]
    return make_view(papers, day=day)


class FakeSendGrid:
    """A recording SendGrid-compatible Mail Send endpoint.

    ``script`` holds responses to give, in order, before falling back to 202; ``block_at`` makes
    the n-th request (1-based) wait until ``release`` is set (the crash tests kill the client then).
    """

    def __init__(self) -> None:
        self.server = TestServer()
        self.script: list[Response] = []
        self.block_at: set[int] = set()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.count = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0
        self.server.routes[("POST", SEND_PATH)] = self.handle

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def requests(self) -> list[Request]:
        return self.server.requests

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.server.requests]

    def recipients(self) -> list[str]:
        return [p["to"][0]["email"] for b in self.bodies() for p in b["personalizations"]]

    def handle(self, req: Request) -> Response:
        with self.lock:
            self.count += 1
            n = self.count
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            scripted = self.script.pop(0) if self.script else None
        try:
            if n in self.block_at:
                self.release.wait(30)
            elif self.delay:
                threading.Event().wait(self.delay)
            if req.headers.get("authorization") != f"Bearer {API_KEY}":
                return Response(401, '{"errors":[{"message":"unauthorized"}]}')
            if scripted is not None:
                return scripted
            return Response(202, b"", headers={"X-Message-Id": f"sg-{n}"})
        finally:
            with self.lock:
                self.in_flight -= 1

    def __enter__(self) -> FakeSendGrid:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.__exit__(*exc)


def sendgrid_delivers(body: dict[str, Any], to: str) -> tuple[str, str, str]:
    """What SendGrid makes of a Mail Send body for one recipient: (subject, html, text).

    Written from SendGrid's documentation, independently of our code: every substitution of the
    personalization replaced as a plain string, then every section of the message.
    """
    (p,) = [p for p in body["personalizations"] if p["to"][0]["email"] == to]
    parts = {c["type"]: c["value"] for c in body["content"]}
    out = [p.get("subject", body["subject"]), parts["text/html"], parts["text/plain"]]
    for i, value in enumerate(out):
        for key, sub in p.get("substitutions", {}).items():
            value = value.replace(key, sub)
        for key, section in body.get("sections", {}).items():
            value = value.replace(key, section)
        out[i] = value
    return out[0], out[1], out[2]


# Link tokens carry their signing time: two runs' e-mails are compared up to the token.
DATED_TOKEN = re.compile(r"(/(?:unsubscribe|preferences|feedback)/|\?r=)[A-Za-z0-9._%-]+")


def undated(text: str) -> str:
    """``text`` with every dated link token replaced by ``T``."""
    return DATED_TOKEN.sub(r"\1T", text)


def sigkill_while_held(
    proc: subprocess.Popen[str],
    sg: FakeSendGrid,
    nth: int,
    *,
    before_kill: Callable[[int], None] = lambda _pid: None,
) -> None:
    """Hold the sender's request ``nth`` at the server, SIGKILL the sender while it waits for
    the answer (``before_kill`` gets its pid first), then let the server go on."""
    sg.release = threading.Event()
    sg.block_at = {nth}
    try:
        wait_for(lambda: sg.count >= nth and proc.poll() is None, 30, f"request {nth}")
        before_kill(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        sg.release.set()
