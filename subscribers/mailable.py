"""Who may be mailed: the one rule, and the one query that asks it of the database.

A subscriber may be mailed while their status is ``active`` and while the hash of their address
(``subscribers.validation.email_hash``) is not on the suppression list, which outlives erasure.
The digest's selection (``newsletter.email.loading``) and the sender's check before each wave
(``newsletter.delivery.suppression``) both ask ``mailable_rows``: the core reads the store only
through this interface.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from subscribers.models import Subscriber, Suppression
from subscribers.validation import email_hash

__all__ = ["SUBSCRIBER_COLUMNS", "mailable_rows"]

SUBSCRIBER_COLUMNS = Subscriber.__table__.c  # type: ignore[attr-defined]
_SUPP = Suppression.__table__.c  # type: ignore[attr-defined]
_CHUNK = 900  # below SQLite's bound-parameter limit
_ACTIVE = SUBSCRIBER_COLUMNS.status == "active"
# Built once: the sender asks before every wave, and building a statement costs more than
# running it on a few ids.
_BY_ID = (
    select(SUBSCRIBER_COLUMNS.id, SUBSCRIBER_COLUMNS.email)
    .where(_ACTIVE, SUBSCRIBER_COLUMNS.id.in_(bindparam("ids", expanding=True)))
    .order_by(SUBSCRIBER_COLUMNS.id)
)
_SUPPRESSED = select(_SUPP.email_hash).where(_SUPP.email_hash.in_(bindparam("h", expanding=True)))
_ALL_SUPPRESSED = select(_SUPP.email_hash)


def _unsuppressed(rows: Sequence[Row[Any]], suppressed: set[str]) -> list[Row[Any]]:
    if not suppressed:
        return list(rows)
    return [r for r in rows if email_hash(r.email) not in suppressed]


def mailable_rows(
    conn: Connection | Session,
    columns: Sequence[ColumnElement[Any]] = (),
    *,
    ids: Iterable[int] | None = None,
) -> list[Row[Any]]:
    """Rows ``(id, email, *columns)`` of the subscribers who may be mailed now, by id.

    Without ``ids``: everyone (the suppression list is read once). With ``ids``: only those of
    them, asked in chunks (the suppression list is asked for their hashes only).
    """
    if ids is None:
        query = (
            select(SUBSCRIBER_COLUMNS.id, SUBSCRIBER_COLUMNS.email, *columns)
            .where(_ACTIVE)
            .order_by(SUBSCRIBER_COLUMNS.id)
        )
        rows = conn.execute(query).all()
        return _unsuppressed(rows, set(conn.execute(_ALL_SUPPRESSED).scalars()))
    by_id = (
        _BY_ID
        if not columns
        else select(SUBSCRIBER_COLUMNS.id, SUBSCRIBER_COLUMNS.email, *columns)
        .where(_ACTIVE, SUBSCRIBER_COLUMNS.id.in_(bindparam("ids", expanding=True)))
        .order_by(SUBSCRIBER_COLUMNS.id)
    )
    wanted = list(dict.fromkeys(ids))
    out: list[Row[Any]] = []
    for start in range(0, len(wanted), _CHUNK):
        rows = conn.execute(by_id, {"ids": wanted[start : start + _CHUNK]}).all()
        hashes = [email_hash(r.email) for r in rows]
        hit = set(conn.execute(_SUPPRESSED, {"h": hashes}).scalars()) if hashes else set()
        out.extend(_unsuppressed(rows, hit))
    return out
