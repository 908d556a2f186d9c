"""What every backend speaks: a batch (one body, many recipients) in, one outcome per recipient out.

The body keeps the renderer's slots and its ``sections`` (card pieces shared by everyone); each
recipient brings the values of the slots (``substitutions``) and their own headers. SendGrid
applies them server side (substitutions, then sections); the file and SMTP backends apply them
locally with ``newsletter.email.render.personalise``, the same plain string replacement in the
same order, so every backend delivers the same bytes to a reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal, Protocol

OutcomeStatus = Literal["sent", "retry", "failed", "unknown"]


class Content(Protocol):
    """A rendered e-mail (``newsletter.email.render.RenderedEmail`` fits; it may also carry
    ``sections``, read with ``getattr`` so simple bodies need not)."""

    @property
    def subject(self) -> str: ...
    @property
    def html(self) -> str: ...
    @property
    def text(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Sender:
    email: str
    name: str = ""
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    """One reader of a batch. ``message_id`` is ours (RFC 5322 Message-ID, with angle brackets)."""

    email: str
    message_id: str
    substitutions: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Batch:
    """One body for many recipients; ``headers`` are shared by all of them (e.g. List-Id)."""

    content: Content
    recipients: tuple[Recipient, ...]
    sender: Sender
    headers: Mapping[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one recipient.

    ``sent``: accepted by the provider (``provider_id`` when it gives one); ``retry``: refused for a
    passing reason (429/5xx/connection refused) and retries are used up, safe to send again;
    ``failed``: refused for good (other 4xx, invalid data); ``unknown``: the request may or may
    not have been accepted (a timeout after sending): the in-flight policy decides.
    """

    status: OutcomeStatus
    provider_id: str | None = None
    error: str | None = None


class Backend(Protocol):
    """A delivery backend, with what the sender asks of it before and after sending.

    ``max_batch`` caps the recipients of one ``send_batch`` call; ``sections`` says whether a
    shared body with section tags may be sent as it is (else the sender expands the cards
    first); ``substitution_limit`` is the most bytes of substitutions one recipient may carry
    (None: no limit); ``requests`` counts the provider requests made (None: one a batch).
    """

    name: str
    max_batch: int

    @property
    def sections(self) -> bool: ...
    @property
    def substitution_limit(self) -> int | None: ...
    @property
    def requests(self) -> int | None: ...

    def send_batch(self, batch: Batch) -> dict[str, Outcome]:
        """Send and return an outcome per ``Recipient.message_id``; never raises for delivery."""
        ...

    def send_message(self, msg: EmailMessage) -> Outcome:
        """Send one ready-made message (transactional mail)."""
        ...

    def close(self) -> None: ...


class InvalidMessage(ValueError):
    """Data that must never reach a provider (e.g. CR/LF in a header): a permanent failure."""


def check_header(name: str, value: str) -> None:
    """Refuse header injection: no CR, LF or NUL in names or values, names printable ASCII."""
    if not name or any(c in name for c in "\r\n\0: ") or not name.isascii():
        raise InvalidMessage(f"invalid header name {name!r}")
    if any(c in value for c in "\r\n\0"):
        raise InvalidMessage(f"header {name} contains CR, LF or NUL")


def check_headers(headers: Mapping[str, str]) -> None:
    for name, value in headers.items():
        check_header(name, value)
