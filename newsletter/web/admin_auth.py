"""The admin token (``Authorization: Bearer``) of ``POST /admin/run`` and a private ``/metrics``.

Failed attempts are counted per client (an IPv6 client by its /64, like the signup limit) in
the database, so they hold across processes: past ``FAILURES`` within ``WINDOW`` a client gets
429 without its token even being compared, until the window has passed.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.web.deps import client_ip
from subscribers import ratelimit

log = logging.getLogger(__name__)
FAILURES = 10
WINDOW = dt.timedelta(minutes=15)


def token_ok(settings: Settings, header: str | None) -> bool:
    """Constant-time comparison of ``Authorization: Bearer <token>`` with the admin token."""
    if settings.admin_token is None or not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    expected = settings.admin_token.get_secret_value().encode("utf-8")
    if not expected:
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), expected)


def refusal(request: Request, settings: Settings, engine: Engine) -> Response | None:
    """None when the request carries the admin token; else the answer to give (401, or 429
    once this client has failed too often). With the database down, the token is still
    checked (the count of failures is not: there is nothing to count with)."""
    key = f"admin-fail:{ratelimit.ip_bucket(client_ip(request))}"
    now = dt.datetime.now(dt.UTC)
    try:
        with session_scope(engine) as session:
            failures = ratelimit.recent(session, key=key, window=WINDOW, now=now)
    except SQLAlchemyError:
        log.warning("admin token: failed attempts cannot be counted (database unreachable)")
        failures = 0
    if failures >= FAILURES:
        return JSONResponse(
            {"error": "too many failed attempts; try again later"},
            status_code=429,
            headers={"Retry-After": str(int(WINDOW.total_seconds()))},
        )
    if token_ok(settings, request.headers.get("authorization")):
        return None
    try:
        with session_scope(engine) as session:
            ratelimit.record(session, key=key, now=now)
    except SQLAlchemyError:
        pass
    return JSONResponse(
        {"error": "a valid admin token is required"},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="admin"'},
    )
