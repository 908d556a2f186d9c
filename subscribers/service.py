"""The only way into the subscriber store: plain functions taking the session, keyword-only args.

Suppression rule (see docs/subscribers.md): an address suppressed because it bounced, complained
or was blocked by an admin ("hard" reasons) is never re-activated by a signup, a confirmation or
a re-subscribe; only an admin can lift it. An address suppressed because its owner unsubscribed
or erased their data ("soft" reasons) can come back, but only through a confirmed opt-in (a
confirmation link, or the re-subscribe button reached through their own unsubscribe link); the
suppression entry is removed at that moment.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsletter.config import Settings
from newsletter.models import utcnow
from subscribers.errors import InvalidLink, NotFound, Suppressed
from subscribers.models import Consent, RateEvent, Subscriber, Suppression
from subscribers.validation import (
    MAX_IP,
    MAX_USER_AGENT,
    clip,
    email_hash,
    make_preferences,
    normalise_email,
)

Status = Literal["pending", "active", "unsubscribed", "bounced", "complained"]
SuppressionReason = Literal["unsubscribed", "bounced", "complained", "erased", "admin"]
HARD_REASONS: frozenset[str] = frozenset({"bounced", "complained", "admin"})
_STATUS_FOR_REASON: dict[str, Status] = {
    "bounced": "bounced",
    "complained": "complained",
    "unsubscribed": "unsubscribed",
    "admin": "unsubscribed",
}


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a consent came from: recorded with every signup, confirmation and change."""

    ip: str | None = None
    user_agent: str | None = None
    form: str | None = None


@dataclass(frozen=True, slots=True)
class SignupOutcome:
    """What a signup did. ``action`` says which e-mail (if any) the caller should send."""

    action: Literal["confirm", "already-active", "suppressed"]
    subscriber_id: int | None = None
    nonce: str = ""
    email: str = ""


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def _record(
    session: Session, sub: Subscriber, action: str, origin: Origin | None, now: dt.datetime
) -> None:
    o = origin or Origin()
    if sub.id is None:
        session.flush()
    session.add(
        Consent(
            subscriber_id=sub.id or 0,
            action=action,
            at=now,
            ip=clip(o.ip, MAX_IP),
            user_agent=clip(o.user_agent, MAX_USER_AGENT),
            form=clip(o.form, 64),
        )
    )


def _set_status(sub: Subscriber, status: Status, now: dt.datetime) -> None:
    sub.status = status
    sub.status_changed_at = now
    if status == "active":
        sub.confirmed_at = now
    elif status == "unsubscribed":
        sub.unsubscribed_at = now


def _suppression(session: Session, email: str) -> Suppression | None:
    return session.exec(
        select(Suppression).where(Suppression.email_hash == email_hash(email))
    ).first()


def _lift_soft_suppression(session: Session, email: str) -> None:
    row = _suppression(session, email)
    if row is not None and row.reason not in HARD_REASONS:
        session.delete(row)


def get(session: Session, *, subscriber_id: int) -> Subscriber:
    sub = session.get(Subscriber, subscriber_id)
    if sub is None:
        raise NotFound("no such subscriber")
    return sub


def find(session: Session, *, email: str) -> Subscriber | None:
    return session.exec(
        select(Subscriber).where(Subscriber.email == normalise_email(email))
    ).first()


