"""Signed, purpose-scoped tokens for links in e-mails (no login needed).

A token carries the subscriber id and a nonce; rotating the subscriber's nonce revokes every
token issued before (single-use confirmation). The purpose is the signing salt, so an unsubscribe
token cannot confirm or export. itsdangerous compares signatures in constant time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from itsdangerous import BadData, SignatureExpired, Signer, URLSafeTimedSerializer

Purpose = Literal["confirm", "preferences", "unsubscribe", "export", "erase", "feedback"]


class TokenError(Exception):
    """The token is malformed, tampered with, for another purpose, or expired."""


@dataclass(frozen=True, slots=True)
class TokenData:
    subscriber_id: int
    nonce: str
    issued_at: dt.datetime | None = None  # whole seconds, UTC: tokens older than the row die


def _serializer(secret_key: str, purpose: Purpose) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=f"newsletter.{purpose}")


def make_token(secret_key: str, purpose: Purpose, subscriber_id: int, nonce: str = "") -> str:
    return _serializer(secret_key, purpose).dumps({"s": subscriber_id, "n": nonce})


def read_token(
    secret_key: str, purpose: Purpose, token: str, max_age_seconds: int | None = None
) -> TokenData:
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
    return TokenData(subscriber_id=data["s"], nonce=str(data.get("n", "")), issued_at=issued)


def make_short_token(secret_key: str, purpose: Purpose, subscriber_id: int) -> str:
    """A compact token (``id.signature``, about 30 characters) for links repeated on every
    card of a digest, where the full token would make each e-mail kilobytes larger. It
    carries no nonce or time, so it is only for actions a reader may repeat at will."""
    return Signer(secret_key, salt=f"newsletter.{purpose}.short").sign(str(subscriber_id)).decode()


def read_short_token(secret_key: str, purpose: Purpose, token: str) -> TokenData:
    try:
        value = Signer(secret_key, salt=f"newsletter.{purpose}.short").unsign(token).decode()
    except BadData as exc:
        raise TokenError("this link is not valid") from exc
    if not value.isdigit():
        raise TokenError("this link is not valid")
    return TokenData(subscriber_id=int(value), nonce="")
