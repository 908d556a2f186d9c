"""The operator's session: a signed cookie that expires, tied to the current admin token.

Stateless (nothing stored server-side): the cookie holds its expiry and a fingerprint of the
admin token, signed with the secret key. Rotating ``NEWSLETTER_ADMIN_TOKEN`` or the secret key
signs every operator out; signing out deletes the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from starlette.responses import Response

from newsletter.config import Settings
from newsletter.web.security import require_secret_key

COOKIE = "nl_admin"
PATH = "/admin"


def admin_enabled(settings: Settings) -> bool:
    """The dashboard exists only when an admin token is configured."""
    return settings.admin_token is not None and bool(settings.admin_token.get_secret_value())


def token_matches(settings: Settings, given: str) -> bool:
    """Constant-time comparison of a submitted token with ``NEWSLETTER_ADMIN_TOKEN``."""
    if not admin_enabled(settings) or settings.admin_token is None:
        return False
    expected = settings.admin_token.get_secret_value().encode("utf-8")
    return hmac.compare_digest(given.strip().encode("utf-8"), expected)


def _fingerprint(settings: Settings) -> str:
    token = settings.admin_token.get_secret_value() if settings.admin_token else ""
    return hashlib.sha256(("admin-session:" + token).encode("utf-8")).hexdigest()[:32]


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(require_secret_key(settings), salt="newsletter.admin-session")


def lifetime_seconds(settings: Settings) -> float:
    return settings.web.admin_session_hours * 3600.0


def issue_cookie(settings: Settings, response: Response, *, now: float | None = None) -> None:
    """Sign the operator in: HttpOnly, SameSite=Strict, Secure over https, scoped to /admin."""
    now = time.time() if now is None else now
    lifetime = lifetime_seconds(settings)
    value = _serializer(settings).dumps({"exp": now + lifetime, "tok": _fingerprint(settings)})
    response.set_cookie(
        COOKIE,
        str(value),
        max_age=max(1, int(lifetime)),
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=settings.base_url.startswith("https://"),
    )


def clear_cookie(settings: Settings, response: Response) -> None:
    response.delete_cookie(
        COOKIE,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=settings.base_url.startswith("https://"),
    )


def valid(settings: Settings, cookie: str | None, *, now: float | None = None) -> bool:
    """True for an unexpired cookie signed by us for the current admin token."""
    if not admin_enabled(settings) or not cookie or len(cookie) > 1024:
        return False
    try:
        data: Any = _serializer(settings).loads(cookie)
    except BadSignature:
        return False
    if not isinstance(data, dict):
        return False
    exp, tok = data.get("exp"), data.get("tok")
    if not isinstance(exp, int | float) or not isinstance(tok, str):
        return False
    now = time.time() if now is None else now
    return now < exp and hmac.compare_digest(tok.encode(), _fingerprint(settings).encode())
