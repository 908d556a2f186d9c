"""Signed, purpose-scoped tokens for links in e-mails (no login needed).

A token carries the subscriber id, the subscriber's random ``link_key`` and, for confirmations,
a nonce. A new ``link_key`` (on re-subscription; erasure deletes the row, and ids are never
re-used) revokes every link of that person at once; rotating a nonce makes a confirmation
single-use. The purpose is the signing salt, so an unsubscribe token cannot confirm or export.
Every token carries its signing time and expires (``subscribers.access.max_age``).
itsdangerous compares signatures in constant time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

Purpose = Literal["confirm", "preferences", "unsubscribe", "export", "erase"]


class TokenError(Exception):
    """The token is malformed, tampered with, for another purpose, or expired."""


@dataclass(frozen=True, slots=True)
class TokenData:
    subscriber_id: int
    key: str  # "" in links made before keys existed (see subscribers.access.LEGACY_PURPOSES)
    nonce: str
    issued_at: dt.datetime


def _serializer(secret_key: str, purpose: Purpose) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=f"newsletter.{purpose}")


def make_token(
    secret_key: str, purpose: Purpose, subscriber_id: int, key: str, nonce: str = ""
) -> str:
    if not key:
        raise ValueError("a link needs the subscriber's link key")
    payload: dict[str, int | str] = {"s": subscriber_id, "k": key}
    if nonce:
        payload["n"] = nonce
    return _serializer(secret_key, purpose).dumps(payload)


def read_token(secret_key: str, purpose: Purpose, token: str, max_age_seconds: int) -> TokenData:
    try:
        data, issued = _serializer(secret_key, purpose).loads(
            token, max_age=max_age_seconds, return_timestamp=True
        )
    except SignatureExpired as exc:
        raise TokenError("this link has expired") from exc
    except BadData as exc:
        raise TokenError("this link is not valid") from exc
    if not isinstance(data, dict) or not isinstance(data.get("s"), int):
        raise TokenError("this link is not valid")
    return TokenData(
        subscriber_id=data["s"],
        key=str(data.get("k", "")),
        nonce=str(data.get("n", "")),
        issued_at=issued,
    )