def subscribe(
    session: Session,
    *,
    settings: Settings,
    email: str,
    keywords: str | list[str] | None = None,
    categories: list[str] | None = None,
    max_papers: int | str | None = None,
    include_summaries: bool = True,
    origin: Origin | None = None,
    now: dt.datetime | None = None,
) -> SignupOutcome:
    """A signup: creates or refreshes a pending subscriber and says whether to send a
    confirmation. Preferences of an active subscriber are never changed from here (anyone can
    type anyone's address into the form); they change through the signed preferences link."""
    now = now or utcnow()
    address = normalise_email(email)
    prefs = make_preferences(
        keywords=keywords,
        categories=categories,
        allowed_categories=settings.categories,
        max_papers=max_papers,
        site_max_papers=settings.max_papers,
        include_summaries=include_summaries,
    )
    supp = _suppression(session, address)
    sub = session.exec(select(Subscriber).where(Subscriber.email == address)).first()
    if supp is not None and supp.reason in HARD_REASONS:
        return SignupOutcome("suppressed", sub.id if sub else None, email=address)
    if sub is None:
        sub = Subscriber(email=address, created_at=now, status_changed_at=now)
        try:
            with session.begin_nested():
                session.add(sub)
                session.flush()
        except IntegrityError:  # the same address signed up in another request just now
            sub = session.exec(select(Subscriber).where(Subscriber.email == address)).one()
    if sub.status == "active":
        return SignupOutcome("already-active", sub.id, email=address)
    if sub.status in ("bounced", "complained"):
        return SignupOutcome("suppressed", sub.id, email=address)
    sub.keywords = list(prefs.keywords)
    sub.categories = list(prefs.categories)
    sub.max_papers = prefs.max_papers
    sub.include_summaries = prefs.include_summaries
    sub.token_nonce = new_nonce()
    session.add(sub)
    _record(session, sub, "signup", origin, now)
    session.flush()
    return SignupOutcome("confirm", sub.id, sub.token_nonce, address)


def _hard_suppressed(session: Session, sub: Subscriber) -> bool:
    supp = _suppression(session, sub.email)
    hard = supp is not None and supp.reason in HARD_REASONS
    return hard or sub.status in ("bounced", "complained")


def _activate(
    session: Session, sub: Subscriber, action: str, origin: Origin | None, now: dt.datetime
) -> None:
    """Make a subscriber active (confirmation or re-subscription) unless the address bounced or
    complained; every earlier link is revoked and a soft suppression lifted."""
    if _hard_suppressed(session, sub):
        raise Suppressed("this address bounced or reported our mail, so we will not send to it")
    _set_status(sub, "active", now)
    sub.token_nonce = new_nonce()
    _lift_soft_suppression(session, sub.email)
    _record(session, sub, action, origin, now)
    session.add(sub)
    session.flush()


def confirm(
    session: Session,
    *,
    subscriber_id: int,
    nonce: str,
    origin: Origin | None = None,
    now: dt.datetime | None = None,
) -> Subscriber:
    """Activate through a confirmation link. Single use: the nonce rotates, so the same link
    cannot confirm again later (a second click while still active is answered, not acted on)."""
    now = now or utcnow()
    sub = session.get(Subscriber, subscriber_id)
    if sub is None:
        raise InvalidLink("this confirmation link is not valid")
    if not nonce or not hmac.compare_digest(sub.token_nonce.encode(), nonce.encode()):
        if sub.status == "active":
            return sub
        raise InvalidLink("this confirmation link has already been used")
    _activate(session, sub, "confirm", origin, now)
    return sub


def update_preferences(
    session: Session,
    *,
    settings: Settings,
    subscriber_id: int,
    keywords: str | list[str] | None,
    categories: list[str] | None,
    max_papers: int | str | None = None,
    include_summaries: bool = True,
    origin: Origin | None = None,
    now: dt.datetime | None = None,
) -> Subscriber:
    now = now or utcnow()
    sub = get(session, subscriber_id=subscriber_id)
    prefs = make_preferences(
        keywords=keywords,
        categories=categories,
        allowed_categories=settings.categories,
        max_papers=max_papers,
        site_max_papers=settings.max_papers,
        include_summaries=include_summaries,
    )
    sub.keywords = list(prefs.keywords)
    sub.categories = list(prefs.categories)
    sub.max_papers = prefs.max_papers
    sub.include_summaries = prefs.include_summaries
    session.add(sub)
    _record(session, sub, "preferences", origin, now)
    session.flush()
    return sub


