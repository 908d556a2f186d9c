"""``newsletter send``: finish sending a built issue (resumable; safe to run again after a crash).

It is ``runner.finish_day`` without the build: under the day's lock (refused, exit 1, while
another process holds it), with the issue's stored summaries, sending what is still queued.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
from typing import Annotated

import typer

from newsletter.cli.app import ConfigOption, date_option, err_console, get_settings


def send(
    date: Annotated[dt.date | None, date_option("Issue date (default: today, UTC)")] = None,
    config: ConfigOption = None,
) -> None:
    """Send a built issue to every active subscriber not yet sent to (SIGTERM stops gracefully)."""
    from newsletter.cli.pipeline import report
    from newsletter.config import ConfigError
    from newsletter.delivery.preflight import check_ready
    from newsletter.runtime.runner import finish_day

    settings = get_settings(config)
    day = date or dt.datetime.now(dt.UTC).date()
    try:
        check_ready(settings)
    except ConfigError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _sig, _frame: stop.set())
    result = finish_day(
        settings, date=day, trigger="send", build=False, console=err_console, stop=stop
    )
    raise typer.Exit(report(result, debug=False))
