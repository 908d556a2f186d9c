"""``newsletter preview``: one subscriber's digest written to an HTML file (and its text beside)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.app import ConfigOption, console, date_option, err_console, get_settings
from newsletter.db import make_engine, session_scope, upgrade
from newsletter.email.preview import PreviewError, preview_email
from newsletter.email.render import TemplateError


def preview(
    email: Annotated[
        str, typer.Option("--email", metavar="ADDRESS", help="The subscriber's address")
    ],
    out: Annotated[
        Path,
        typer.Option("--out", metavar="FILE", help="HTML file to write (text part: .txt beside)"),
    ],
    date: Annotated[dt.date | None, date_option("Issue date (default: the latest)")] = None,
    config: ConfigOption = None,
) -> None:
    """Render one subscriber's digest e-mail from the database, as they would receive it."""
    day = date
    settings = get_settings(config)
    if settings.secret_key is None:
        err_console.print(
            "[red]error:[/red] NEWSLETTER_SECRET_KEY is not set; the preview's unsubscribe and "
            "preferences links are signed with it"
        )
        raise typer.Exit(2)
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        with session_scope(engine) as session:
            result = preview_email(session, settings, email, day)
    except PreviewError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    except TemplateError as exc:
        err_console.print(f"[red]template error:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(result.rendered.html, encoding="utf-8")
    text_path = out.with_suffix(".txt")
    text_path.write_text(result.rendered.text, encoding="utf-8")
    console.print(f"subject: {result.rendered.subject}", highlight=False, soft_wrap=True)
    if not result.matched:
        console.print(
            "[yellow]nothing matched this subscriber: they get no e-mail that day "
            "(this is the note sent when delivery.send_empty_note is on)[/yellow]",
            highlight=False,
        )
    if result.status != "active":
        console.print(
            f"[yellow]this subscriber is {result.status}: they are not mailed[/yellow]",
            highlight=False,
        )
    console.print(f"HTML: {out}\ntext: {text_path}", highlight=False, soft_wrap=True)
