"""Every request shape we send, checked by SendGrid's own OpenAPI contract (Prism mock)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter.config import settings_for_tests
from newsletter.delivery.backends import Batch, Recipient, Sender
from newsletter.delivery.backends.sendgrid import SendGridBackend
from newsletter.delivery.transactional import send_message
from newsletter.email.render import DigestRenderer, RenderedEmail, shared_content
from newsletter.email.selection import SubscriberPrefs, select_all
from tests.fixtures_delivery import API_KEY, ENV, delivery_settings
from tests.fixtures_email import make_view, recorded_papers
from tests.live_server import free_port

ROOT = Path(__file__).resolve().parent.parent
PRISM = ROOT / "build" / "node" / "node_modules" / ".bin" / "prism"
SPEC = ROOT / "build" / "sendgrid.yaml"
pytestmark = pytest.mark.prism

BODY = RenderedEmail(
    "arXiv digest for 2026-04-22: 3 papers",
    '<p>Papers… <a href="-unsubscribe_url-">unsubscribe</a>'
    ' <a href="-preferences_url-">prefs</a></p>',
    "Papers…\nUnsubscribe: -unsubscribe_url-\nPreferences: -preferences_url-\n",
)


@pytest.fixture(scope="session")
def prism_url() -> Iterator[str]:
    if not PRISM.exists() or not SPEC.exists():
        reason = (
            f"Prism or the patched spec is missing ({PRISM}, {SPEC}): bash scripts/test-deps.sh"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    port = free_port()
    proc = subprocess.Popen(
        [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), str(SPEC)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("Prism did not start")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(10)


def _recipients(n: int) -> tuple[Recipient, ...]:
    return tuple(
        Recipient(
            email=f"reader{i}@example.com",
            message_id=f"<digest.20260422.{i}.abc@example.org>",
            substitutions={
                "-unsubscribe_url-": f"https://digest.example.org/unsubscribe/t{i}",
                "-preferences_url-": f"https://digest.example.org/preferences/t{i}",
            },
            headers={
                "List-Unsubscribe": f"<https://digest.example.org/unsubscribe/t{i}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        )
        for i in range(n)
    )


def _backend(url: str, sandbox: bool = False) -> SendGridBackend:
    return SendGridBackend(API_KEY, url, sandbox_mode=sandbox, max_retries=0)


@pytest.mark.parametrize("sandbox", [False, True])
@pytest.mark.parametrize("reply_to", [None, "editor@example.org"])
def test_digest_batch_shapes_are_accepted(
    prism_url: str, sandbox: bool, reply_to: str | None
) -> None:
    batch = Batch(
        content=BODY,
        recipients=_recipients(3),
        sender=Sender("digest@example.org", "arXiv Digest", reply_to),
        headers={"List-Id": '"arXiv Digest" <arxiv-digest.example.org>'},
        categories=("digest", "digest-2026-04-22"),
    )
    backend = _backend(prism_url, sandbox)
    outcomes = backend.send_batch(batch)
    errors = {o.error for o in outcomes.values()}
    assert {o.status for o in outcomes.values()} == {"sent"}, errors
    assert all(o.provider_id for o in outcomes.values())  # X-Message-Id recorded
    assert backend.requests == 1


def test_transactional_message_is_accepted(prism_url: str, sqlite_url: str) -> None:
    settings = delivery_settings(sqlite_url, backend="sendgrid", sendgrid_host=prism_url)
    msg = EmailMessage()
    msg["From"] = "arXiv Digest <digest@example.org>"
    msg["To"] = "new@example.com"
    msg["Subject"] = "Confirm your subscription"
    msg["Message-ID"] = "<confirm.1@example.org>"
    msg.set_content("Confirm: https://digest.example.org/confirm/t")
    msg.add_alternative(
        "<p><a href='https://digest.example.org/confirm/t'>Confirm</a></p>", subtype="html"
    )
    assert send_message(settings, msg, environ=ENV)


def test_the_mock_does_refuse_bad_shapes(prism_url: str) -> None:
    """A control: a body breaking the schema gets 400, so the 202s above mean something."""
    outcome = _backend(prism_url).post({"from": {"email": "digest@example.org"}, "subject": "x"})
    assert outcome.status == "failed" and "400" in (outcome.error or "")


def test_header_injection_never_reaches_sendgrid(prism_url: str) -> None:
    (good,) = _recipients(1)
    evil = Recipient(
        good.email, good.message_id, good.substitutions, {"X-Tag": "a\r\nBcc: x@evil.org"}
    )
    backend = _backend(prism_url)
    outcomes = backend.send_batch(Batch(BODY, (evil,), Sender("digest@example.org")))
    assert outcomes[evil.message_id].status == "failed" and backend.requests == 0
    subject = RenderedEmail("Hi\nBcc: x@evil.org", BODY.html, BODY.text)
    outcomes = backend.send_batch(Batch(subject, (good,), Sender("digest@example.org")))
    assert outcomes[good.message_id].status == "failed" and backend.requests == 0


@pytest.mark.parametrize("sandbox", [False, True])
def test_shared_body_with_sections_is_accepted(prism_url: str, sandbox: bool) -> None:
    """The real shared digest body: slots per personalization, card pieces as sections.

    Note: SendGrid's published spec no longer describes ``sections`` (nor forbids unknown
    fields), so this proves only that the rest of the request is valid with them present.
    """
    view = make_view(recorded_papers()[:8])
    settings = settings_for_tests(base_url="https://digest.example.org")
    readers = [
        SubscriberPrefs(1, "reader1@example.com", keywords=("learning",)),
        SubscriberPrefs(2, "reader2@example.com"),
    ]
    selections = select_all(view, readers, settings)
    body = DigestRenderer(settings).shared(view, {}, True)
    recipients = tuple(
        Recipient(
            email=r.email,
            message_id=f"<digest.20260422.{r.id}.abc@example.org>",
            substitutions={
                **body.substitutions(selections[r.id]),
                **_recipients(1)[0].substitutions,
            },
            headers=_recipients(1)[0].headers,
        )
        for r in readers
    )
    batch = Batch(
        shared_content(body),
        recipients,
        Sender("digest@example.org", "arXiv Digest"),
        headers={"List-Id": '"arXiv Digest" <arxiv-digest.example.org>'},
        categories=("digest", "digest-2026-04-22"),
    )
    backend = _backend(prism_url, sandbox)
    outcomes = backend.send_batch(batch)
    assert {o.status for o in outcomes.values()} == {"sent"}, {o.error for o in outcomes.values()}
    assert backend.requests == 1
