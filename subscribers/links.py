"""Absolute links put in e-mails, built from ``base_url`` and signed tokens."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from newsletter.config import Settings
from subscribers.models import Subscriber
from subscribers.tokens import Purpose, make_short_token, make_token

ROUTES: dict[Purpose, str] = {
    "confirm": "/confirm",
    "preferences": "/preferences",
    "unsubscribe": "/unsubscribe",
    "export": "/export",
    "erase": "/erase",
    "feedback": "/feedback",
}
SUBS = Subscriber.__table__.c  # type: ignore[attr-defined]


def secret_of(settings: Settings) -> str:
    if settings.secret_key is None:
        raise ValueError("NEWSLETTER_SECRET_KEY is not set")
    return settings.secret_key.get_secret_value()


def link(
    settings: Settings, purpose: Purpose, subscriber_id: int, key: str, nonce: str = ""
) -> str:
    """``{base_url}/{purpose}/{token}``: the token in the path, so no query string is needed.
    ``key`` is the subscriber's ``link_key``; the token is dated, so every link expires."""
    token = make_token(secret_of(settings), purpose, subscriber_id, key, nonce)
    return f"{settings.base_url}{ROUTES[purpose]}/{quote(token, safe='')}"


def unsubscribe_url(settings: Settings, subscriber_id: int, key: str) -> str:
    return link(settings, "unsubscribe", subscriber_id, key)


def preferences_url(settings: Settings, subscriber_id: int, key: str) -> str:
    return link(settings, "preferences", subscriber_id, key)


def link_keys(bind: Engine | Connection, subscriber_ids: Iterable[int]) -> dict[int, str]:
    """The link keys of these subscribers (one query per 900 ids), for the links of a run."""
    ids = sorted(set(subscriber_ids))
    out: dict[int, str] = {}

    def read(conn: Connection) -> None:
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            rows = conn.execute(select(SUBS.id, SUBS.link_key).where(SUBS.id.in_(chunk)))
            out.update({r.id: r.link_key for r in rows})

    if isinstance(bind, Connection):
        read(bind)
    else:
        with bind.connect() as conn:
            read(conn)
    return out


def feedback_token(settings: Settings, subscriber_id: int, key: str) -> str:
    """The reader's compact feedback token, as it goes in a URL path (a hyphen is written
    %2D, so the token can never spell or complete an e-mail tag such as ``-hwo-``)."""
    token = make_short_token(secret_of(settings), "feedback", subscriber_id, key)
    return quote(token, safe="").replace("-", "%2D")


def feedback_url(
    settings: Settings, subscriber_id: int, key: str, arxiv_id: str, direction: str
) -> str:
    """``{base_url}/feedback/{token}/{arxiv_id}/{more|fewer}``: a card's feedback link."""
    token = feedback_token(settings, subscriber_id, key)
    return f"{settings.base_url}/feedback/{token}/{arxiv_id}/{direction}"