def unsubscribe(
    session: Session,
    *,
    subscriber_id: int,
    origin: Origin | None = None,
    now: dt.datetime | None = None,
) -> Subscriber:
    """Stop all mail at once; idempotent. The address goes on the suppression list."""
    now = now or utcnow()
    sub = get(session, subscriber_id=subscriber_id)
    if sub.status in ("active", "pending"):
        _set_status(sub, "unsubscribed", now)
        sub.token_nonce = new_nonce()  # an old confirmation link must not undo this
        session.add(sub)
        _record(session, sub, "unsubscribe", origin, now)
    if _suppression(session, sub.email) is None:
        session.add(
            Suppression(email_hash=email_hash(sub.email), reason="unsubscribed", created_at=now)
        )
    session.flush()
    return sub


def resubscribe(
    session: Session,
    *,
    subscriber_id: int,
    origin: Origin | None = None,
    now: dt.datetime | None = None,
) -> Subscriber:
    """Come back from the unsubscribe page. The signed link reached this person's mailbox, which
    is the same proof a confirmation link gives, so no second e-mail is needed."""
    now = now or utcnow()
    sub = get(session, subscriber_id=subscriber_id)
    if sub.status != "active" or _hard_suppressed(session, sub):
        _activate(session, sub, "resubscribe", origin, now)
    return sub


