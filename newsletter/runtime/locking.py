"""Named, non-blocking locks in the project's database, so several processes run a day only once.

PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on a dedicated
connection; the server drops it by itself when the holding process dies. SQLite: a row in
``locks`` inserted or not (primary key on the name), with a holder id and an expiry after which
another process may take a stale lock over. SQLite cannot notice that the holder died, but the
holder id names its host and process: a lock whose holder process is gone from this host (a
crashed or killed run) is taken over at once instead of waiting for the expiry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Callable

from sqlalchemy import delete, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from newsletter.models import LockRow, utcnow

log = logging.getLogger(__name__)

DEFAULT_TTL = dt.timedelta(hours=6)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (PostgreSQL's advisory locks take a bigint)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def new_holder_id() -> str:
    """Who holds a lock: host, process and a random part (one process may hold several)."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def holder_is_dead(holder: str) -> bool:
    """True only when the holder ran on this host and its process no longer exists."""
    host, _, rest = holder.partition(":")
    pid = rest.split(":", 1)[0]
    if host != socket.gethostname()[:64] or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class DayLock:
    """One named lock; ``acquire`` never waits, ``release`` is safe to call twice."""

    def __init__(
        self,
        engine: Engine,
        name: str,
        *,
        ttl: dt.timedelta = DEFAULT_TTL,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.name = name
        self.ttl = ttl
        self.clock = clock
        self.holder = new_holder_id()
        self.held = False
        self._conn: Connection | None = None

    @property
    def _postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def acquire(self) -> bool:
        if self.held:
            return True
        self.held = self._acquire_pg() if self._postgres else self._acquire_row()
        return self.held

    def release(self) -> None:
        if not self.held:
            return
        try:
            if self._postgres:
                self._release_pg()
            else:
                self._release_row()
        finally:
            self.held = False

    def _acquire_pg(self) -> bool:
        conn = self.engine.connect()
        try:
            got = bool(
                conn.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": advisory_key(self.name)}
                ).scalar()
            )
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def _release_pg(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": advisory_key(self.name)})
            conn.commit()
        except BaseException:
            # Never return a connection that may still hold the lock to the pool: drop it,
            # and the server releases the lock with the session.
            conn.invalidate()
            raise
        finally:
            conn.close()

    def _acquire_row(self) -> bool:
        if self._insert_row():
            return True
        with self.engine.begin() as conn:
            holder = conn.execute(
                text("SELECT holder FROM locks WHERE name = :n"), {"n": self.name}
            ).scalar()
            if holder is None or not holder_is_dead(holder):
                return False
            conn.execute(
                delete(LockRow).where(
                    LockRow.name == self.name,  # type: ignore[arg-type]
                    LockRow.holder == holder,
                )
            )
        log.warning("lock %s: took over from %s, whose process is gone", self.name, holder)
        return self._insert_row()

    def _insert_row(self) -> bool:
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                # The DELETE comes first so the transaction takes SQLite's write lock at once.
                stale = conn.execute(
                    delete(LockRow).where(
                        LockRow.name == self.name,  # type: ignore[arg-type]
                        LockRow.expires_at < now,  # type: ignore[arg-type]
                    )
                )
                if stale.rowcount:
                    log.warning("lock %s: took over a stale lock (expired)", self.name)
                conn.execute(
                    LockRow.__table__.insert().values(  # type: ignore[attr-defined]
                        name=self.name,
                        holder=self.holder,
                        acquired_at=now,
                        expires_at=now + self.ttl,
                    )
                )
        except IntegrityError:
            return False
        return True

    def _release_row(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(LockRow).where(
                    LockRow.name == self.name,  # type: ignore[arg-type]
                    LockRow.holder == self.holder,  # type: ignore[arg-type]
                )
            )
