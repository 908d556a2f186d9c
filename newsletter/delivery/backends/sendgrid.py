"""SendGrid v3 Mail Send: the body built with the official ``sendgrid`` package.

One request carries one body and up to 1000 personalizations, each with its own ``to``,
``substitutions`` (the personal links and the slots of the shared body: their cards, counts,
subject), ``headers`` (List-Unsubscribe) and ``custom_args`` (our Message-ID only: never personal
data, since custom args travel into SendGrid's event stream). The body's card pieces go in the
message-level ``sections`` (only those the request's personalizations use).
Every documented limit is checked here before a byte leaves, because a refused request costs a
whole batch: 1000 personalizations, 30 MB per request, 10,000 bytes of custom args and of
substitutions per personalization, 10 categories. 429 and 5xx are retried with exponential
backoff and jitter, honouring ``Retry-After``; other 4xx fail those recipients for good.
The ``sendgrid`` package's helpers build the Mail JSON; the request is a POST of those very bytes
on the standard library's ``http.client`` (``keepalive.ThreadClients``: each sending thread reuses
one connection), since the package's own HTTP client opens a new connection for every request.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from sendgrid.helpers.mail import (
    Category,
    Content,
    CustomArg,
    From,
    Header,
    Mail,
    MailSettings,
    Personalization,
    ReplyTo,
    SandBoxMode,
    Substitution,
    To,
)

from newsletter import __version__
from newsletter.delivery.backends.base import (
    Batch,
    InvalidMessage,
    Outcome,
    Recipient,
    check_header,
    check_headers,
)
from newsletter.delivery.backends.keepalive import NotSent, ThreadClients, TransportError
from newsletter.email.tags import keys_in
from newsletter.retry_after import retry_after_seconds

MAX_PERSONALIZATIONS = 1000
MAX_REQUEST_BYTES = 30 * 1000 * 1000
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_SUBSTITUTIONS_BYTES = 10_000
MAX_CATEGORIES = 10
MAX_CATEGORY_CHARS = 255
# Headers SendGrid sets itself (or refuses); ours go in fields or are left to the provider.
RESERVED_HEADERS = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
        "date",
        "message-id",
        "mime-version",
    }
)
MESSAGE_ID_ARG = "message_id"
MAIL_SEND_PATH = "/v3/mail/send"
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
USER_AGENT = f"arxiv-newsletter/{__version__}"

Sleep = Callable[[float], None]
log = logging.getLogger(__name__)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _json_size(value: Any) -> int:
    return len(_json(value).encode("utf-8"))


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _provider_headers(headers: Mapping[str, str]) -> dict[str, str]:
    check_headers(headers)
    return {k: v for k, v in headers.items() if k.lower() not in RESERVED_HEADERS}


@dataclass(frozen=True, slots=True)
class Request:
    """One Mail Send body and the recipients (by our Message-ID) it carries. ``data`` is the
    body as sent: serialised once, and the size limit is checked on these very bytes."""

    body: dict[str, Any]
    message_ids: tuple[str, ...]
    data: str = ""

    @property
    def payload(self) -> str:
        return self.data or _json(self.body)


def base_mail(batch: Batch, *, sandbox: bool) -> dict[str, Any]:
    """The message-level part of every request of a batch (no personalizations yet)."""
    sender = batch.sender
    for value in (sender.email, sender.name, batch.content.subject, *(batch.categories)):
        check_header("Field", value)
    if len(batch.categories) > MAX_CATEGORIES:
        raise InvalidMessage(
            f"{len(batch.categories)} categories; SendGrid allows {MAX_CATEGORIES}"
        )
    mail = Mail(from_email=From(sender.email, sender.name or None), subject=batch.content.subject)
    if not (batch.content.text or batch.content.html):
        raise InvalidMessage("the message has no content")
    if batch.content.text:
        mail.add_content(Content("text/plain", batch.content.text))
    if batch.content.html:
        mail.add_content(Content("text/html", batch.content.html))
    if sender.reply_to:
        check_header("Reply-To", sender.reply_to)
        mail.reply_to = ReplyTo(sender.reply_to)
    for cat in batch.categories:
        if len(cat) > MAX_CATEGORY_CHARS:
            raise InvalidMessage(f"category longer than {MAX_CATEGORY_CHARS} characters")
        mail.add_category(Category(cat))
    for name, value in _provider_headers(batch.headers).items():
        mail.add_header(Header(name, value))
    if sandbox:
        mail.mail_settings = MailSettings(sandbox_mode=SandBoxMode(True))
    body: dict[str, Any] = mail.get()
    body.pop("personalizations", None)
    return body


def personalization(rcpt: Recipient) -> dict[str, Any]:
    """One recipient's personalization; raises InvalidMessage if it breaks a limit."""
    check_header("To", rcpt.email)
    p = Personalization()
    p.add_to(To(rcpt.email))
    for key, value in rcpt.substitutions.items():
        check_header("Substitution", key)
        p.add_substitution(Substitution(key, value))
    for name, value in _provider_headers(rcpt.headers).items():
        p.add_header(Header(name, value))
    p.add_custom_arg(CustomArg(MESSAGE_ID_ARG, rcpt.message_id))
    data: dict[str, Any] = p.get()
    if _json_size(data.get("custom_args", {})) > MAX_CUSTOM_ARGS_BYTES:
        raise InvalidMessage(f"custom_args exceed {MAX_CUSTOM_ARGS_BYTES} bytes")
    if _json_size(data.get("substitutions", {})) > MAX_SUBSTITUTIONS_BYTES:
        raise InvalidMessage(f"substitutions exceed {MAX_SUBSTITUTIONS_BYTES} bytes")
    return data


