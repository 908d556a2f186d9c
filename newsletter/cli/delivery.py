"""``newsletter send``: finish sending a built issue (resumable; safe to run again after a crash).

It is ``runner.finish_day`` without the build: under the day's lock (refused, exit 1, while
another process holds it), with the issue's stored summaries, sending what is still queued.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from newsletter.cli.app import (
    ConfigOption,
    date_option,
    err_console,
    get_settings,
    ready_to_send,
    stop_on_sigterm,
)


def send(
    date: Annotated[dt.date | None, date_option("Issue date (default: today, UTC)")] = None,
    config: ConfigOption = None,
) -> None:
    """Send a built issue to every active subscriber not yet sent to (SIGTERM stops gracefully)."""
    from newsletter.cli.pipeline import report
    from newsletter.runtime.runner import finish_day

    settings = get_settings(config)
    day = date or dt.datetime.now(dt.UTC).date()
    ready_to_send(settings)
    stop = stop_on_sigterm()
    result = finish_day(
        settings, date=day, trigger="send", build=False, console=err_console, stop=stop
    )
    raise typer.Exit(report(result, debug=False))
