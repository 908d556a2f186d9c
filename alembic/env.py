"""Alembic environment: runs on the connection handed over by ``newsletter.db.upgrade``."""

from __future__ import annotations

from sqlalchemy import engine_from_config, pool
from sqlmodel import SQLModel

from alembic import context
from newsletter.db import import_all_models, include_object, normalise_url

import_all_models()
target_metadata = SQLModel.metadata
config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        import os

        url = os.environ.get("NEWSLETTER_DATABASE_URL", "sqlite:///./data/newsletter.db")
    config.set_main_option("sqlalchemy.url", normalise_url(url))
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
