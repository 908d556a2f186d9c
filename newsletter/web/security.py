"""Security headers, CSRF (signed double-submit cookie), the secret-key and admin-token checks."""

from __future__ import annotations

import hmac
import secrets

from itsdangerous import BadSignature, Signer
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsletter.config import ConfigError, Settings

CSRF_COOKIE = "nl_csrf"
CSRF_FIELD = "csrf_token"
MIN_SECRET_LEN = 32
_PLACEHOLDERS = (
    "changeme",
    "changethis",
    "placeholder",
    "secret",
    "password",
    "example",
    "your",
    "insecure",
    "default",
    "test",
)

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # tokens live in paths: never hand them to other sites
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
HSTS = "max-age=31536000"  # a year; no includeSubDomains: other hosts of the domain are not ours
MIN_ADMIN_TOKEN_LEN = 32


def headers_for(settings: Settings) -> dict[str, str]:
    """The headers of every answer; HSTS too when the site is served over https (its links
    carry tokens in their paths, which must never travel in clear)."""
    if settings.base_url.startswith("https://"):
        return {**SECURITY_HEADERS, "Strict-Transport-Security": HSTS}
    return dict(SECURITY_HEADERS)


def require_admin_token(settings: Settings) -> None:
    """A configured admin token must be long enough to resist guessing (failed attempts are
    also throttled); refuse to start with a short one, like a short secret key."""
    if settings.admin_token is None:
        return
    token = settings.admin_token.get_secret_value()
    if token and len(token) < MIN_ADMIN_TOKEN_LEN:
        raise ConfigError(
            f"NEWSLETTER_ADMIN_TOKEN is too short ({len(token)} characters, at least "
            f"{MIN_ADMIN_TOKEN_LEN}); generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )


def require_secret_key(settings: Settings) -> str:
    """The key that signs every link; refuse to serve with a missing, short or placeholder one."""
    if settings.secret_key is None:
        raise ConfigError(
            "NEWSLETTER_SECRET_KEY is not set; generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    key = settings.secret_key.get_secret_value()
    if len(key) < MIN_SECRET_LEN:
        raise ConfigError(
            f"NEWSLETTER_SECRET_KEY is too short ({len(key)} characters, at least "
            f"{MIN_SECRET_LEN}); generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    letters = "".join(ch for ch in key.lower() if ch.isalnum())
    if letters.startswith(_PLACEHOLDERS) or len(set(key)) < 10:
        raise ConfigError(
            "NEWSLETTER_SECRET_KEY looks like a placeholder; generate a random one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    return key


class SecurityHeaders:
    """Adds ``headers`` (``headers_for(settings)``) to every response, and ``no-store`` to
    anything not static (pages behind signed links show personal data)."""

    def __init__(self, app: ASGIApp, headers: dict[str, str] | None = None) -> None:
        self.app = app
        self.headers = [(k.encode(), v.encode()) for k, v in (headers or SECURITY_HEADERS).items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in self.headers:
                    if name.lower() not in present:
                        headers.append((name, value))
                if not static and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)


def apply_security_headers(response: Response, settings: Settings | None = None) -> Response:
    """For responses made outside the middleware (the last-resort 500 handler)."""
    for name, value in (headers_for(settings) if settings else SECURITY_HEADERS).items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _signer(settings: Settings) -> Signer:
    return Signer(require_secret_key(settings), salt="newsletter.csrf")


def csrf_token(request: Request, settings: Settings) -> str:
    """The form field value for this browser: the cookie's random value, signed. A new cookie
    value is made when the browser has none; ``set_csrf_cookie`` puts it on the response."""
    value = request.cookies.get(CSRF_COOKIE, "")
    if not (16 <= len(value) <= 128) or not value.replace("-", "").replace("_", "").isalnum():
        value = getattr(request.state, "csrf_new", None) or secrets.token_urlsafe(32)
        request.state.csrf_new = value
    return _signer(settings).sign(value).decode()


def set_csrf_cookie(request: Request, response: Response, settings: Settings) -> None:
    value = getattr(request.state, "csrf_new", None)
    if value:
        response.set_cookie(
            CSRF_COOKIE,
            value,
            httponly=True,
            samesite="lax",
            secure=settings.base_url.startswith("https://"),
            path="/",
        )


def csrf_valid(request: Request, settings: Settings, submitted: str | None) -> bool:
    """Cookie and field must both be there and the field must be the cookie's signature: a
    cross-site form has neither the (SameSite, HttpOnly) cookie nor a way to sign it."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted or len(submitted) > 512:
        return False
    try:
        value = _signer(settings).unsign(submitted).decode()
    except (BadSignature, UnicodeDecodeError):
        return False
    return hmac.compare_digest(value.encode(), cookie.encode())
