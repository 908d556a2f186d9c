"""``newsletter send``: deliver a built issue (resumable; safe to run again after a crash)."""

from __future__ import annotations

import datetime as dt
import signal
import threading
from typing import Annotated, Any

import typer

from newsletter.cli import ConfigOption, app, console, get_settings, parse_date


@app.command("send")
def send(
    date: Annotated[
        str | None, typer.Option("--date", help="Issue date YYYY-MM-DD (default: today, UTC)")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Send a built issue to every active subscriber not yet sent to (SIGTERM stops gracefully)."""
    from newsletter.config import ConfigError
    from newsletter.db import make_engine
    from newsletter.delivery.send import SendError, send_issue

    settings = get_settings(config)
    day = parse_date(date) or dt.datetime.now(dt.UTC).date()
    stop = threading.Event()

    def _on_term(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_term)
    engine = make_engine(settings.database_url)
    try:
        report = send_issue(engine, settings, day, stop=stop)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from exc
    except SendError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
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
        console.print(
            f"[yellow]{len(report.in_flight)} deliveries were in flight when a previous run "
            f"stopped; policy {settings.delivery.in_flight_policy!r} applied[/yellow]"
        )
    if report.failed or not report.complete:
        raise typer.Exit(1)
