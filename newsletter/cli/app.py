"""What every ``newsletter`` command shares: the app, the two consoles, the common options, the
date type, and loading the settings once.

Command modules import from here and ``newsletter.cli.main`` registers them all; this module imports
none of them, so there is no import cycle. Output for people (results, what was written where) goes
to stdout through ``console``; errors, warnings and log lines go to stderr (``err_console`` and
``logging``), so ``newsletter demo > log`` keeps the results and ``subscribers export`` stays CSV.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import re
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from newsletter import __version__
from newsletter.config import ConfigError, Settings, describe_source, load_settings

app = typer.Typer(
    help="Self-hosted arXiv newsletter: fetch, rank, summarise, archive and mail the day's papers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        help="Path of config.json (default: $NEWSLETTER_CONFIG or ./config.json)",
    ),
]
DebugOption = Annotated[
    bool, typer.Option("--debug", help="Show tracebacks and debug log lines (libraries' too)")
]

_DATE_FORM = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def parse_date(value: str | dt.date) -> dt.date:
    """A ``YYYY-MM-DD`` date; the error says what is wrong (the form, the month, or the day)."""
    if isinstance(value, dt.date):
        return value
    match = _DATE_FORM.fullmatch(value.strip())
    if match is None:
        raise typer.BadParameter(
            f"{value!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-04-22"
        )
    year, month, day = (int(g) for g in match.groups())
    if not 1 <= month <= 12:
        raise typer.BadParameter(f"{value!r}: there is no month {month} (months are 01 to 12)")
    days = calendar.monthrange(year, month)[1] if year >= 1 else 31
    if not 1 <= day <= days:
        raise typer.BadParameter(
            f"{value!r}: {calendar.month_name[month]} {year} has no day {day} (it has {days} days)"
        )
    try:
        return dt.date(year, month, day)
    except ValueError as exc:  # year 0
        raise typer.BadParameter(f"{value!r} is not a date: {exc}") from exc


def date_option(help: str) -> Any:
    """The one ``--date`` option type of every command: ``YYYY-MM-DD``, checked on parsing."""
    return typer.Option("--date", metavar="YYYY-MM-DD", parser=parse_date, help=help)


def _show_version(value: bool) -> None:
    if value:
        console.print(f"newsletter {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit"
        ),
    ] = False,
) -> None:
    """Self-hosted arXiv newsletter: fetch, rank, summarise, archive and mail the day's papers."""


def get_settings(config: Path | None, *, debug: bool = False) -> Settings:
    """Load settings once for a command and say which file they came from (on stderr);
    configuration errors end the program with code 2."""
    notices: list[str] = []
    try:
        settings = load_settings(config, notices=notices)
    except ConfigError as exc:
        err_console.print(f"[red]{exc}[/red]", markup=True)
        raise typer.Exit(2) from exc
    setup_logging(settings.log_level, debug=debug)
    err_console.print(describe_source(settings), style="dim", markup=False)
    for notice in notices:
        err_console.print(f"[yellow]{notice}[/yellow]")
    return settings


# Libraries whose INFO lines are chatter for an operator (Alembic's nine lines a command, every
# HTTP request): shown only with --debug.
CHATTY_LIBRARIES = ("alembic", "httpx", "httpcore", "openai", "arxiv")


def ready_to_send(settings: Settings) -> None:
    """Refuse, with exit code 2, a sending run that configuration alone would make fail."""
    from newsletter.delivery.preflight import check_ready

    try:
        check_ready(settings)
    except ConfigError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


def stop_on_sigterm() -> threading.Event:
    """An event SIGTERM sets: a run stops between stages and send waves, the next one resumes."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _sig, _frame: stop.set())
    return stop


def setup_logging(level: str, *, debug: bool = False) -> None:
    """Our log lines at ``level`` on stderr; libraries' chatter only with ``--debug``."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger().setLevel(logging.DEBUG if debug else getattr(logging, level))
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET if debug else logging.WARNING)
