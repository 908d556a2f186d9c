"""Rate limits kept in the database (RateEvent rows), so they hold across processes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from newsletter.models import utcnow
from subscribers.errors import RateLimited
from subscribers.models import RateEvent

KEEP = dt.timedelta(days=2)  # longer than any window we count over


def hit(
    session: Session,
    *,
    key: str,
    limit: int,
    window: dt.timedelta,
    now: dt.datetime | None = None,
) -> bool:
    """Count one event for ``key``; False (and nothing recorded) when ``limit`` events already
    happened within ``window``. Old events are purged as we go."""
    now = now or utcnow()
    session.execute(delete(RateEvent).where(col(RateEvent.at) < now - KEEP))
    count = session.exec(
        select(func.count()).select_from(RateEvent).where(
            RateEvent.key == key, col(RateEvent.at) > now - window
        )
    ).one()
    if count >= limit:
        return False
    session.add(RateEvent(key=key[:128], at=now))
    session.flush()
    return True


def enforce(
    session: Session,
    *,
    limits: list[tuple[str, int, dt.timedelta]],
    now: dt.datetime | None = None,
) -> None:
    """Check several (key, limit, window) at once; raise RateLimited if any is exhausted.
    Every key is checked even after a refusal, so the work done does not depend on which."""
    now = now or utcnow()
    allowed = [hit(session, key=k, limit=n, window=w, now=now) for k, n, w in limits]
    if not all(allowed):
        raise RateLimited(
            "You have tried to sign up too many times. Please wait a while and try again."
        )
