"""``newsletter send``: deliver a built issue (resumable; safe to run again after a crash)."""

from __future__ import annotations

import datetime as dt
import signal
import threading
from typing import Annotated, Any

import typer

from newsletter.cli_app import ConfigOption, console, date_option, err_console, get_settings


def send(
    date: Annotated[dt.date | None, date_option("Issue date (default: today, UTC)")] = None,
    config: ConfigOption = None,
) -> None:
    """Send a built issue to every active subscriber not yet sent to (SIGTERM stops gracefully)."""
    from newsletter.config import ConfigError
    from newsletter.db import make_engine
    from newsletter.delivery.send import SendError, send_issue

    settings = get_settings(config)
    day = date or dt.datetime.now(dt.UTC).date()
    stop = threading.Event()

    def _on_term(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_term)
    engine = make_engine(settings.database_url)
    try:
        report = send_issue(engine, settings, day, stop=stop)
    except ConfigError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    except SendError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    console.print(
        f"{day}: sent {report.sent}, failed {report.failed}, skipped {report.skipped}, "
        f"unknown {report.unknown}, deferred {report.deferred}; {report.requests} requests, "
        f"{report.distinct_bodies} distinct bodies"
        + (" (stopped early: run again to finish)" if report.stopped else "")
    )
    if report.in_flight:
        err_console.print(
            f"[yellow]{len(report.in_flight)} deliveries were in flight when a previous run "
            f"stopped; policy {settings.delivery.in_flight_policy!r} applied[/yellow]"
        )
    if report.failed or not report.complete:
        raise typer.Exit(1)
