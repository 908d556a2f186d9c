"""Signup e-mails in the digest's design (HTML + text), and the postal-address warning."""

from __future__ import annotations

import email
import email.policy
import logging
from html.parser import HTMLParser

import pytest
from pydantic import SecretStr

from newsletter.config import settings_for_tests
from newsletter.delivery.preflight import check_ready
from newsletter.email.sender_checks import postal_address_warning
from subscribers.emails import already_subscribed_message, confirmation_message
from tests.independent_parsers import mailparser, raw_header_lines

SETTINGS = settings_for_tests(
    base_url="https://digest.example.org",
    site_name='Digest <b>"&',
    email={"postal_address": "1 Main Street <i>, Springfield", "from_email": "news@example.org"},
)
CONFIRM = "https://digest.example.org/confirm/eyJzIjoxfQ.abc-_"
PREFS = "https://digest.example.org/preferences/eyJzIjoxfQ.def-_"


class Page(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.hrefs += [v or "" for k, v in attrs if k == "href"]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.mark.parametrize(
    ("build", "url", "label"),
    [
        (
            lambda: confirmation_message(SETTINGS, to="r@example.org", confirm_url=CONFIRM),
            CONFIRM,
            "Confirm my subscription",
        ),
        (
            lambda: already_subscribed_message(SETTINGS, to="r@example.org", preferences_url=PREFS),
            PREFS,
            "Change my preferences",
        ),
    ],
)
def test_signup_mails_are_html_and_text_in_the_digest_design(build, url, label) -> None:  # type: ignore[no-untyped-def]
    raw = bytes(build())
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    page = Page(html)
    assert page.hrefs.count(url) == 1 and "b" not in page.tags and "i" not in page.tags
    shown = "".join(page.text)
    assert label in shown and 'Digest <b>"&' in shown and "1 Main Street <i>, Springfield" in shown
    assert 'content="light dark" name=color-scheme' in html and "prefers-color-scheme:dark" in html
    assert f"\n{url}\n" in text and "1 Main Street <i>, Springfield" in text
    assert raw_header_lines(raw, "Message-ID")[0].startswith(b"Message-ID: <")
    seen = mailparser(raw)
    assert url in seen["text"] and f'href="{url}"' in seen["html"]


def test_real_backends_without_a_postal_address_warn_at_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bare = settings_for_tests(delivery={"backend": "smtp", "smtp_host": "127.0.0.1"}).model_copy(
        update={"secret_key": SecretStr("k" * 40)}
    )
    assert "email.postal_address" in (postal_address_warning(bare) or "")
    with caplog.at_level(logging.WARNING):
        check_ready(bare, environ={})
    assert any("email.postal_address is empty" in r.getMessage() for r in caplog.records)
    with_address = bare.model_copy(
        update={"email": bare.email.model_copy(update={"postal_address": "1 Main St"})}
    )
    assert postal_address_warning(with_address) is None
    assert postal_address_warning(settings_for_tests()) is None  # the file backend sends nothing
