"""Digest headers: one-click unsubscribe, List-Id, unique Message-IDs, no CR/LF from data."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest
from pydantic import ValidationError

from newsletter.config import Settings, settings_for_tests
from newsletter.email.headers import (
    HeaderInjectionError,
    build_message,
    digest_headers,
    fold_raw,
    new_message_id,
)
from newsletter.email.render import DigestRenderer, RenderedEmail, personalise
from newsletter.email.selection import SubscriberPrefs, select_all
from tests.fixtures_email import make_view, paper
from tests.independent_parsers import mailparser, raw_header_lines

SETTINGS = settings_for_tests(
    base_url="https://digest.example.org",
    site_name="arXiv Digest",
    email={
        "from_email": "news@mail.example.org",
        "from_name": "Digest, the",
        "reply_to": "editor@example.org",
        "list_id": "daily.digest.example.org",
    },
)
NOW = dt.datetime(2026, 4, 22, 6, 0, tzinfo=dt.UTC)
UNSUB = "https://digest.example.org/unsubscribe/tok"


def headers(**kw: object) -> dict[str, str]:
    args: dict[str, object] = {
        "to": "reader@example.org",
        "unsubscribe_url": UNSUB,
        "message_id": "<m1@mail.example.org>",
        "subject": "Today",
        "now": lambda: NOW,
    }
    args.update(kw)
    return digest_headers(SETTINGS, **args)  # type: ignore[arg-type]


def test_one_click_unsubscribe_and_list_headers() -> None:
    h = headers()
    assert h["List-Unsubscribe"] == f"<{UNSUB}>"
    assert h["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert h["List-Id"] == '"arXiv Digest" <daily.digest.example.org>'
    assert h["From"] == '"Digest, the" <news@mail.example.org>'
    assert h["Reply-To"] == "editor@example.org"
    assert h["Date"] == "Wed, 22 Apr 2026 06:00:00 +0000"
    assert h["Message-ID"] == "<m1@mail.example.org>"
    assert h["Subject"] == "Today"


@pytest.mark.parametrize(
    "field,value",
    [
        ("to", "reader@example.org\r\nBcc: victim@example.org"),
        ("unsubscribe_url", UNSUB + "\nX-Evil: 1"),
        ("message_id", "<a@b>\r"),
        ("subject", "Hi\nBcc: x@y"),
    ],
)
def test_cr_or_lf_from_data_is_refused(field: str, value: str) -> None:
    with pytest.raises(HeaderInjectionError):
        headers(**{field: value})


def test_cr_lf_in_settings_is_refused_too() -> None:
    bad = SETTINGS.model_copy(update={"site_name": "Digest\r\nBcc: x@y"})
    with pytest.raises(HeaderInjectionError):
        digest_headers(bad, to="a@b.org", unsubscribe_url=UNSUB, message_id="<m@x>")


def test_unsubscribe_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        headers(unsubscribe_url="mailto:x@example.org")


def test_message_ids_are_unique_and_use_the_sender_domain() -> None:
    ids = {new_message_id(SETTINGS, dt.date(2026, 4, 22), 7) for _ in range(1000)}
    assert len(ids) == 1000
    one = next(iter(ids))
    assert one.startswith("<digest.20260422.7.") and one.endswith("@mail.example.org>")
    site = settings_for_tests(base_url="https://site.example.net")  # a sender with no domain:
    odd = site.model_copy(update={"email": site.email.model_copy(update={"from_email": "nobody"})})
    assert new_message_id(odd, dt.date(2026, 4, 22), 1).endswith("@site.example.net>")


def test_message_is_rfc5322_multipart_alternative_and_round_trips() -> None:
    p = paper("2604.00001", "Ünïcode title — LLMs", "Abstract " * 80)
    view = make_view([p], digest_ids=["2604.00001"])
    sel = select_all(view, [SubscriberPrefs(1, "r@example.org")], SETTINGS)[1]
    rendered = personalise(
        DigestRenderer(SETTINGS).render(view, sel, {}),
        {"unsubscribe_url": UNSUB, "preferences_url": "https://digest.example.org/preferences/t"},
    )
    msg = build_message(SETTINGS, rendered, headers(subject=None))
    raw = bytes(msg)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    back = email.message_from_bytes(raw, policy=email.policy.default)
    assert back.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in back.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert back["Subject"] == rendered.subject
    assert back["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = back.get_body(("html",)).get_content()
    text = back.get_body(("plain",)).get_content()
    assert "Ünïcode title — LLMs" in html and "Ünïcode title — LLMs" in text
    assert UNSUB in html and UNSUB in text


LONG_UNSUB = "https://digest.example.org/unsubscribe/" + "eyJzIjoxMjM0NSwidCI6InUifQ" * 4 + ".sig_-"
RAW_MID = "<digest.20260422.7.0123456789abcdef0123456789abcdef@mail.example.org>"


def _raw_message(settings: Settings) -> bytes:
    h = digest_headers(
        settings,
        to="reader@example.org",
        unsubscribe_url=LONG_UNSUB,
        message_id=RAW_MID,
        subject="Ünïcode subject",
        now=lambda: NOW,
    )
    return bytes(build_message(settings, RenderedEmail("s", "<p>x</p>", "x"), h))


def test_list_headers_are_written_raw_and_an_independent_parser_reads_them() -> None:
    raw = _raw_message(SETTINGS)
    assert raw_header_lines(raw, "List-Unsubscribe") == [
        b"List-Unsubscribe: <" + LONG_UNSUB.encode() + b">"
    ]
    assert raw_header_lines(raw, "List-Unsubscribe-Post") == [
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    ]
    assert raw_header_lines(raw, "List-Id") == [
        b'List-Id: "arXiv Digest" <daily.digest.example.org>'
    ]
    assert raw_header_lines(raw, "Message-ID") == [b"Message-ID: " + RAW_MID.encode()]
    assert raw_header_lines(raw, "Date") == [b"Date: Wed, 22 Apr 2026 06:00:00 +0000"]
    assert raw_header_lines(raw, "Subject")[0].startswith(b"Subject: =?utf-8?")  # still encoded
    seen = mailparser(raw)
    assert seen["unsubscribe_url"] == LONG_UNSUB and seen["unsubscribe_mail"] is None
    assert seen["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"
    assert seen["list_id"] == {"name": "arXiv Digest", "id": "daily.digest.example.org"}
    assert seen["message_id"] == RAW_MID
    assert seen["date"] == "2026-04-22T06:00:00.000Z"
    assert seen["subject"] == "Ünïcode subject"


def test_mailto_is_a_second_element_folded_between_the_two() -> None:
    settings = SETTINGS.model_copy(
        update={
            "email": SETTINGS.email.model_copy(update={"unsubscribe_mailto": "unsub@example.org"})
        }
    )
    raw = _raw_message(settings)
    assert raw_header_lines(raw, "List-Unsubscribe") == [
        b"List-Unsubscribe: <" + LONG_UNSUB.encode() + b">,",
        b" <mailto:unsub@example.org?subject=unsubscribe>",
    ]
    seen = mailparser(raw)
    assert seen["unsubscribe_url"] == LONG_UNSUB
    assert seen["unsubscribe_mail"] == "unsub@example.org?subject=unsubscribe"
    back = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(back["List-Unsubscribe"]) == (
        f"<{LONG_UNSUB}>, <mailto:unsub@example.org?subject=unsubscribe>"
    )


def test_short_list_elements_share_a_line_and_fold_only_between_elements() -> None:
    assert fold_raw("List-Unsubscribe", "<https://a.org/u>, <mailto:u@a.org>") == (
        "List-Unsubscribe: <https://a.org/u>, <mailto:u@a.org>\r\n"
    )
    with pytest.raises(ValueError, match="998"):
        fold_raw("List-Unsubscribe", "<https://a.org/" + "x" * 1000 + ">")


@pytest.mark.parametrize("bad", ["not an address", "a@b", "x@y.org\r\nBcc: z@w.org", "<a@b.org>"])
def test_unsubscribe_mailto_must_be_an_address(bad: str) -> None:
    with pytest.raises(ValidationError, match="email.unsubscribe_mailto"):
        settings_for_tests(email={"unsubscribe_mailto": bad})