def _sections_of(batch: Batch) -> dict[str, str]:
    sections: dict[str, str] = dict(getattr(batch.content, "sections", None) or {})
    for key, value in sections.items():
        check_header("Section", key)
        if not isinstance(value, str) or not value:
            raise InvalidMessage(f"section {key} must be a non-empty string")
    return sections


def plan_requests(
    batch: Batch,
    *,
    sandbox: bool = False,
    sections: bool = True,
    max_personalizations: int = MAX_PERSONALIZATIONS,
    max_bytes: int = MAX_REQUEST_BYTES,
) -> tuple[list[Request], dict[str, Outcome]]:
    """Split a batch into requests within every limit; recipients that cannot fit fail here.

    A body with ``sections`` sends, in each request, only the sections its personalizations'
    substitutions (or the body itself) refer to, counted in the 30 MB. ``sections=False``
    (``delivery.sendgrid_sections`` off) refuses such a body: the sender expands it first.
    """
    failed: dict[str, Outcome] = {}
    try:
        base = base_mail(batch, sandbox=sandbox)
        all_sections = _sections_of(batch)
        if all_sections and not sections:
            raise InvalidMessage("the body has sections but delivery.sendgrid_sections is off")
    except InvalidMessage as exc:
        return [], {r.message_id: Outcome("failed", error=str(exc)) for r in batch.recipients}
    content = batch.content
    always = (
        {k for k in keys_in(f"{content.subject}{content.html}{content.text}") if k in all_sections}
        if all_sections
        else set()
    )
    section_size = {k: _json_size({k: v}) for k, v in all_sections.items()}
    # The body is serialised once: the message level here, each personalization below, spliced
    # together in ``flush`` (the same text ``json.dumps`` of the whole body would give).
    base_json = _json(base)
    base_size = _size(base_json) + len(', "personalizations": []')
    fixed = base_size + (
        _json_size({"sections": {k: all_sections[k] for k in always}}) if all_sections else 0
    )
    requests: list[Request] = []
    chunk: list[dict[str, Any]] = []
    texts: list[str] = []
    ids: list[str] = []
    used: set[str] = set(always)
    size = fixed

    def flush() -> None:
        nonlocal chunk, texts, ids, size, used
        if chunk:
            body = {**base, "personalizations": chunk}
            data = f'{base_json[:-1]}, "personalizations": [{", ".join(texts)}]'
            if used:
                body["sections"] = {k: all_sections[k] for k in sorted(used)}
                data += f', "sections": {_json(body["sections"])}'
            requests.append(Request(body, tuple(ids), data + "}"))
        chunk, texts, ids, size, used = [], [], [], fixed, set(always)

    for rcpt in batch.recipients:
        try:
            data = personalization(rcpt)
        except InvalidMessage as exc:
            failed[rcpt.message_id] = Outcome("failed", error=str(exc))
            continue
        needs = (
            {k for v in rcpt.substitutions.values() for k in keys_in(v) if k in all_sections}
            - always
            if all_sections
            else set()
        )
        text = _json(data)
        extra = _size(text) + 2  # ", " between items
        alone = fixed + extra + sum(section_size[k] + 2 for k in needs)
        if alone > max_bytes:
            failed[rcpt.message_id] = Outcome("failed", error="message exceeds 30 MB")
            continue
        if (
            len(chunk) >= max_personalizations
            or size + extra + sum(section_size[k] + 2 for k in needs - used) > max_bytes
        ):
            flush()
        extra += sum(section_size[k] + 2 for k in needs - used)
        used |= needs
        chunk.append(data)
        texts.append(text)
        ids.append(rcpt.message_id)
        size += extra
    flush()
    return requests, failed


