"""Absolute links put in e-mails, built from ``base_url`` and signed tokens."""

from __future__ import annotations

from urllib.parse import quote

from newsletter.config import Settings
from subscribers.tokens import Purpose, make_short_token, make_token

ROUTES: dict[Purpose, str] = {
    "confirm": "/confirm",
    "preferences": "/preferences",
    "unsubscribe": "/unsubscribe",
    "export": "/export",
    "erase": "/erase",
    "feedback": "/feedback",
}


def secret_of(settings: Settings) -> str:
    if settings.secret_key is None:
        raise ValueError("NEWSLETTER_SECRET_KEY is not set")
    return settings.secret_key.get_secret_value()


def link(settings: Settings, purpose: Purpose, subscriber_id: int, nonce: str = "") -> str:
    """``{base_url}/{purpose}/{token}``: the token in the path, so no query string is needed."""
    token = make_token(secret_of(settings), purpose, subscriber_id, nonce)
    return f"{settings.base_url}{ROUTES[purpose]}/{quote(token, safe='')}"


def unsubscribe_url(settings: Settings, subscriber_id: int) -> str:
    return link(settings, "unsubscribe", subscriber_id)


def preferences_url(settings: Settings, subscriber_id: int) -> str:
    return link(settings, "preferences", subscriber_id)


def feedback_token(settings: Settings, subscriber_id: int) -> str:
    """The reader's compact feedback token, as it goes in a URL path (a hyphen is written
    %2D, so the token can never spell or complete an e-mail tag such as ``-hwo-``)."""
    token = make_short_token(secret_of(settings), "feedback", subscriber_id)
    return quote(token, safe="").replace("-", "%2D")


def feedback_url(settings: Settings, subscriber_id: int, arxiv_id: str, direction: str) -> str:
    """``{base_url}/feedback/{token}/{arxiv_id}/{more|fewer}``: a card's feedback link."""
    token = feedback_token(settings, subscriber_id)
    return f"{settings.base_url}/feedback/{token}/{arxiv_id}/{direction}"
