"""Database engine, sessions and migrations; SQLite by default, PostgreSQL when configured."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

PACKAGE_DIR = Path(__file__).resolve().parent


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3, the driver we install."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def display_url(database_url: str) -> str:
    """The URL as it may be shown in messages and logs: never with its password."""
    try:
        return make_url(normalise_url(database_url)).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    """An engine with the pragmas SQLite needs to be a good neighbour to several threads."""
    url = make_url(normalise_url(database_url))
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session committed on success and rolled back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_dir() -> Path:
    """The migrations: ``alembic/`` beside the package in a checkout, bundled in a wheel."""
    for candidate in (PACKAGE_DIR.parent / "alembic", PACKAGE_DIR / "_alembic"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError("alembic migrations directory not found")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` on the engine's database."""
    from alembic.config import Config

    from alembic import command

    cfg = Config()
    cfg.set_main_option("script_location", str(alembic_dir()))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


# Tables our migrations create for a dependency, which no model describes: APScheduler's job
# store (``newsletter.runtime.scheduler``). Autogenerate must neither drop nor compare them.
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic's ``include_object`` hook: leave the tables the models do not own alone."""
    table = getattr(obj, "table", None)
    owner = name if type_ == "table" else getattr(table, "name", None)
    return owner not in FOREIGN_TABLES


def import_all_models() -> None:
    """Register every table on SQLModel.metadata (Alembic's autogenerate needs them all)."""
    import newsletter.delivery.models  # noqa: F401
    import newsletter.models  # noqa: F401
    import newsletter.relevance.models  # noqa: F401
    import newsletter.web.admin.models  # noqa: F401
    import subscribers.models  # noqa: F401
