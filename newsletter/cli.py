"""The ``newsletter`` command: thin wrappers that call the library and map errors to exit codes.

Exit codes: 0 success (including "no announcement today"), 1 failure,
2 usage or configuration error.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from newsletter.config import ConfigError, Settings, load_settings

app = typer.Typer(
    help="Self-hosted arXiv newsletter: fetch, rank, summarise, archive and mail the day's papers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="Path of config.json (default: $NEWSLETTER_CONFIG or ./config.json)"
    ),
]


def get_settings(config: Path | None) -> Settings:
    """Load settings once for a command; configuration errors end the program with code 2."""
    notices: list[str] = []
    try:
        settings = load_settings(config, notices=notices)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    setup_logging(settings.log_level)
    for notice in notices:
        console.print(f"[yellow]{notice}[/yellow]", highlight=False, soft_wrap=True)
    return settings


# Loggers that write secrets or personal data at DEBUG: python_http_client (under the sendgrid
# package) logs the API key in its request headers and every payload. Never below WARNING.
UNSAFE_LOGGERS = ("python_http_client",)


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for name in UNSAFE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def parse_date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date in the form YYYY-MM-DD") from exc


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply database migrations (also done automatically on start)."""
    from newsletter.db import make_engine, upgrade

    settings = get_settings(config)
    upgrade(make_engine(settings.database_url))
    console.print("database is up to date")


_registered = False


def register_commands() -> typer.Typer:
    """Import the modules that add their commands to ``app`` (they import ``app`` from here,
    so they are imported late); idempotent."""
    global _registered
    if not _registered:
        _registered = True
        import newsletter.cli_delivery  # noqa: F401  (send)
        import newsletter.cli_email  # noqa: F401  (preview)
        import newsletter.cli_pipeline  # noqa: F401  (run, demo)
        from newsletter.serve import serve_command
        from subscribers.cli import subscribers_app

        app.command("serve")(serve_command)
        app.add_typer(subscribers_app, name="subscribers")
    return app


def main() -> None:
    register_commands()()


if __name__ == "__main__":
    main()
