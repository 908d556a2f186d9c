"""A throw-away database for a benchmark: a new PostgreSQL database (dropped after), or SQLite."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from newsletter.db import make_engine


@contextmanager
def scratch_database(pg_admin_url: str | None) -> Iterator[str]:
    """The URL of an empty database: a fresh one on the PostgreSQL server of ``pg_admin_url``
    (e.g. ``postgresql://127.0.0.1/postgres``), else a SQLite file in a temporary folder."""
    if pg_admin_url is None:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    name = f"nl_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