@dataclass(frozen=True, slots=True)
class Prepared:
    """A batch's requests as they go on the wire (body bytes, the Message-IDs each carries),
    and the recipients that failed before any request (a broken limit, a bad header)."""

    requests: tuple[tuple[bytes, tuple[str, ...]], ...]
    failed: Mapping[str, Outcome]


def prepare_requests(batch: Batch, *, sandbox: bool = False, sections: bool = True) -> Prepared:
    """``plan_requests``, serialised: the bytes of each request, ready for ``deliver``."""
    requests, failed = plan_requests(batch, sandbox=sandbox, sections=sections)
    return Prepared(tuple((r.payload.encode("utf-8"), r.message_ids) for r in requests), failed)


class SendGridBackend:
    """Owns SendGrid's manners: limits, retries with backoff, sandbox mode, timeouts."""

    name = "sendgrid"
    # Readers of one body per request: SendGrid takes 1000, but a request of 250 is as fast to
    # send and bounds both the memory of each request in flight (about 0.3 MB, not 1.2 MB)
    # and the readers a crash leaves in doubt.
    max_batch = 250

    def __init__(
        self,
        api_key: str,
        host: str = "https://api.sendgrid.com",
        *,
        sandbox_mode: bool = False,
        sections: bool = True,
        max_retries: int = 5,
        timeout: float = 30.0,
        backoff_base: float = 1.0,
        backoff_max: float = 120.0,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.http = ThreadClients(  # one kept-alive connection a sending thread
            host.rstrip("/"),
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
            timeout=timeout,
        )
        self.sandbox_mode = sandbox_mode
        self.sections = sections  # may message-level ``sections`` be sent (else: expand first)
        self.substitution_limit = MAX_SUBSTITUTIONS_BYTES
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.sleep, self.rng, self.clock = sleep, rng or random.Random(), clock
        self.requests = 0  # HTTP requests made, retries included (for reports and benchmarks)
        self._count_lock = threading.Lock()

    def backoff(self, attempt: int, retry_after: str | None) -> float:
        """Retry-After when the server gives one, else full-jitter exponential backoff."""
        told = retry_after_seconds(retry_after, dt.datetime.fromtimestamp(self.clock(), dt.UTC))
        if told is not None:
            return min(told, self.backoff_max)
        ceiling = min(self.backoff_max, self.backoff_base * 2**attempt)
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def post(self, body: dict[str, Any] | str | bytes) -> Outcome:
        """One request with its retries; never raises for delivery problems.

        ``body`` may come already serialised (a ``Request``'s ``payload``, or its bytes): it is
        sent as it is."""
        if isinstance(body, bytes):
            payload = body
        else:
            payload = (body if isinstance(body, str) else _json(body)).encode("utf-8")
        attempt = 0
        while True:
            with self._count_lock:
                self.requests += 1
            try:
                response = self.http.post(MAIL_SEND_PATH, payload, JSON_HEADERS)
            except NotSent as exc:  # no connection, so no request: safe to try again
                error, retry_after = f"SendGrid unreachable: {exc}", None
            except TransportError as exc:
                # The request may have reached SendGrid: the outcome is not ours to guess.
                return Outcome("unknown", error=f"SendGrid request: {exc}")
            else:
                status = response.status
                if 200 <= status < 300:
                    return Outcome("sent", provider_id=response.headers.get("x-message-id"))
                error = f"SendGrid {status}: {_short(response.content)}"
                if status != 429 and status < 500:
                    return Outcome("failed", error=error)
                retry_after = response.headers.get("retry-after")
            if attempt >= self.max_retries:
                return Outcome("retry", error=f"{error} (gave up after {attempt + 1} attempts)")
            delay = self.backoff(attempt, retry_after)
            log.warning("SendGrid: %s; retrying in %.1f s", error, delay)
            self.sleep(delay)
            attempt += 1

    def prepare(self, batch: Batch) -> Prepared:
        return prepare_requests(batch, sandbox=self.sandbox_mode, sections=self.sections)

    def deliver(self, prepared: Prepared) -> dict[str, Outcome]:
        """Send prepared requests (made here or in another process), one after the other."""
        outcomes = dict(prepared.failed)
        for payload, message_ids in prepared.requests:
            outcome = self.post(payload)
            for mid in message_ids:
                outcomes[mid] = outcome
        return outcomes

    def send_batch(self, batch: Batch) -> dict[str, Outcome]:
        return self.deliver(self.prepare(batch))

    def send_message(self, msg: EmailMessage) -> Outcome:
        from newsletter.delivery.mime import batch_from_message

        batch = batch_from_message(msg)
        return next(iter(self.send_batch(batch).values()))

    def close(self) -> None:
        self.http.close()


def _short(body: object) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    return text[:300]
