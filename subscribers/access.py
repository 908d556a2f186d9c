"""From a signed link to a subscriber: purpose, expiry, and the subscriber's link key.

Every link expires: confirmation after ``web.confirm_token_days``, the preferences and
unsubscribe links of an e-mail after ``web.link_days`` (each digest brings fresh ones), export
and erase links (made on the preferences page when asked for) after two days. A link is bound
to the person through their random ``link_key``: ids are never re-used and a new key revokes
every older link, so a link of an erased or re-subscribed row reaches nobody.
"""

from __future__ import annotations

import datetime as dt
import hmac

from sqlmodel import Session

from newsletter.config import Settings
from subscribers.errors import InvalidLink
from subscribers.links import secret_of
from subscribers.models import Subscriber
from subscribers.tokens import Purpose, TokenData, TokenError, read_short_token, read_token

SHORT_LIVED_SECONDS = 2 * 24 * 3600
DAY = 24 * 3600
# Links without a key were sent before keys existed; only unsubscribing is left to them (the
# law wants it to keep working), within web.link_days and only for rows older than the link.
LEGACY_PURPOSES: frozenset[str] = frozenset({"unsubscribe"})
MAX_TOKEN_LEN = 512


def max_age(settings: Settings, purpose: Purpose) -> int:
    if purpose == "confirm":
        return settings.web.confirm_token_days * DAY
    if purpose in ("export", "erase"):
        return SHORT_LIVED_SECONDS
    return settings.web.link_days * DAY


def read(settings: Settings, purpose: Purpose, token: str) -> TokenData:
    if len(token) > MAX_TOKEN_LEN:
        raise InvalidLink("this link is not valid")
    try:
        return read_token(secret_of(settings), purpose, token, max_age(settings, purpose))
    except TokenError as exc:
        raise InvalidLink(str(exc)) from exc


def _legacy_ok(sub: Subscriber, data: TokenData) -> bool:
    created = sub.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return data.issued_at >= created.replace(microsecond=0)


def subscriber_for(
    session: Session, settings: Settings, purpose: Purpose, token: str
) -> tuple[Subscriber, TokenData]:
    """The subscriber a valid token names, when the token carries their current link key.
    Callers check ``data.key`` (empty for a legacy unsubscribe link) before offering more
    than unsubscribing."""
    data = read(settings, purpose, token)
    sub = session.get(Subscriber, data.subscriber_id)
    if sub is None:
        raise InvalidLink("this link is not valid any more")
    if not data.key:
        if purpose in LEGACY_PURPOSES and _legacy_ok(sub, data):
            return sub, data
        raise InvalidLink("this link is not valid any more")
    if not hmac.compare_digest(sub.link_key.encode(), data.key.encode()):
        raise InvalidLink("this link is not valid any more")
    return sub, data


def subscriber_for_short(
    session: Session, settings: Settings, purpose: Purpose, token: str
) -> Subscriber:
    """The subscriber a valid compact token (a card's feedback link) names, when it carries the
    start of their current link key and is not older than ``web.link_days``."""
    if len(token) > MAX_TOKEN_LEN:
        raise InvalidLink("this link is not valid")
    try:
        data = read_short_token(secret_of(settings), purpose, token, max_age(settings, purpose))
    except TokenError as exc:
        raise InvalidLink(str(exc)) from exc
    sub = session.get(Subscriber, data.subscriber_id)
    if sub is None or not hmac.compare_digest(
        sub.link_key[: len(data.key)].encode(), data.key.encode()
    ):
        raise InvalidLink("this link is not valid any more")
    return sub
