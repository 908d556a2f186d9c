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
from subscribers.models import (
    Consent,
    RateEvent,
    SignupRequest,
    Subscriber,
    Suppression,
    new_link_key,
)
from subscribers.rhythm import check_cadence, check_language
from subscribers.validation import (
    MAX_IP,
    MAX_USER_AGENT,
    Preferences,
    clip,
    email_hash,
    mailbox_key,
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
    link_key: str = ""


MAX_OPEN_REQUESTS = 5  # signup requests kept per subscriber (the newest); older ones lapse


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


def _by_address(session: Session, address: str) -> Subscriber | None:
    """The row of this mailbox (``address`` already normalised): case does not matter."""
    return session.exec(
        select(Subscriber).where(Subscriber.email_key == mailbox_key(address))
    ).first()


def _new_subscriber(address: str, now: dt.datetime, **values: Any) -> Subscriber:
    return Subscriber(
        email=address,
        email_key=mailbox_key(address),
        created_at=now,
        status_changed_at=now,
        link_key=new_link_key(),
        **values,
    )


def _apply(sub: Subscriber, prefs: Preferences) -> None:
    sub.keywords = list(prefs.keywords)
    sub.categories = list(prefs.categories)
    sub.max_papers = prefs.max_papers
    sub.include_summaries = prefs.include_summaries


def _request_for_known(
    session: Session,
    sub: Subscriber,
    prefs: Preferences,
    origin: Origin | None,
    now: dt.datetime,
) -> SignupRequest:
    """Keep a signup's choices for a known address aside until its owner confirms them."""
    o = origin or Origin()
    req = SignupRequest(
        subscriber_id=sub.id or 0,
        nonce=new_nonce(),
        created_at=now,
        keywords=list(prefs.keywords),
        categories=list(prefs.categories),
        max_papers=prefs.max_papers,
        include_summaries=prefs.include_summaries,
        ip=clip(o.ip, MAX_IP),
        user_agent=clip(o.user_agent, MAX_USER_AGENT),
        form=clip(o.form, 64),
    )
    session.add(req)
    session.flush()
    older = session.exec(
        select(SignupRequest.id)
        .where(SignupRequest.subscriber_id == sub.id)
        .order_by(col(SignupRequest.id).desc())
        .offset(MAX_OPEN_REQUESTS)
    ).all()
    if older:
        session.execute(delete(SignupRequest).where(col(SignupRequest.id).in_(older)))
    return req


def _drop_requests(session: Session, subscriber_id: int | None) -> None:
    session.execute(delete(SignupRequest).where(col(SignupRequest.subscriber_id) == subscriber_id))


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
    """A signup. A new address gets a pending row holding the choices. For a known address
    nothing stored changes (anyone can type anyone's address into the form): a pending or
    unsubscribed owner gets a confirmation for a signup request that holds the new choices
    (their earlier confirmation link keeps working); an active owner is told they are
    subscribed. ``action`` says which e-mail the caller sends."""
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
    sub = _by_address(session, address)
    if supp is not None and supp.reason in HARD_REASONS:
        return SignupOutcome("suppressed", sub.id if sub else None, email=address)
    if sub is None:
        sub = _new_subscriber(address, now, token_nonce=new_nonce())
        _apply(sub, prefs)
        try:
            with session.begin_nested():
                session.add(sub)
                session.flush()
        except IntegrityError:  # the same mailbox signed up in another request just now
            sub = _by_address(session, address)
            if sub is None:
                raise
        else:
            _record(session, sub, "signup", origin, now)
            session.flush()
            return SignupOutcome("confirm", sub.id, sub.token_nonce, sub.email, sub.link_key)
    if sub.status == "active":
        return SignupOutcome("already-active", sub.id, email=sub.email, link_key=sub.link_key)
    if sub.status in ("bounced", "complained"):
        return SignupOutcome("suppressed", sub.id, email=sub.email)
    req = _request_for_known(session, sub, prefs, origin, now)
    return SignupOutcome("confirm", sub.id, req.nonce, sub.email, sub.link_key)


def _hard_suppressed(session: Session, sub: Subscriber) -> bool:
    supp = _suppression(session, sub.email)
    hard = supp is not None and supp.reason in HARD_REASONS
    return hard or sub.status in ("bounced", "complained")


def _activate(
    session: Session, sub: Subscriber, action: str, origin: Origin | None, now: dt.datetime
) -> None:
    """Make a subscriber active (confirmation or re-subscription) unless the address bounced or
    complained; earlier confirmation links are used up, a soft suppression is lifted, and a
    re-subscription gets a new link key (so every link of the earlier subscription dies)."""
    if _hard_suppressed(session, sub):
        raise Suppressed("this address bounced or reported our mail, so we will not send to it")
    if sub.status != "pending":  # coming back: the links of the earlier subscription die
        sub.link_key = new_link_key()
    _set_status(sub, "active", now)
    sub.token_nonce = new_nonce()
    _drop_requests(session, sub.id)
    _lift_soft_suppression(session, sub.email)
    _record(session, sub, action, origin, now)
    session.add(sub)
    session.flush()


def _open_request(session: Session, sub: Subscriber, nonce: str) -> SignupRequest | None:
    if not nonce:
        return None
    return session.exec(
        select(SignupRequest).where(
            SignupRequest.subscriber_id == sub.id, SignupRequest.nonce == nonce
        )
    ).first()


def confirmation_state(
    session: Session, sub: Subscriber, nonce: str
) -> Literal["open", "already", "used"]:
    """What a confirmation link can still do: ``open`` (confirm), ``already`` (used, and the
    subscriber is active), ``used`` (nothing)."""
    if nonce and hmac.compare_digest(sub.token_nonce.encode(), nonce.encode()):
        return "open"
    if sub.status != "active" and _open_request(session, sub, nonce) is not None:
        return "open"
    return "already" if sub.status == "active" else "used"


def confirm(
    session: Session,
    *,
    subscriber_id: int,
    nonce: str,
    origin: Origin | None = None,
    now: dt.datetime | None = None,
) -> Subscriber:
    """Activate through a confirmation link: the row's own (first signup) or a signup
    request's (whose choices are applied now). Single use: nonces rotate and requests go, so
    the same link cannot confirm again (a second click while active is answered, not acted on)."""
    now = now or utcnow()
    sub = session.get(Subscriber, subscriber_id)
    if sub is None:
        raise InvalidLink("this confirmation link is not valid")
    state = confirmation_state(session, sub, nonce)
    if state == "already":
        return sub
    if state == "used":
        raise InvalidLink("this confirmation link has already been used")
    req = _open_request(session, sub, nonce)
    if req is not None:
        _apply(sub, _request_prefs(req))
        req_origin = Origin(ip=req.ip, user_agent=req.user_agent, form=req.form)
        _record(session, sub, "signup", req_origin, req.created_at)
    _activate(session, sub, "confirm", origin, now)
    return sub


def _request_prefs(req: SignupRequest) -> Preferences:
    return Preferences(
        keywords=tuple(req.keywords),
        categories=tuple(req.categories),
        max_papers=req.max_papers,
        include_summaries=req.include_summaries,
    )


def update_preferences(
    session: Session,
    *,
    settings: Settings,
    subscriber_id: int,
    keywords: str | list[str] | None,
    categories: list[str] | None,
    max_papers: int | str | None = None,
    include_summaries: bool = True,
    cadence: str | None = None,
    language: str | None = None,
    origin: Origin | None = None,
    now: dt.datetime | None = None,
) -> Subscriber:
    """Save a reader's preferences; ``cadence``/``language`` None leave theirs unchanged (an
    empty language means the site's)."""
    now = now or utcnow()
    sub = get(session, subscriber_id=subscriber_id)
    if cadence is not None:
        sub.cadence = check_cadence(cadence)
    if language is not None:
        sub.language = check_language(language, settings)
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
        _drop_requests(session, sub.id)
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


def count_by_status(session: Session) -> dict[str, int]:
    """Subscribers per status (the dashboard's overview)."""
    rows = session.exec(select(Subscriber.status, func.count()).group_by(Subscriber.status)).all()
    return {status: n for status, n in rows}


def unsuppress(session: Session, *, email: str) -> bool:
    """Admin only: lift any suppression (e.g. a bounce that was the provider's mistake)."""
    row = _suppression(session, normalise_email(email))
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


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
            sub = _by_address(session, email)
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
            "cadence": sub.cadence,
            "language": sub.language,
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
    _drop_requests(session, subscriber_id)
    session.delete(sub)  # its id is never given out again, so its links reach nobody
    session.flush()


def remove(session: Session, *, email: str, suppress_address: bool = False) -> bool:
    """Admin removal: the subscriber and their consent records go; with ``suppress_address``
    the address is also blocked (reason ``admin``). False when the address is unknown."""
    address = normalise_email(email)
    sub = _by_address(session, address)
    if suppress_address:
        suppress(session, reason="admin", email=address)
    if sub is None:
        return False
    session.execute(delete(Consent).where(col(Consent.subscriber_id) == sub.id))
    _drop_requests(session, sub.id)
    session.delete(sub)
    session.flush()
    return True


def list_subscribers(session: Session, *, status: str | None = None) -> list[Subscriber]:
    query = select(Subscriber).order_by(col(Subscriber.id))
    if status is not None:
        query = query.where(Subscriber.status == status)
    return list(session.exec(query).all())


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
    cadence: str | None = None,
    language: str | None = None,
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
    chosen_cadence = check_cadence(cadence)
    chosen_language = check_language(language, settings)
    supp = _suppression(session, address)
    if supp is not None and supp.reason in HARD_REASONS:
        raise Suppressed(f"{address} is suppressed ({supp.reason}); lift it first")
    existing = _by_address(session, address)
    if existing is not None:
        return Added(existing, False, [f"{existing.email} already exists ({existing.status})"])
    sub = _new_subscriber(
        address,
        now,
        keywords=list(prefs.keywords),
        categories=list(prefs.categories),
        cadence=chosen_cadence,
        language=chosen_language,
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
