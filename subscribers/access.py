"""From a signed link to a subscriber: purpose, expiry, and tokens older than the row."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from newsletter.config import Settings
from subscribers.errors import InvalidLink
from subscribers.links import secret_of
from subscribers.models import Subscriber
from subscribers.tokens import Purpose, TokenData, TokenError, read_token

# Export and erase links are made on the preferences page when asked for, so they may be short.
SHORT_LIVED_SECONDS = 2 * 24 * 3600


def max_age(settings: Settings, purpose: Purpose) -> int | None:
    """Confirmation links expire (web.confirm_token_days); links in every digest do not."""
    if purpose == "confirm":
        return settings.web.confirm_token_days * 24 * 3600
    if purpose in ("export", "erase"):
        return SHORT_LIVED_SECONDS
    return None


def read(settings: Settings, purpose: Purpose, token: str) -> TokenData:
    if len(token) > 512:
        raise InvalidLink("this link is not valid")
    try:
        return read_token(secret_of(settings), purpose, token, max_age(settings, purpose))
    except TokenError as exc:
        raise InvalidLink(str(exc)) from exc


def subscriber_for(
    session: Session, settings: Settings, purpose: Purpose, token: str
) -> tuple[Subscriber, TokenData]:
    """The subscriber a valid token names. A token issued before the row was created is
    refused, so an id reused after erasure (SQLite may reuse ids) never reaches someone else."""
    data = read(settings, purpose, token)
    sub = session.get(Subscriber, data.subscriber_id)
    if sub is None:
        raise InvalidLink("this link is not valid any more")
    created = sub.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    if data.issued_at is not None and data.issued_at < created.replace(microsecond=0):
        raise InvalidLink("this link is not valid any more")
    return sub, data
