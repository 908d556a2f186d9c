"""The service functions on SQLite and PostgreSQL: statuses, consent, suppression, erasure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.db import session_scope
from subscribers import ratelimit, service
from subscribers.errors import InvalidInput, InvalidLink, NotFound, Suppressed
from subscribers.mailable import mailable_rows
from subscribers.models import Consent, RateEvent, Subscriber, Suppression
from subscribers.validation import email_hash
from tests.subscriber_helpers import with_secret

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return with_secret(make_settings(database_url=database_url))


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_scope(engine) as s:
        yield s


def _mailable(session: Session) -> list[str]:
    """Who the digest and the sender would mail now (the one rule, ``subscribers.mailable``)."""
    return [r.email for r in mailable_rows(session)]


def _suppressed(session: Session, email: str) -> bool:
    h = email_hash(email)
    return session.exec(select(Suppression).where(Suppression.email_hash == h)).first() is not None


def _signup(
    session: Session, settings: Settings, email: str, **kw: object
) -> service.SignupOutcome:
    return service.subscribe(session, settings=settings, email=email, now=T0, **kw)  # type: ignore[arg-type]


def test_signup_is_pending_with_normalised_address_and_consent(
    session: Session, settings: Settings
) -> None:
    out = _signup(
        session,
        settings,
        "  Ann.Lee@Example.ORG ",
        keywords="LLM, llm ,  graph  neural",
        categories=["cs.LG"],
        origin=service.Origin("10.0.0.1", "UA/1", "signup"),
    )
    assert out.action == "confirm" and out.nonce
    sub = session.get(Subscriber, out.subscriber_id)
    assert sub is not None
    assert (sub.email, sub.status) == ("Ann.Lee@example.org", "pending")
    assert sub.keywords == ["LLM", "graph neural"]
    assert sub.categories == ["cs.LG"]
    consent = session.exec(select(Consent)).one()
    assert (consent.action, consent.ip, consent.user_agent, consent.form) == (
        "signup",
        "10.0.0.1",
        "UA/1",
        "signup",
    )


@pytest.mark.parametrize(
    ("email", "kw"),
    [
        ("not-an-address", {}),
        ("a@b.org\r\nBcc: x@y.org", {}),
        ("x" * 250 + "@b.org", {}),
        ("a@b.org", {"categories": ["math.AG"]}),
        ("a@b.org", {"keywords": "ok,bad\x00term"}),
        ("a@b.org", {"keywords": "k" * 101}),
        ("a@b.org", {"max_papers": 0}),
        ("a@b.org", {"max_papers": "many"}),
    ],
)
def test_bad_input_is_refused_and_nothing_stored(
    session: Session, settings: Settings, email: str, kw: dict[str, object]
) -> None:
    with pytest.raises(InvalidInput):
        _signup(session, settings, email, **kw)
    assert session.exec(select(Subscriber)).all() == []


def test_confirm_activates_once_and_rotates_the_nonce(session: Session, settings: Settings) -> None:
    out = _signup(session, settings, "a@b.org")
    assert out.subscriber_id is not None
    sub = service.confirm(session, subscriber_id=out.subscriber_id, nonce=out.nonce, now=T0)
    assert (sub.status, sub.confirmed_at) == ("active", T0)
    assert sub.token_nonce != out.nonce
    # The same link again: answered (already active), nothing recorded twice.
    service.confirm(session, subscriber_id=out.subscriber_id, nonce=out.nonce)
    actions = [c.action for c in session.exec(select(Consent).order_by(Consent.id)).all()]  # type: ignore[arg-type]
    assert actions == ["signup", "confirm"]
    with pytest.raises(InvalidLink):
        service.confirm(session, subscriber_id=out.subscriber_id + 99, nonce=out.nonce)


def test_an_old_confirmation_link_cannot_undo_an_unsubscribe(
    session: Session, settings: Settings
) -> None:
    first = _signup(session, settings, "a@b.org", keywords="mine")
    second = _signup(session, settings, "a@b.org", keywords="theirs")  # waits as a request
    assert first.subscriber_id == second.subscriber_id and first.nonce != second.nonce
    assert second.subscriber_id is not None
    sub = service.confirm(session, subscriber_id=second.subscriber_id, nonce=first.nonce)
    assert sub.keywords == ["mine"]
    # The other link is used up with it: answered as "already", nothing changes.
    sub = service.confirm(session, subscriber_id=second.subscriber_id, nonce=second.nonce)
    assert sub.keywords == ["mine"]
    service.unsubscribe(session, subscriber_id=second.subscriber_id)
    for nonce in (first.nonce, second.nonce):
        with pytest.raises(InvalidLink):
            service.confirm(session, subscriber_id=second.subscriber_id, nonce=nonce)


def test_signup_never_changes_an_active_subscriber(session: Session, settings: Settings) -> None:
    out = _signup(session, settings, "a@b.org", keywords="graphs")
    assert out.subscriber_id is not None
    service.confirm(session, subscriber_id=out.subscriber_id, nonce=out.nonce)
    again = _signup(session, settings, "a@b.org", keywords="spam")
    assert again.action == "already-active"
    sub = session.get(Subscriber, out.subscriber_id)
    assert sub is not None and sub.keywords == ["graphs"]


def test_unsubscribe_suppresses_and_confirmed_resignup_lifts_it(
    session: Session, settings: Settings
) -> None:
    out = _signup(session, settings, "a@b.org")
    assert out.subscriber_id is not None
    service.confirm(session, subscriber_id=out.subscriber_id, nonce=out.nonce)
    sub = service.unsubscribe(session, subscriber_id=out.subscriber_id, now=T0)
    assert (sub.status, sub.unsubscribed_at) == ("unsubscribed", T0)
    assert _suppressed(session, "A@B.org")
    assert _mailable(session) == []
    again = _signup(session, settings, "a@b.org")
    assert again.action == "confirm"
    assert session.get(Subscriber, out.subscriber_id).status == "unsubscribed"  # type: ignore[union-attr]
    service.confirm(session, subscriber_id=out.subscriber_id, nonce=again.nonce)
    assert not _suppressed(session, "a@b.org")
    assert _mailable(session) == ["a@b.org"]


@pytest.mark.parametrize("reason", ["bounced", "complained"])
def test_hard_suppression_is_never_lifted_by_signup_or_resubscribe(
    session: Session, settings: Settings, reason: str
) -> None:
    out = _signup(session, settings, "a@b.org")
    assert out.subscriber_id is not None
    service.confirm(session, subscriber_id=out.subscriber_id, nonce=out.nonce)
    service.suppress(session, email="a@b.org", reason=reason)  # type: ignore[arg-type]
    assert session.get(Subscriber, out.subscriber_id).status == reason  # type: ignore[union-attr]
    assert _signup(session, settings, "a@b.org").action == "suppressed"
    with pytest.raises(Suppressed):
        service.resubscribe(session, subscriber_id=out.subscriber_id)
    assert _mailable(session) == []


def test_suppress_by_subscriber_id_upgrades_a_soft_reason(
    session: Session, settings: Settings
) -> None:
    out = _signup(session, settings, "a@b.org")
    assert out.subscriber_id is not None
    service.unsubscribe(session, subscriber_id=out.subscriber_id)
    service.suppress(session, subscriber_id=out.subscriber_id, reason="complained")
    row = session.exec(select(Suppression)).one()
    assert row.reason == "complained"
    with pytest.raises(NotFound):
        service.suppress(session, subscriber_id=12345, reason="bounced")


def test_resubscribe_from_unsubscribed(session: Session, settings: Settings) -> None:
    out = _signup(session, settings, "a@b.org")
    assert out.subscriber_id is not None
    service.unsubscribe(session, subscriber_id=out.subscriber_id)
    sub = service.resubscribe(session, subscriber_id=out.subscriber_id)
    assert sub.status == "active"
    assert not _suppressed(session, "a@b.org")


def test_preferences_are_validated_and_recorded(session: Session, settings: Settings) -> None:
    out = _signup(session, settings, "a@b.org")
    assert out.subscriber_id is not None
    sub = service.update_preferences(
        session,
        settings=settings,
        subscriber_id=out.subscriber_id,
        keywords=["RL", " rl "],
        categories=["cs.AI", "cs.AI"],
        max_papers="12",
        include_summaries=False,
    )
    assert (sub.keywords, sub.categories, sub.max_papers, sub.include_summaries) == (
        ["RL"],
        ["cs.AI"],
        12,
        False,
    )
    with pytest.raises(InvalidInput):
        service.update_preferences(
            session,
            settings=settings,
            subscriber_id=out.subscriber_id,
            keywords=None,
            categories=None,
            max_papers=settings.max_papers + 1,
        )


def test_export_then_erase_leaves_only_a_suppression_hash(
    session: Session, settings: Settings
) -> None:
    out = _signup(
        session, settings, "Erase.Me@b.org", keywords="x", origin=service.Origin("1.2.3.4")
    )
    assert out.subscriber_id is not None
    service.confirm(session, subscriber_id=out.subscriber_id, nonce=out.nonce)
    data = service.export(session, subscriber_id=out.subscriber_id)
    assert data["email"] == "Erase.Me@b.org" and data["status"] == "active"
    assert [c["action"] for c in data["consents"]] == ["signup", "confirm"]
    assert data["consents"][0]["ip"] == "1.2.3.4"
    ratelimit.hit(
        session,
        key=f"signup-addr:{email_hash('Erase.Me@b.org')[:32]}",
        limit=5,
        window=dt.timedelta(days=1),
    )
    service.erase(session, subscriber_id=out.subscriber_id)
    assert session.exec(select(Subscriber)).all() == []
    assert session.exec(select(Consent)).all() == []
    assert session.exec(select(RateEvent)).all() == []
    supp = session.exec(select(Suppression)).one()
    assert supp.reason == "erased" and supp.email_hash == email_hash("erase.me@b.org")
    assert "Erase" not in supp.email_hash
    # Coming back is possible, through confirmation only.
    again = _signup(session, settings, "Erase.Me@b.org")
    assert again.action == "confirm"
    assert _mailable(session) == []


def test_mailable_skips_suppressed_even_if_status_says_active(
    session: Session, settings: Settings
) -> None:
    for email in ("a@b.org", "c@d.org"):
        service.add(session, settings=settings, email=email, active=True)
    session.add(Suppression(email_hash=email_hash("c@d.org"), reason="admin"))
    session.flush()
    assert _mailable(session) == ["a@b.org"]


def test_admin_add_and_remove(session: Session, settings: Settings) -> None:
    added = service.add(session, settings=settings, email="a@b.org", keywords=["x"], active=True)
    assert added.created and added.subscriber.status == "active"
    assert not service.add(session, settings=settings, email="a@b.org").created
    assert service.remove(session, email="a@b.org", suppress_address=True)
    assert not service.remove(session, email="a@b.org")
    with pytest.raises(Suppressed):
        service.add(session, settings=settings, email="a@b.org")
    assert session.exec(select(Subscriber)).all() == []


def test_rate_limit_counts_per_key_within_the_window(session: Session) -> None:
    window = dt.timedelta(hours=1)

    def hit(key: str, limit: int, at: dt.timedelta) -> bool:
        return ratelimit.hit(session, key=key, limit=limit, window=window, now=T0 + at)

    minute = dt.timedelta(minutes=1)
    assert hit("k1", 2, 0 * minute) and hit("k1", 2, minute)
    assert not hit("k1", 2, 2 * minute)
    assert hit("k2", 2, 2 * minute)
    assert hit("k1", 2, 61 * minute)
    # Events older than two days are purged as new ones arrive.
    assert hit("k3", 1, dt.timedelta(days=3))
    assert [e.key for e in session.exec(select(RateEvent)).all()] == ["k3"]


def test_ipv6_is_counted_by_its_64() -> None:
    assert ratelimit.ip_bucket("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert ratelimit.ip_bucket("::ffff:192.0.2.1") == "192.0.2.1"
    assert ratelimit.ip_bucket("192.0.2.1") == "192.0.2.1"
    assert ratelimit.ip_bucket(None) == "unknown"
