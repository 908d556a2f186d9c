"""``newsletter serve``: the web app under uvicorn, with the scheduler beside it.

The scheduler arrives with a later part; ``start_background`` is its seam: it is called once
the database is migrated (unless ``--no-scheduler`` or ``schedule.enabled`` is false) and may
return a function that stops what it started.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import Engine

from newsletter.config import ConfigError, Settings

log = logging.getLogger(__name__)


def start_background(settings: Settings, engine: Engine) -> Callable[[], None] | None:
    """Start the daily scheduler. Not implemented yet: logs once and does nothing."""
    log.info("scheduler: not available in this version; serving the web app only")
    return None


def serve(settings: Settings, *, host: str, port: int, scheduler: bool = True) -> None:
    """Run the web app (and the scheduler) until SIGINT/SIGTERM. ConfigError on a bad key."""
    import uvicorn

    from newsletter.web.app import create_app

    enabled = scheduler and settings.schedule.enabled
    app = create_app(settings, background=start_background if enabled else None)
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
    host: Annotated[str, typer.Option("--host", help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port")] = 8000,
    no_scheduler: Annotated[
        bool, typer.Option("--no-scheduler", help="Serve the web app only, no daily run")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Path of config.json (default: $NEWSLETTER_CONFIG or ./config.json)"
        ),
    ] = None,
) -> None:
    """Serve the web pages (signup, preferences, unsubscribe...) and run the daily schedule."""
    from newsletter.cli import console, get_settings

    settings = get_settings(config)
    try:
        serve(settings, host=host, port=port, scheduler=not no_scheduler)
    except ConfigError as exc:
        console.print(str(exc), style="red", markup=False, highlight=False)
        raise typer.Exit(2) from exc
