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
import functools
from dataclasses import dataclass
from typing import Literal

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

Purpose = Literal["confirm", "preferences", "unsubscribe", "export", "erase", "feedback"]


class TokenError(Exception):
    """The token is malformed, tampered with, for another purpose, or expired."""


@dataclass(frozen=True, slots=True)
class TokenData:
    subscriber_id: int
    key: str  # "" in links made before keys existed (see subscribers.access.LEGACY_PURPOSES)
    nonce: str
    issued_at: dt.datetime


@functools.lru_cache(maxsize=64)
def _serializer(secret_key: str, purpose: Purpose) -> URLSafeTimedSerializer:
    """One serializer per key and purpose (a digest signs three links per reader)."""
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


SHORT_KEY = 8  # characters of the subscriber's link key a compact token carries


def make_short_token(secret_key: str, purpose: Purpose, subscriber_id: int, key: str) -> str:
    """A compact token (``id.key.time.signature``, about 40 characters) for links repeated on
    every card of a digest, where the full token would make each e-mail kilobytes larger. It
    carries no nonce, so it is only for actions a reader may repeat at will; it is dated and
    bound to the person by the first characters of their link key, like every link."""
    signer = TimestampSigner(secret_key, salt=f"newsletter.{purpose}.short")
    return signer.sign(f"{subscriber_id}.{key[:SHORT_KEY]}").decode()


def read_short_token(secret_key: str, purpose: Purpose, token: str, max_age: int) -> TokenData:
    signer = TimestampSigner(secret_key, salt=f"newsletter.{purpose}.short")
    try:
        value, signed_at = signer.unsign(token, max_age=max_age, return_timestamp=True)
    except SignatureExpired as exc:
        raise TokenError("this link has expired") from exc
    except BadData as exc:
        raise TokenError("this link is not valid") from exc
    sid, _, key = value.decode().partition(".")
    if not sid.isdigit() or len(key) != SHORT_KEY:
        raise TokenError("this link is not valid")
    return TokenData(subscriber_id=int(sid), key=key, nonce="", issued_at=signed_at)
