"""Who must not be mailed, asked of the database right before each batch and set by webhooks.

Mirrors the subscriber module's rules: a subscriber is mailable only while ``active`` and while the
SHA-256 of their case-folded address is not on the suppression list (which outlives erasure).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import select
from sqlmodel import Session

from newsletter.models import utcnow
from subscribers.models import Subscriber, Suppression

# Webhook reason -> subscriber status; "unsubscribed" only ends an active subscription.
STATUS_FOR_REASON = {
    "bounced": "bounced",
    "complained": "complained",
    "unsubscribed": "unsubscribed",
}
HARD_REASONS = frozenset({"bounced", "complained", "admin"})
_CHUNK = 900  # below SQLite's bound-parameter limit
SUBS = Subscriber.__table__.c  # type: ignore[attr-defined]
SUPP = Suppression.__table__.c  # type: ignore[attr-defined]


def email_hash(email: str) -> str:
    """The suppression key (same definition as the subscriber module's)."""
    return hashlib.sha256(email.strip().casefold().encode("utf-8")).hexdigest()


def blocked_ids(session: Session, subscriber_ids: Iterable[int]) -> set[int]:
    """Those of ``subscriber_ids`` who must not be mailed now (not active, gone, or suppressed)."""
    ids = list(dict.fromkeys(subscriber_ids))
    blocked: set[int] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = session.execute(
            select(SUBS.id, SUBS.email, SUBS.status).where(SUBS.id.in_(chunk))
        ).all()
        found = {r.id for r in rows}
        blocked.update(i for i in chunk if i not in found)
        by_hash: dict[str, int] = {}
        for r in rows:
            if r.status != "active":
                blocked.add(r.id)
            else:
                by_hash[email_hash(r.email)] = r.id
        if by_hash:
            hit = session.execute(
                select(SUPP.email_hash).where(SUPP.email_hash.in_(list(by_hash)))
            ).scalars()
            blocked.update(by_hash[h] for h in hit)
    return blocked


def _suppression_id(session: Session, h: str) -> int | None:
    found: int | None = session.execute(select(SUPP.id).where(SUPP.email_hash == h)).scalar()
    return found


def suppress(session: Session, subscriber: Subscriber, reason: str) -> None:
    """Never mail this subscriber again for ``reason``; idempotent, a hard reason wins."""
    now = utcnow()
    h = email_hash(subscriber.email)
    sid = _suppression_id(session, h)
    row = session.get(Suppression, sid) if sid is not None else None
    if row is None:
        session.add(Suppression(email_hash=h, reason=reason, created_at=now))
    elif reason in HARD_REASONS and row.reason not in HARD_REASONS:
        row.reason, row.created_at = reason, now
        session.add(row)
    target = STATUS_FOR_REASON.get(reason)
    if target is None or subscriber.status == target:
        return
    if target == "unsubscribed" and subscriber.status != "active":
        return
    subscriber.status = target
    subscriber.status_changed_at = now
    if target == "unsubscribed":
        subscriber.unsubscribed_at = now
    session.add(subscriber)
