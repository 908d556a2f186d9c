"""SendGrid Event Webhook: verify the signature, then turn events into suppressions (pure + DB).

Verification is over the raw body exactly as received (timestamp + body, ECDSA P-256/SHA-256,
the ``sendgrid`` package's ``EventWebhook``). Each event is handled once: its ``sg_event_id`` is
stored in ``webhook_events`` in the same transaction as its effect, so a redelivery changes
nothing. A batch is one transaction (SendGrid posts hundreds or thousands of events at once):
all of it is applied, or none of it and SendGrid retries.
"""

from __future__ import annotations

import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from sendgrid.helpers.eventwebhook import EventWebhook
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from newsletter.delivery.backends.sendgrid import MESSAGE_ID_ARG
from newsletter.delivery.models import Delivery, WebhookEvent
from subscribers.errors import InvalidInput
from subscribers.models import Subscriber
from subscribers.service import SuppressionReason, suppress
from subscribers.validation import mailbox_key, normalise_email

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# Event -> suppression reason. A "blocked" bounce is temporary and suppresses nobody.
REASONS: dict[str, SuppressionReason] = {
    "bounce": "bounced",
    "dropped": "bounced",
    "spamreport": "complained",
    "unsubscribe": "unsubscribed",
    "group_unsubscribe": "unsubscribed",
}
DT = Delivery.__table__.c  # type: ignore[attr-defined]
ST = Subscriber.__table__.c  # type: ignore[attr-defined]
WT = WebhookEvent.__table__  # type: ignore[attr-defined]
_IN_CHUNK = 500


class WebhookRejected(Exception):
    """The request is refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class WebhookResult:
    received: int = 0
    duplicates: int = 0
    suppressed: int = 0
    ignored: int = 0


def check_headers(
    public_key: str | None, headers: Mapping[str, str], *, now: float, max_age_seconds: int
) -> tuple[str, str, str]:
    """(key, signature, timestamp) of a request that may be signed and fresh: checked before
    its body is read, so an unsigned or stale request is refused without reading it."""
    if not public_key:
        raise WebhookRejected(503, "the event webhook is not configured")
    signature = headers.get(SIGNATURE_HEADER.lower()) or headers.get(SIGNATURE_HEADER)
    timestamp = headers.get(TIMESTAMP_HEADER.lower()) or headers.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise WebhookRejected(403, "unsigned request")
    try:
        sent_at = int(timestamp)
    except ValueError as exc:
        raise WebhookRejected(403, "bad timestamp") from exc
    if abs(now - sent_at) > max_age_seconds:
        raise WebhookRejected(403, "stale or future timestamp")
    return public_key, signature, timestamp


def verify(
    public_key: str | None,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float,
    max_age_seconds: int,
) -> list[dict[str, Any]]:
    """The events of a signed, fresh request; raises WebhookRejected otherwise."""
    public_key, signature, timestamp = check_headers(
        public_key, headers, now=now, max_age_seconds=max_age_seconds
    )
    try:
        payload = body.decode("utf-8")
        ok = EventWebhook(public_key).verify_signature(payload, signature, timestamp)
    except (UnicodeDecodeError, binascii.Error, ValueError, UnsupportedAlgorithm) as exc:
        raise WebhookRejected(403, "bad signature") from exc
    if not ok:
        raise WebhookRejected(403, "bad signature")
    try:
        events = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise WebhookRejected(400, "body is not JSON") from exc
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise WebhookRejected(400, "body must be a JSON array of events")
    return events


def event_id(event: Mapping[str, Any]) -> str:
    """SendGrid's ``sg_event_id``, or a digest of the event when it has none."""
    given = event.get("sg_event_id")
    if isinstance(given, str) and given:
        return given[:128]
    canon = json.dumps(event, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canon.encode()).hexdigest()


def _address_key(raw: str) -> str:
    try:
        return mailbox_key(normalise_email(raw))
    except InvalidInput:
        return raw.strip().lower()


def _subscriber(session: Session, event: Mapping[str, Any]) -> Subscriber | None:
    """Find the subscriber by our Message-ID (custom arg), else by the event's address."""
    message_id = event.get(MESSAGE_ID_ARG)
    sid = None
    if isinstance(message_id, str) and message_id:
        sid = session.execute(
            select(DT.subscriber_id).where(DT.message_id == message_id).limit(1)
        ).scalar()
    if sid is None and isinstance(event.get("email"), str):
        key = _address_key(str(event["email"]))
        sid = session.execute(select(ST.id).where(ST.email_key == key)).scalar()
    return session.get(Subscriber, sid) if sid is not None else None


def _seen(session: Session, ids: list[str]) -> set[str]:
    found: set[str] = set()
    unique = sorted(set(ids))
    for start in range(0, len(unique), _IN_CHUNK):
        chunk = unique[start : start + _IN_CHUNK]
        found.update(
            session.execute(select(WT.c.sg_event_id).where(WT.c.sg_event_id.in_(chunk))).scalars()
        )
    return found


def _apply(session: Session, events: list[dict[str, Any]]) -> WebhookResult:
    result = WebhookResult(received=len(events))
    ids = [event_id(e) for e in events]
    seen = _seen(session, ids)
    new_rows: list[dict[str, str]] = []
    for event, eid in zip(events, ids, strict=True):
        if eid in seen:
            result.duplicates += 1
            continue
        seen.add(eid)
        kind = str(event.get("event", ""))[:32]
        new_rows.append({"sg_event_id": eid, "event": kind})
        reason = REASONS.get(kind)
        if kind == "bounce" and event.get("type") == "blocked":
            reason = None
        sub = _subscriber(session, event) if reason else None
        if reason and sub is not None:
            suppress(session, reason=reason, subscriber_id=sub.id)
            result.suppressed += 1
        else:
            result.ignored += 1
    if new_rows:
        session.execute(insert(WT), new_rows)
    return result


def handle_events(engine: Engine, events: list[dict[str, Any]]) -> WebhookResult:
    """Apply each new event once (dedupe by ``sg_event_id``), the whole batch in one
    transaction; unknown events are recorded only. Blocking: call it off the event loop.
    When the same batch is delivered twice at once, the later commit fails on the unique
    event ids and is redone once, finding them all handled."""
    for attempt in (1, 2):
        try:
            with Session(engine) as session:
                result = _apply(session, events)
                session.commit()
                return result
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