def suppress(
    session: Session,
    *,
    reason: SuppressionReason,
    email: str | None = None,
    subscriber_id: int | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Never mail this address again (for a hard reason: not even after a new signup).
    Used by the delivery webhooks (bounce, spam report) and the admin CLI; idempotent."""
    now = now or utcnow()
    sub: Subscriber | None = None
    if subscriber_id is not None:
        sub = session.get(Subscriber, subscriber_id)
        if sub is None and email is None:
            raise NotFound("no such subscriber")
    if email is not None:
        email = normalise_email(email)
        if sub is None:
            sub = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
    address = email or (sub.email if sub else "")
    h = email_hash(address)
    row = session.exec(select(Suppression).where(Suppression.email_hash == h)).first()
    if row is None:
        session.add(Suppression(email_hash=h, reason=reason, created_at=now))
    elif reason in HARD_REASONS and row.reason not in HARD_REASONS:
        row.reason = reason
        row.created_at = now
        session.add(row)
    if sub is not None and reason in _STATUS_FOR_REASON:
        target = _STATUS_FOR_REASON[reason]
        if sub.status != target and not (target == "unsubscribed" and sub.status != "active"):
            _set_status(sub, target, now)
            sub.token_nonce = new_nonce()
            _record(session, sub, f"suppress:{reason}", Origin(form="system"), now)
            session.add(sub)
    session.flush()


def is_suppressed(session: Session, *, email: str) -> bool:
    return _suppression(session, normalise_email(email)) is not None


def unsuppress(session: Session, *, email: str) -> bool:
    """Admin only: lift any suppression (e.g. a bounce that was the provider's mistake)."""
    row = _suppression(session, normalise_email(email))
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def export(session: Session, *, subscriber_id: int) -> dict[str, Any]:
    """Everything stored about one person, as JSON-ready data (the right of access)."""
    sub = get(session, subscriber_id=subscriber_id)
    consents = session.exec(
        select(Consent).where(Consent.subscriber_id == subscriber_id).order_by(col(Consent.id))
    ).all()
    return {
        "email": sub.email,
        "status": sub.status,
        "created_at": _iso(sub.created_at),
        "status_changed_at": _iso(sub.status_changed_at),
        "confirmed_at": _iso(sub.confirmed_at),
        "unsubscribed_at": _iso(sub.unsubscribed_at),
        "preferences": {
            "keywords": list(sub.keywords),
            "categories": list(sub.categories),
            "max_papers": sub.max_papers,
            "include_summaries": sub.include_summaries,
        },
        "consents": [
            {
                "action": c.action,
                "at": _iso(c.at),
                "ip": c.ip,
                "user_agent": c.user_agent,
                "form": c.form,
            }
            for c in consents
        ],
        "suppressed": _suppression(session, sub.email) is not None,
        "profile": _profile_export(session, subscriber_id),
    }


def _profile_export(session: Session, subscriber_id: int) -> dict[str, Any]:
    """The relevance profile (interests, favourite authors, example papers and clicks)."""
    from newsletter.relevance.profiles import profile_of

    profile = profile_of(session, subscriber_id)
    return {
        "interests": profile.interests,
        "favourite_authors": list(profile.authors),
        "examples": [
            {"arxiv_id": e.arxiv_id, "sign": e.sign, "source": e.source} for e in profile.examples
        ],
    }


def erase(session: Session, *, subscriber_id: int, now: dt.datetime | None = None) -> None:
    """Delete everything about a person; only a suppression entry (a hash) stays behind, so
    that they are never mailed again by mistake. A bounce or complaint reason is kept."""
    now = now or utcnow()
    sub = get(session, subscriber_id=subscriber_id)
    h = email_hash(sub.email)
    if session.exec(select(Suppression).where(Suppression.email_hash == h)).first() is None:
        session.add(Suppression(email_hash=h, reason="erased", created_at=now))
    session.execute(delete(Consent).where(col(Consent.subscriber_id) == subscriber_id))
    session.execute(delete(RateEvent).where(col(RateEvent.key).like(f"%:{h[:32]}")))
    session.delete(sub)
    session.flush()


def remove(session: Session, *, email: str, suppress_address: bool = False) -> bool:
    """Admin removal: the subscriber and their consent records go; with ``suppress_address``
    the address is also blocked (reason ``admin``). False when the address is unknown."""
    address = normalise_email(email)
    sub = session.exec(select(Subscriber).where(Subscriber.email == address)).first()
    if suppress_address:
        suppress(session, reason="admin", email=address)
    if sub is None:
        return False
    session.execute(delete(Consent).where(col(Consent.subscriber_id) == sub.id))
    session.delete(sub)
    session.flush()
    return True


def list_subscribers(session: Session, *, status: str | None = None) -> list[Subscriber]:
    query = select(Subscriber).order_by(col(Subscriber.id))
    if status is not None:
        query = query.where(Subscriber.status == status)
    return list(session.exec(query).all())


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.exec(select(Subscriber.status, func.count()).group_by(Subscriber.status)).all()
    return {status: n for status, n in rows}


def active_subscribers(session: Session) -> list[Subscriber]:
    """Who gets the digest: status active and not on the suppression list. The e-mail sender
    calls this (and ``is_suppressed`` again right before each send)."""
    subs = session.exec(
        select(Subscriber).where(Subscriber.status == "active").order_by(col(Subscriber.id))
    ).all()
    suppressed = set(session.exec(select(Suppression.email_hash)).all())
    if not suppressed:
        return list(subs)
    return [s for s in subs if email_hash(s.email) not in suppressed]


@dataclass
class Added:
    subscriber: Subscriber
    created: bool
    notes: list[str] = field(default_factory=list)


def add(
    session: Session,
    *,
    settings: Settings,
    email: str,
    keywords: str | list[str] | None = None,
    categories: list[str] | None = None,
    active: bool = False,
    origin: Origin | None = None,
    now: dt.datetime | None = None,
) -> Added:
    """Admin add: creates the subscriber (pending, or active with ``active``) without any
    e-mail. A hard-suppressed address is refused; an existing address is left as it is."""
    now = now or utcnow()
    address = normalise_email(email)
    prefs = make_preferences(
        keywords=keywords, categories=categories, allowed_categories=settings.categories
    )
    supp = _suppression(session, address)
    if supp is not None and supp.reason in HARD_REASONS:
        raise Suppressed(f"{address} is suppressed ({supp.reason}); lift it first")
    existing = session.exec(select(Subscriber).where(Subscriber.email == address)).first()
    if existing is not None:
        return Added(existing, False, [f"{address} already exists ({existing.status})"])
    sub = Subscriber(
        email=address,
        keywords=list(prefs.keywords),
        categories=list(prefs.categories),
        created_at=now,
        status_changed_at=now,
        token_nonce=new_nonce(),
    )
    if active:
        _set_status(sub, "active", now)
        _lift_soft_suppression(session, address)
    session.add(sub)
    session.flush()
    _record(session, sub, "admin-add", origin or Origin(form="cli"), now)
    session.flush()
    return Added(sub, True)
