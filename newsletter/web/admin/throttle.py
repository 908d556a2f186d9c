"""Failed sign-ins, counted in the database so the limit holds across processes and restarts.

Two windows: one client address may fail ``PER_CLIENT`` times in ``WINDOW``; all clients together
``OVERALL`` times (a slow distributed guess). While either is exhausted no sign-in is checked at
all, not even a correct one, so a throttled answer tells nothing about the token.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from newsletter.models import utcnow
from newsletter.web.admin.models import AdminSigninFailure

WINDOW = dt.timedelta(minutes=15)
PER_CLIENT = 5
OVERALL = 50


def client_key(ip: str | None) -> str:
    return f"ip:{ip or 'unknown'}"[:128]


def throttled(session: Session, *, key: str, now: dt.datetime | None = None) -> bool:
    """Whether sign-ins from ``key`` are refused now (old failures are purged as we go)."""
    now = now or utcnow()
    since = now - WINDOW
    session.execute(delete(AdminSigninFailure).where(col(AdminSigninFailure.at) < since))
    window = select(func.count()).select_from(AdminSigninFailure)
    window = window.where(col(AdminSigninFailure.at) >= since)
    mine = session.exec(window.where(AdminSigninFailure.key == key)).one()
    everyone = session.exec(window).one()
    return mine >= PER_CLIENT or everyone >= OVERALL


def record_failure(session: Session, *, key: str, now: dt.datetime | None = None) -> None:
    session.add(AdminSigninFailure(key=key, at=now or utcnow()))
    session.flush()


def retry_after_seconds() -> int:
    return int(WINDOW.total_seconds())
