"""Rate limits kept in the database (RateEvent rows), so they hold across processes."""

from __future__ import annotations

import datetime as dt
import ipaddress

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from newsletter.models import utcnow
from subscribers.models import RateEvent

KEEP = dt.timedelta(days=2)  # longer than any window we count over


def recent(session: Session, *, key: str, window: dt.timedelta, now: dt.datetime) -> int:
    """Events counted for ``key`` within ``window`` (old events are purged as we go)."""
    session.execute(delete(RateEvent).where(col(RateEvent.at) < now - KEEP))
    count: int = session.exec(
        select(func.count())
        .select_from(RateEvent)
        .where(RateEvent.key == key[:128], col(RateEvent.at) > now - window)
    ).one()
    return count


def record(session: Session, *, key: str, now: dt.datetime) -> None:
    session.add(RateEvent(key=key[:128], at=now))
    session.flush()


def hit(
    session: Session,
    *,
    key: str,
    limit: int,
    window: dt.timedelta,
    now: dt.datetime | None = None,
) -> bool:
    """Count one event for ``key``; False (and nothing recorded) when ``limit`` events already
    happened within ``window``."""
    now = now or utcnow()
    if recent(session, key=key, window=window, now=now) >= limit:
        return False
    record(session, key=key, now=now)
    return True


def ip_bucket(ip: str | None) -> str:
    """What a per-IP limit counts: an IPv4 address, or the /64 network of an IPv6 address (one
    customer usually gets a whole /64, so counting single addresses would count nothing)."""
    if not ip:
        return "unknown"
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)
