"""``newsletter db ...``: database maintenance."""

from __future__ import annotations

import typer

from newsletter.cli.app import ConfigOption, console, get_settings

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply database migrations (also done automatically on start)."""
    from newsletter.db import make_engine, upgrade

    settings = get_settings(config)
    upgrade(make_engine(settings.database_url))
    console.print("database is up to date")
