"""Migration 0010 on SQLite and PostgreSQL: existing rows keep their data, mailboxes typed in
several cases become one row, IDN domains are IDNA-encoded, ids are never re-used after."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from newsletter.db import make_engine, upgrade
from subscribers.validation import email_hash
from tests.conftest import PG_ADMIN_URL, _pg_available

NOW = dt.datetime(2026, 11, 1, 12, 0, 0)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh database migrated only up to 0008 (the schema before this change)."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        upgrade(eng, "0008")
        yield eng
        eng.dispose()
        return
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable")
        pytest.skip("PostgreSQL is not reachable")
    name = f"nl_mig_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    eng = make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    upgrade(eng, "0008")
    yield eng
    eng.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _add(conn: Connection, email: str, status: str) -> int:
    sid: int = conn.execute(
        text(
            "INSERT INTO subscribers (email, status, created_at, status_changed_at, "
            "keywords, categories, include_summaries, token_nonce) VALUES "
            "(:e, :s, :t, :t, '[\"k\"]', '[]', true, 'n') RETURNING id"
        ),
        {"e": email, "s": status, "t": NOW},
    ).scalar_one()
    conn.execute(  # type: ignore[attr-defined]
        text("INSERT INTO consents (subscriber_id, action, at) VALUES (:i, 'signup', :t)"),
        {"i": sid, "t": NOW},
    )
    return sid


def test_migration_merges_mailboxes_keeps_data_and_never_reuses_ids(old_engine: Engine) -> None:
    with old_engine.begin() as conn:
        ids = [
            _add(conn, "Case.Person@Example.ORG", "pending"),
            _add(conn, "case.person@example.org", "active"),
            _add(conn, "CASE.PERSON@EXAMPLE.ORG", "unsubscribed"),
            _add(conn, "test@bücher.de", "active"),
            _add(conn, "alone@example.org", "active"),
            _add(conn, "highest@example.org", "pending"),
        ]
        conn.execute(
            text("INSERT INTO suppressions (email_hash, reason, created_at) VALUES (:h, 'x', :t)"),
            {"h": email_hash("test@bücher.de"), "t": NOW},
        )
    upgrade(old_engine)
    with old_engine.begin() as conn:
        rows = conn.execute(
            text("SELECT id, email, email_key, status, link_key FROM subscribers ORDER BY id")
        ).all()
        consents = dict(
            conn.execute(
                text("SELECT subscriber_id, count(*) FROM consents GROUP BY subscriber_id")
            ).all()
        )
        supp = conn.execute(text("SELECT email_hash FROM suppressions")).scalars().all()
    by_id = {r.id: r for r in rows}
    # One row for the three spellings: the unsubscribed one (the owner's last word) survives,
    # with every consent record of the three.
    merged, idn, alone, highest = ids[2:]
    assert sorted(by_id) == [merged, idn, alone, highest]
    assert by_id[merged].status == "unsubscribed"
    assert by_id[merged].email == "CASE.PERSON@example.org"
    assert by_id[merged].email_key == "case.person@example.org"
    assert consents == {merged: 3, idn: 1, alone: 1, highest: 1}
    assert by_id[idn].email == "test@xn--bcher-kva.de"
    assert supp == [email_hash("test@xn--bcher-kva.de")]  # the suppression follows the row
    assert len({r.link_key for r in rows}) == 4 and all(len(r.link_key) >= 32 for r in rows)
    # The highest id, erased, is not given out again.
    with old_engine.begin() as conn:
        conn.execute(text("DELETE FROM subscribers WHERE id = :i"), {"i": highest})
        conn.execute(
            text(
                "INSERT INTO subscribers (email, email_key, link_key, status, created_at, "
                "status_changed_at, keywords, categories, include_summaries, token_nonce) "
                "VALUES ('next@example.org', 'next@example.org', 'k', 'pending', :t, :t, "
                "'[]', '[]', true, 'n')"
            ),
            {"t": NOW},
        )
        new_id = conn.execute(
            text("SELECT id FROM subscribers WHERE email = 'next@example.org'")
        ).scalar()
    assert new_id is not None and new_id > highest


def test_downgrade_keeps_consent_records(old_engine: Engine) -> None:
    with old_engine.begin() as conn:
        sid = _add(conn, "keep@example.org", "active")
    upgrade(old_engine)
    from alembic.config import Config

    from alembic import command
    from newsletter.db import alembic_dir

    cfg = Config()
    cfg.set_main_option("script_location", str(alembic_dir()))
    with old_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0008")
    with old_engine.begin() as conn:
        consents = conn.execute(
            text("SELECT count(*) FROM consents WHERE subscriber_id = :i"), {"i": sid}
        ).scalar()
    assert consents == 1
