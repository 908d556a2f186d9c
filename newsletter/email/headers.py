"""Digest headers (RFC 5322, RFC 2369/8058 one-click unsubscribe, RFC 2919 List-Id).

Header values come partly from data (addresses, names, URLs); any CR or LF in them would let
data add headers, so every value is checked and a ``HeaderInjectionError`` raised instead.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, formataddr
from urllib.parse import urlsplit

from newsletter.config import Settings
from newsletter.email.render import RenderedEmail

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DOMAIN = re.compile(r"^[A-Za-z0-9.-]+$")
_BETWEEN_ELEMENTS = re.compile(r"(?<=>)\s*,\s*(?=<)")

# Structured headers whose values we write exactly as given: an RFC 2047 encoded word is not
# allowed in them, and mail clients (Gmail's one-click unsubscribe) do not decode one there.
RAW_HEADERS = frozenset(
    {"list-unsubscribe", "list-unsubscribe-post", "list-id", "message-id", "date"}
)
FOLD_WIDTH = 78
MAX_LINE = 998


class HeaderInjectionError(ValueError):
    """A header value would contain CR, LF or another control character."""


def _check(name: str, value: str) -> str:
    if _CONTROL.search(value):
        raise HeaderInjectionError(f"header {name} would contain a control character (CR/LF)")
    return value


def fold_raw(name: str, value: str, linesep: str = "\r\n") -> str:
    """``Name: value`` as given, folded only between ``<…>`` list elements (RFC 2369), never
    encoded; a line that would pass RFC 5322's 998 characters is an error, not a silent cut."""
    elements = _BETWEEN_ELEMENTS.split(value.strip())
    lines = [f"{name}: {elements[0]}"]
    for element in elements[1:]:
        if len(lines[-1]) + 2 + len(element) <= FOLD_WIDTH:
            lines[-1] += f", {element}"
        else:
            lines[-1] += ","
            lines.append(f" {element}")
    if any(len(line) > MAX_LINE for line in lines):
        raise ValueError(f"header {name} has an element longer than {MAX_LINE} characters")
    return linesep.join(lines) + linesep


class DigestPolicy(EmailPolicy):
    """``policy.SMTP`` except that ``RAW_HEADERS`` with ASCII values are written as given
    (``fold_raw``); the stdlib would turn any value over 78 characters into encoded words."""

    def _raw(self, name: str, value: object) -> str | None:
        text = str(value)
        if name.lower() in RAW_HEADERS and text.isascii():
            return fold_raw(name, text, self.linesep)
        return None

    def fold(self, name: str, value: str) -> str:
        raw = self._raw(name, value)
        return raw if raw is not None else super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        raw = self._raw(name, value)
        return raw.encode("ascii") if raw is not None else super().fold_binary(name, value)


DIGEST_POLICY = DigestPolicy(linesep="\r\n")


def message_domain(settings: Settings) -> str:
    """The domain of our Message-IDs: the sender address's, else the site's host."""
    _, at, domain = settings.email.from_email.rpartition("@")
    if not at or "." not in domain or not _DOMAIN.match(domain):
        domain = urlsplit(settings.base_url).hostname or "localhost"
    return domain


def new_message_id(settings: Settings, issue_date: dt.date, subscriber_id: int) -> str:
    """``<digest.YYYYMMDD.ID.RANDOM@domain>``: unique per call, readable in logs."""
    token = uuid.uuid4().hex
    return f"<digest.{issue_date:%Y%m%d}.{int(subscriber_id)}.{token}@{message_domain(settings)}>"


def list_id(settings: Settings) -> str:
    name = settings.site_name.replace('"', "").replace("\\", "")
    return f'"{name}" <{settings.email.list_id}>'


def digest_headers(
    settings: Settings,
    *,
    to: str,
    unsubscribe_url: str,
    message_id: str,
    subject: str | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> dict[str, str]:
    """Every header of one digest e-mail; ``Subject`` is added when given (else by the caller)."""
    if not unsubscribe_url.startswith("https://") and not unsubscribe_url.startswith("http://"):
        raise ValueError("unsubscribe_url must be an http(s) URL (one-click unsubscribe)")
    unsubscribe = f"<{unsubscribe_url}>"
    if settings.email.unsubscribe_mailto:
        unsubscribe += f", <mailto:{settings.email.unsubscribe_mailto}?subject=unsubscribe>"
    headers = {
        "From": formataddr((settings.email.from_name, settings.email.from_email)),
        "To": to,
        "Date": format_datetime(now()),
        "Message-ID": message_id,
        "List-Id": list_id(settings),
        "List-Unsubscribe": unsubscribe,
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    if settings.email.reply_to:
        headers["Reply-To"] = settings.email.reply_to
    if subject is not None:
        headers["Subject"] = subject
    return {name: _check(name, value) for name, value in headers.items()}


def build_message(
    settings: Settings, rendered: RenderedEmail, headers: Mapping[str, str]
) -> EmailMessage:
    """A multipart/alternative message (text first, then HTML) with the given headers."""
    msg = EmailMessage(policy=DIGEST_POLICY)
    values = dict(headers)
    values.setdefault("Subject", rendered.subject)
    for name, value in values.items():
        _check(name, value)
        msg[name] = value
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg
