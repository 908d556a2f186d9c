"""Day locks on SQLite and PostgreSQL: exclusive, non-blocking, released, stale takeover."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from newsletter.db import make_engine
from newsletter.runtime.locking import DayLock, advisory_key
from tests.fixtures_service import start_worker, wait_for


def test_second_holder_is_refused_until_release(engine: Engine, database_url: str) -> None:
    other = make_engine(database_url)  # a separate pool: another "process" as far as locks go
    try:
        first = DayLock(engine, "digest:2026-05-04")
        assert first.acquire()
        assert not DayLock(other, "digest:2026-05-04").acquire()
        different_day = DayLock(other, "digest:2026-05-05")
        assert different_day.acquire()
        different_day.release()
        first.release()
        after_release = DayLock(other, "digest:2026-05-04")
        assert after_release.acquire()
        after_release.release()
    finally:
        other.dispose()


def test_release_is_idempotent_and_reacquire_works(engine: Engine) -> None:
    lock = DayLock(engine, "x")
    assert lock.acquire()
    assert lock.acquire()  # already ours
    lock.release()
    lock.release()
    assert DayLock(engine, "x").acquire()


def test_advisory_key_is_stable_and_signed_64_bit() -> None:
    key = advisory_key("digest:2026-05-04")
    assert key == advisory_key("digest:2026-05-04")
    assert key != advisory_key("digest:2026-05-05")
    assert -(2**63) <= key < 2**63


def test_sqlite_stale_lock_is_taken_over_and_old_holder_cannot_free_it(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    t0 = dt.datetime(2026, 5, 4, 5, 40, tzinfo=dt.UTC)
    now = [t0]
    old = DayLock(engine, "digest:d", ttl=dt.timedelta(hours=1), clock=lambda: now[0])
    new = DayLock(engine, "digest:d", ttl=dt.timedelta(hours=1), clock=lambda: now[0])
    assert old.acquire()
    now[0] = t0 + dt.timedelta(minutes=59)
    assert not new.acquire()
    now[0] = t0 + dt.timedelta(hours=1, minutes=1)
    assert new.acquire()
    old.release()  # the old holder's release must not delete the new holder's row
    third = DayLock(engine, "digest:d", clock=lambda: now[0])
    assert not third.acquire()
    new.release()
    assert third.acquire()
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # advisory locks are PG's
def test_postgres_lock_dies_with_the_holding_process(engine: Engine, database_url: str) -> None:
    assert engine.dialect.name == "postgresql"
    proc = start_worker(["hold-lock", database_url, "digest:kill"])
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        assert not DayLock(engine, "digest:kill").acquire()
        proc.kill()
        proc.wait(timeout=10)
        lock = DayLock(engine, "digest:kill")
        wait_for(lock.acquire, what="the server to drop the dead process's lock")
        lock.release()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_sqlite_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    """A killed holder on this host leaves its row; the next run need not wait for the expiry."""
    from newsletter.db import make_engine, upgrade

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    proc = start_worker(["hold-lock", url, "digest:dead"])
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    assert not DayLock(engine, "digest:dead").acquire()  # its holder is alive
    proc.kill()
    proc.communicate(timeout=10)
    taker = DayLock(engine, "digest:dead")
    assert taker.acquire()
    assert not DayLock(engine, "digest:dead").acquire()  # and it is really held again
    taker.release()
    engine.dispose()
