"""The models and the migrations agree: what `alembic revision --autogenerate` compares finds
nothing to do after `upgrade`, on SQLite and PostgreSQL (and leaves APScheduler's table alone)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from newsletter.db import FOREIGN_TABLES, import_all_models, include_object


def _diff(engine: Engine, **opts: object) -> list[object]:
    import_all_models()
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, **opts})
        return list(compare_metadata(context, SQLModel.metadata))


def test_autogenerate_finds_no_difference_after_upgrade(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= FOREIGN_TABLES
    assert _diff(engine, include_object=include_object) == []


def test_without_the_hook_autogenerate_would_drop_the_scheduler_table(engine: Engine) -> None:
    removed = [d for d in _diff(engine) if isinstance(d, tuple) and d[0] == "remove_table"]
    assert [d[1].name for d in removed] == ["apscheduler_jobs"]
