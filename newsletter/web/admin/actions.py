"""What an operator can do to a subscriber, each through ``subscribers.service`` and each written
to the audit log in the same transaction as its effect.

Erasure leaves no address behind in the log either: a subscriber is named by id and the first
characters of their address's hash (the suppression list's key), which identifies them to
someone who already knows the address and to nobody else.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session, col, select

from newsletter.config import Settings
from newsletter.delivery.transactional import send_message
from newsletter.models import utcnow
from newsletter.web.admin.models import AdminAudit
from subscribers import service
from subscribers.emails import confirmation_message
from subscribers.errors import InvalidInput
from subscribers.links import link
from subscribers.models import Subscriber, Suppression
from subscribers.validation import email_hash

ACTIONS = ("suppress", "unsuppress", "resend-confirmation", "erase")
# Bounces and complaints come from the receiving side: the dashboard never lifts them.
NOT_LIFTABLE = frozenset({"bounced", "complained"})


def audit(
    session: Session,
    action: str,
    *,
    subscriber: Subscriber | None = None,
    target: str = "",
    detail: str = "",
    ip: str | None = None,
    now: dt.datetime | None = None,
) -> None:
    name = target
    if subscriber is not None:
        name = f"#{subscriber.id} {email_hash(subscriber.email)[:12]}"
    session.add(
        AdminAudit(
            at=now or utcnow(),
            action=action[:32],
            subscriber_id=subscriber.id if subscriber is not None else None,
            target=name[:254],
            detail=detail,
            ip=(ip or None) and ip[:64],
        )
    )
    session.flush()


def suppression_of(session: Session, sub: Subscriber) -> Suppression | None:
    return session.exec(
        select(Suppression).where(Suppression.email_hash == email_hash(sub.email))
    ).first()


@dataclass(frozen=True)
class Done:
    message: str
    erased: bool = False


def apply(
    session: Session, settings: Settings, *, action: str, subscriber_id: int, ip: str | None
) -> Done:
    """Run ``action`` on a subscriber; InvalidInput when it does not apply to them now.
    The confirmation e-mail is sent after the change is recorded (the caller commits first)."""
    sub = service.get(session, subscriber_id=subscriber_id)
    if action == "suppress":
        service.suppress(session, reason="admin", subscriber_id=subscriber_id)
        audit(session, "suppress", subscriber=sub, detail="reason admin", ip=ip)
        return Done("Suppressed: this address will not be mailed again.")
    if action == "unsuppress":
        row = suppression_of(session, sub)
        if row is None:
            raise InvalidInput("this address is not suppressed")
        if row.reason in NOT_LIFTABLE:
            raise InvalidInput(
                f"this address {row.reason}; the dashboard does not lift bounces or complaints"
            )
        reason = row.reason
        service.unsuppress(session, email=sub.email)
        audit(session, "unsuppress", subscriber=sub, detail=f"was {reason}", ip=ip)
        return Done(f"Suppression ({reason}) lifted.")
    if action == "resend-confirmation":
        if sub.status != "pending":
            raise InvalidInput(f"only a pending subscriber can confirm (this one is {sub.status})")
        audit(session, "resend-confirmation", subscriber=sub, ip=ip)
        return Done("A new confirmation e-mail is on its way.")
    if action == "erase":
        audit(session, "erase", subscriber=sub, ip=ip)
        service.erase(session, subscriber_id=subscriber_id)
        return Done("Erased: only a hash of the address stays on the suppression list.", True)
    raise InvalidInput(f"unknown action {action!r}")


def send_confirmation(settings: Settings, session: Session, subscriber_id: int) -> None:
    """The same e-mail a signup sends, with the subscriber's current (unused) confirmation link."""
    sub = service.get(session, subscriber_id=subscriber_id)
    url = link(settings, "confirm", subscriber_id, sub.link_key, sub.token_nonce)
    send_message(settings, confirmation_message(settings, to=sub.email, confirm_url=url))


def recent(
    session: Session, *, limit: int = 100, subscriber_id: int | None = None
) -> list[AdminAudit]:
    query = select(AdminAudit).order_by(col(AdminAudit.id).desc()).limit(limit)
    if subscriber_id is not None:
        query = query.where(AdminAudit.subscriber_id == subscriber_id)
    return list(session.exec(query).all())
