"""Helpers of the subscriber and web tests: signed settings, the outbox, forms and links."""

from __future__ import annotations

import re
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from newsletter.config import Settings
from newsletter.web.app import create_app

SECRET = "Kz9qP2vL8xR4mN7wB1cY6hJ0dF5gS-unit-k3y"


def with_secret(settings: Settings, secret: str = SECRET) -> Settings:
    """Secrets come only from the environment; tests put one on the model directly."""
    return settings.model_copy(update={"secret_key": SecretStr(secret)})


def outbox(settings: Settings) -> list[EmailMessage]:
    """Messages in the file outbox, oldest first."""
    folder = Path(settings.delivery.outbox_dir)
    if not folder.exists():
        return []
    files = sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    parser = BytesParser(policy=policy.default)
    return [parser.parsebytes(p.read_bytes()) for p in files]  # type: ignore[misc]


def wait_for_outbox(settings: Settings, count: int, timeout: float = 30.0) -> list[EmailMessage]:
    """The outbox once it holds ``count`` messages: a live server sends its one-off e-mails
    after answering (a background task), so a test polls for them, up to a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        found = outbox(settings)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def link_in(msg: EmailMessage, purpose: str) -> str:
    """The path (``/confirm/<token>``) of the first link of ``purpose`` in a message."""
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    match = re.search(rf"https?://[^/\s]+(/{purpose}/[A-Za-z0-9_.\-%]+)", text)
    assert match, f"no /{purpose}/ link in {text!r}"
    return match.group(1)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def make_client(settings: Settings, engine: Engine | None = None, **kw: Any) -> TestClient:
    return TestClient(create_app(settings, engine=engine), **kw)


def signup(client: TestClient, email: str, **fields: Any) -> Any:
    page = client.get("/")
    data: dict[str, Any] = {"csrf_token": csrf_of(page.text), "email": email, **fields}
    answer = client.post("/subscribe", data=data)
    drain(client)
    return answer


def drain(client: TestClient) -> None:
    """Wait for the work a signup queued after its answer (the confirmation e-mail)."""
    client.app.state.after_response.drain()  # type: ignore[attr-defined]


def confirm_latest(client: TestClient, settings: Settings) -> str:
    """Open the newest confirmation link and press the button; returns the confirm path."""
    path = link_in(outbox(settings)[-1], "confirm")
    page = client.get(path)
    assert page.status_code == 200, page.text
    done = client.post(path, data={"csrf_token": csrf_of(page.text)})
    assert done.status_code == 200, done.text
    return path
