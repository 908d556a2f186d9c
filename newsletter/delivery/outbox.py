"""Exactly-once bookkeeping: one ``deliveries`` row per (issue, subscriber), moved through
queued -> sending -> sent / failed, each step committed before the next one happens.

The order is the whole guarantee. Rows are created in bulk (insert-or-ignore, so a rerun adds
nobody twice); a batch is marked ``sending`` and committed *before* its request and marked
``sent`` or ``failed`` after it. A crash therefore leaves each recipient in exactly one of three
states: ``queued`` (never handed over: sent on restart), ``sent``/``failed`` (done: never sent
again) or ``sending`` (the in-flight window: the request may or may not have reached the
provider). The in-flight rows are listed and handled by ``delivery.in_flight_policy``:
``skip`` (default) marks them ``unknown`` and never sends them again, so nobody is mailed twice
but they may miss the day; ``resend`` queues them again, so nobody misses the day but a few may
get it twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from newsletter.delivery.backends.base import Outcome
from newsletter.delivery.models import Delivery
from newsletter.models import utcnow

TABLE = Delivery.__table__  # type: ignore[attr-defined]
_CHUNK = 900  # ids per IN (...) list: below SQLite's bound-parameter limit
_INSERT_ROWS = 2000
# Built once (the sender runs them for every wave; building one costs more than running it).
_CLAIM = (
    update(TABLE)
    .where(TABLE.c.id.in_(bindparam("ids", expanding=True)), TABLE.c.status == "queued")
    .values(status="sending", attempts=TABLE.c.attempts + 1, updated_at=bindparam("now"))
    .returning(TABLE.c.id)
)
_MARK = (
    update(TABLE)
    .where(
        TABLE.c.id.in_(bindparam("ids", expanding=True)),
        TABLE.c.status.in_(("queued", "sending")),
    )
    .values(status=bindparam("status"), error=bindparam("error"), updated_at=bindparam("now"))
)
_RECORD = (
    update(TABLE)
    .where(TABLE.c.id == bindparam("b_id"), TABLE.c.status == "sending")
    .values(
        status=bindparam("b_status"),
        provider_message_id=bindparam("b_provider"),
        error=bindparam("b_error"),
        updated_at=bindparam("b_now"),
    )
)


@dataclass(frozen=True, slots=True)
class Pending:
    """A delivery row still to act on."""

    delivery_id: int
    subscriber_id: int
    message_id: str


@dataclass(frozen=True, slots=True)
class NewDelivery:
    subscriber_id: int
    message_id: str
    status: str = "queued"
    error: str | None = None


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextmanager
def _transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """A transaction of its own on an engine; the caller's on a connection (one commit for a
    whole wave's suppression marks and claim)."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.begin() as conn:
            yield conn


def _insert_ignore(engine: Engine) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING in the engine's dialect."""
    if engine.dialect.name == "postgresql":
        return pg_insert(TABLE).on_conflict_do_nothing(index_elements=["issue_id", "subscriber_id"])
    if engine.dialect.name == "sqlite":
        return sqlite_insert(TABLE).on_conflict_do_nothing(
            index_elements=["issue_id", "subscriber_id"]
        )
    raise NotImplementedError(f"database {engine.dialect.name!r} is not supported")


def enqueue(engine: Engine, issue_id: int, items: Sequence[NewDelivery]) -> int:
    """Create the rows that do not exist yet, in bulk; existing rows keep their state."""
    stmt = _insert_ignore(engine)
    now = utcnow()
    inserted = 0
    with engine.begin() as conn:
        for chunk in _chunks(items, _INSERT_ROWS):
            rows = [
                {
                    "issue_id": issue_id,
                    "subscriber_id": it.subscriber_id,
                    "status": it.status,
                    "message_id": it.message_id,
                    "attempts": 0,
                    "error": it.error,
                    "created_at": now,
                    "updated_at": now,
                }
                for it in chunk
            ]
            result = conn.execute(stmt, rows)
            inserted += max(result.rowcount, 0)
    return inserted


def _pending(engine: Engine, issue_id: int, status: str) -> list[Pending]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(TABLE.c.id, TABLE.c.subscriber_id, TABLE.c.message_id)
            .where(TABLE.c.issue_id == issue_id, TABLE.c.status == status)
            .order_by(TABLE.c.id)
        ).all()
    return [Pending(r.id, r.subscriber_id, r.message_id) for r in rows]


def queued(engine: Engine, issue_id: int) -> list[Pending]:
    return _pending(engine, issue_id, "queued")


def in_flight(engine: Engine, issue_id: int) -> list[Pending]:
    """Rows a previous run marked ``sending`` and never finished: outcome unknown."""
    return _pending(engine, issue_id, "sending")


def resolve_in_flight(engine: Engine, issue_id: int, policy: str) -> list[Pending]:
    """Apply ``delivery.in_flight_policy`` to a crashed run's in-flight rows; returns them."""
    rows = in_flight(engine, issue_id)
    if not rows:
        return rows
    target = {"skip": "unknown", "resend": "queued"}[policy]
    note = f"in flight when a run stopped; policy {policy}"
    with engine.begin() as conn:
        for chunk in _chunks([r.delivery_id for r in rows]):
            conn.execute(
                update(TABLE)
                .where(TABLE.c.id.in_(chunk), TABLE.c.status == "sending")
                .values(status=target, error=note, updated_at=utcnow())
            )
    return rows


def claim(bind: Engine | Connection, delivery_ids: Sequence[int]) -> set[int]:
    """Move queued rows to ``sending`` and return those this call moved (committed at once on
    an engine; on a connection, with the caller's transaction)."""
    claimed: set[int] = set()
    with _transaction(bind) as conn:
        for chunk in _chunks(delivery_ids):
            result = conn.execute(_CLAIM, {"ids": list(chunk), "now": utcnow()})
            claimed.update(result.scalars())
    return claimed


def mark(
    bind: Engine | Connection, delivery_ids: Sequence[int], status: str, error: str | None
) -> None:
    """Set a status on rows that are not finished yet (used for ``skipped``)."""
    with _transaction(bind) as conn:
        for chunk in _chunks(delivery_ids):
            conn.execute(
                _MARK, {"ids": list(chunk), "status": status, "error": error, "now": utcnow()}
            )


def status_after(outcome: Outcome, policy: str) -> str:
    """Where a row goes after its request: retryable goes back to the queue for the next run."""
    if outcome.status == "sent":
        return "sent"
    if outcome.status == "failed":
        return "failed"
    if outcome.status == "retry":
        return "queued"
    return "queued" if policy == "resend" else "unknown"


def record(bind: Engine | Connection, results: Sequence[tuple[int, Outcome]], policy: str) -> None:
    """Store each request's outcome (one executemany; committed at once on an engine)."""
    if not results:
        return
    now = utcnow()
    params = [
        {
            "b_id": delivery_id,
            "b_status": status_after(outcome, policy),
            "b_provider": outcome.provider_id,
            "b_error": outcome.error,
            "b_now": now,
        }
        for delivery_id, outcome in results
    ]
    with _transaction(bind) as conn:
        conn.execute(_RECORD, params)


def counts(engine: Engine, issue_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(TABLE.c.status, func.count())
            .where(TABLE.c.issue_id == issue_id)
            .group_by(TABLE.c.status)
        ).all()
    return {status: n for status, n in rows}
