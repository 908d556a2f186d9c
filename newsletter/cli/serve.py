"""``newsletter serve``: the web app under uvicorn, with the scheduler beside it.

``newsletter.runtime.service.background`` starts the daily schedule once the database is migrated
(unless ``--no-scheduler`` or ``schedule.enabled`` is false) and stops it gracefully with the
app: on SIGTERM uvicorn shuts the app down, the scheduler stops, and a running digest finishes
its in-flight batch and records where it stopped.
"""

from __future__ import annotations

import logging
import signal
from typing import Annotated

import typer

from newsletter.cli.app import ConfigOption, err_console, get_settings
from newsletter.config import ConfigError, Settings

log = logging.getLogger(__name__)


def serve(settings: Settings, *, host: str, port: int, scheduler: bool = True) -> None:
    """Run the web app (and the scheduler) until SIGINT/SIGTERM. ConfigError on a bad key."""
    import uvicorn

    from newsletter.email.sender_checks import warn_about_sender
    from newsletter.runtime.service import background
    from newsletter.runtime.startup_report import log_startup
    from newsletter.web.app import create_app

    warn_about_sender(settings)
    enabled = scheduler and settings.schedule.enabled
    log_startup(settings, scheduler=enabled)
    app = create_app(settings, background=background if enabled else None)
    # uvicorn re-raises the signal it caught once it has shut down; a no-op handler makes a
    # SIGTERM'd service exit 0 after its graceful stop instead of dying by the signal.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: None)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        server_header=False,
        timeout_graceful_shutdown=30,
    )


def serve_command(
    host: Annotated[
        str, typer.Option("--host", metavar="ADDRESS", help="Address to listen on")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", metavar="PORT", min=1, max=65535, help="Port to listen on")
    ] = 8000,
    no_scheduler: Annotated[
        bool, typer.Option("--no-scheduler", help="Serve the web app only, no daily run")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Serve the web pages (signup, preferences, unsubscribe...) and run the daily schedule."""
    settings = get_settings(config)
    try:
        serve(settings, host=host, port=port, scheduler=not no_scheduler)
    except ConfigError as exc:
        err_console.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from exc
