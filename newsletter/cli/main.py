"""The ``newsletter`` command: every command registered in this one place.

The shared objects (app, consoles, options, settings loading) live in ``newsletter.cli.app``; the
command modules import only that, and this module imports them all, so nothing imports back.

Exit codes: 0 success (including "no announcement today"), 1 failure,
2 usage or configuration error.
"""

from __future__ import annotations

import typer

from newsletter.cli import db as cli_db
from newsletter.cli import delivery as cli_delivery
from newsletter.cli import email as cli_email
from newsletter.cli import pipeline as cli_pipeline
from newsletter.cli import serve
from newsletter.cli.app import app
from subscribers.cli import subscribers_app

app.command("run")(cli_pipeline.run)
app.command("demo")(cli_pipeline.demo)
app.command("send")(cli_delivery.send)
app.command("preview")(cli_email.preview)
app.command("serve")(serve.serve_command)
app.add_typer(cli_db.db_app, name="db")
app.add_typer(subscribers_app, name="subscribers")


def register_commands() -> typer.Typer:
    """The app with every command on it (for tests and the docs check)."""
    return app


def main() -> None:
    app()


if __name__ == "__main__":
    main()
