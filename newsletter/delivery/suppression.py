"""Who must not be mailed, asked of the database right before each batch.

The subscriber module's rules, read in bulk: a subscriber is mailable only while ``active`` and
while the hash of their address (``subscribers.validation.email_hash``) is not on the
suppression list (which outlives erasure). Suppressing is ``subscribers.service.suppress``.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from subscribers.models import Subscriber, Suppression
from subscribers.validation import email_hash

__all__ = ["SUBS", "SUPP", "blocked_ids", "email_hash"]

_CHUNK = 900  # below SQLite's bound-parameter limit
SUBS = Subscriber.__table__.c  # type: ignore[attr-defined]
SUPP = Suppression.__table__.c  # type: ignore[attr-defined]
# Built once: the sender asks these before every wave, and building a statement costs more than
# running it on a few ids.
_BY_ID = select(SUBS.id, SUBS.email, SUBS.status).where(
    SUBS.id.in_(bindparam("ids", expanding=True))
)
_SUPPRESSED = select(SUPP.email_hash).where(SUPP.email_hash.in_(bindparam("h", expanding=True)))


def blocked_ids(session: Session | Connection, subscriber_ids: Iterable[int]) -> set[int]:
    """Those of ``subscriber_ids`` who must not be mailed now (not active, gone, or suppressed)."""
    ids = list(dict.fromkeys(subscriber_ids))
    blocked: set[int] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = session.execute(_BY_ID, {"ids": list(chunk)}).all()
        found = {r.id for r in rows}
        blocked.update(i for i in chunk if i not in found)
        by_hash: dict[str, int] = {}
        for r in rows:
            if r.status != "active":
                blocked.add(r.id)
            else:
                by_hash[email_hash(r.email)] = r.id
        if by_hash:
            hit = session.execute(_SUPPRESSED, {"h": list(by_hash)}).scalars()
            blocked.update(by_hash[h] for h in hit)
    return blocked
