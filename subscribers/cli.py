"""``newsletter subscribers ...``: the admin's view of the store (thin wrappers on the service)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.engine import Engine

from newsletter.cli.app import ConfigOption, err_console, get_settings
from newsletter.config import Settings
from newsletter.db import make_engine, session_scope, upgrade
from subscribers import csvio, service
from subscribers.errors import SubscriberError
from subscribers.models import STATUSES

subscribers_app = typer.Typer(help="Manage subscribers.", no_args_is_help=True)
err = err_console


def _split(values: list[str] | None) -> list[str]:
    """``--keywords a,b --keywords c`` and ``--keywords "a;b"`` all work."""
    out: list[str] = []
    for value in values or []:
        out.extend(p.strip() for p in value.replace(";", ",").split(",") if p.strip())
    return out


def _engine(config: Path | None) -> tuple[Settings, Engine]:
    settings = get_settings(config)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    return settings, engine


def _fail(exc: SubscriberError) -> typer.Exit:
    err.print(f"error: {exc.message}", style="red", markup=False, highlight=False)
    return typer.Exit(1 if exc.status_code >= 409 else 2)


@subscribers_app.command("add")
def add(
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="E-mail address")],
    keywords: Annotated[
        list[str] | None,
        typer.Option("--keywords", metavar="TERMS", help="Comma-separated (may be repeated)"),
    ] = None,
    categories: Annotated[
        list[str] | None,
        typer.Option(
            "--categories", metavar="CATEGORIES", help="Comma-separated (may be repeated)"
        ),
    ] = None,
    active: Annotated[
        bool, typer.Option("--active", help="Active at once (no confirmation)")
    ] = False,
    cadence: Annotated[
        str | None, typer.Option("--cadence", help="daily (default) or weekly")
    ] = None,
    language: Annotated[
        str | None,
        typer.Option("--language", help="Summary language, one of ai_summary.languages"),
    ] = None,
    interests: Annotated[
        str | None, typer.Option("--interests", help="What you read, in a sentence or two")
    ] = None,
    papers: Annotated[
        str | None, typer.Option("--papers", help='Example papers: "ID;ID" (ids or arXiv URLs)')
    ] = None,
    authors: Annotated[
        str | None, typer.Option("--authors", help='Favourite authors: "Name;Name"')
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Add a subscriber (pending unless --active; no e-mail is sent)."""
    from newsletter.relevance import profiles

    settings, engine = _engine(config)
    try:
        with session_scope(engine) as session:
            if interests is not None:
                profiles.check_interests(interests, explicit=True)
            added = service.add(
                session,
                settings=settings,
                email=email,
                keywords=_split(keywords),
                categories=_split(categories),
                active=active,
                cadence=cadence,
                language=language,
            )
            sub = added.subscriber
            if added.created and sub.id is not None and (interests or papers or authors):
                profiles.set_profile(
                    session,
                    settings=settings,
                    subscriber_id=sub.id,
                    interests=interests,
                    papers=papers,
                    authors=authors,
                    fetch=profiles.arxiv_fetch(settings),
                )
    except SubscriberError as exc:
        raise _fail(exc) from exc
    if added.created:
        typer.echo(f"added {sub.email} ({sub.status})")
    else:
        typer.echo(f"{sub.email} already exists ({sub.status}); nothing changed")


@subscribers_app.command("list")
def list_(
    status: Annotated[
        str | None, typer.Option("--status", metavar="STATUS", help=", ".join(STATUSES))
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    config: ConfigOption = None,
) -> None:
    """List subscribers (all, or those with --status)."""
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(
            f"{status!r} is not one of {', '.join(STATUSES)}", param_hint="--status"
        )
    from newsletter.relevance.profiles import profiles_of

    _, engine = _engine(config)
    with session_scope(engine) as session:
        subs = service.list_subscribers(session, status=status)
        profiles = profiles_of(session, [s.id for s in subs if s.id is not None])
        rows: list[dict[str, Any]] = [
            {
                "email": s.email,
                "status": s.status,
                "keywords": list(s.keywords),
                "categories": list(s.categories),
                "max_papers": s.max_papers,
                "include_summaries": s.include_summaries,
                "cadence": s.cadence,
                "language": s.language,
                "created_at": s.created_at.isoformat(),
                "confirmed_at": s.confirmed_at.isoformat() if s.confirmed_at else None,
                **_profile_fields(profiles.get(s.id or 0)),
            }
            for s in subs
        ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for r in rows:
        kw = ", ".join(r["keywords"]) or "-"
        cats = ", ".join(r["categories"]) or "all"
        typer.echo(f"{r['email']}\t{r['status']}\tkeywords: {kw}\tcategories: {cats}")
    err.print(f"{len(rows)} subscriber(s)", highlight=False)


def _profile_fields(profile: Any) -> dict[str, Any]:
    """The relevance profile's part of a listed subscriber (empty values without one)."""
    return {
        "interests": profile.interests if profile else "",
        "papers": list(profile.papers) if profile else [],
        "authors": list(profile.authors) if profile else [],
    }


@subscribers_app.command("import")
def import_(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="CSV with header email,keywords,categories,status"
            "[,cadence,language,interests,papers,authors]",
        ),
    ],
    config: ConfigOption = None,
) -> None:
    """Import subscribers from CSV; bad rows are reported by line and the rest imported."""
    from newsletter.relevance.profiles import arxiv_fetch

    settings, engine = _engine(config)
    try:
        with file.open(encoding="utf-8-sig", newline="") as fh, session_scope(engine) as session:
            report = csvio.import_csv(
                session, settings=settings, source=fh, fetch=arxiv_fetch(settings)
            )
    except OSError as exc:
        err.print(f"error: cannot read {file}: {exc.strerror}", style="red", markup=False)
        raise typer.Exit(2) from exc
    except UnicodeDecodeError as exc:
        err.print(f"error: {file} is not UTF-8 text ({exc.reason})", style="red", markup=False)
        raise typer.Exit(2) from exc
    except SubscriberError as exc:
        raise _fail(exc) from exc
    for line, message in report.errors:
        err.print(f"line {line}: {message}", markup=False, highlight=False)
    typer.echo(
        f"imported {report.imported}, already present {report.existing}, "
        f"suppressed {report.suppressed}, bad rows {len(report.errors)}"
    )
    if report.errors:
        raise typer.Exit(1)


@subscribers_app.command("export")
def export(
    out: Annotated[
        Path | None, typer.Option("--out", metavar="FILE", help="File to write (default: stdout)")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", metavar="STATUS", help=", ".join(STATUSES))
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Export subscribers as CSV (the import format)."""
    _, engine = _engine(config)
    with session_scope(engine) as session:
        if out is None:
            count = csvio.export_csv(session, out=sys.stdout, status=status)
        else:
            with out.open("w", encoding="utf-8", newline="") as fh:
                count = csvio.export_csv(session, out=fh, status=status)
    err.print(f"exported {count} subscriber(s)", highlight=False)


@subscribers_app.command("remove")
def remove(
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="E-mail address")],
    suppress: Annotated[
        bool, typer.Option("--suppress", help="Also block the address from signing up again")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Delete a subscriber and their consent records."""
    _, engine = _engine(config)
    try:
        with session_scope(engine) as session:
            removed = service.remove(session, email=email, suppress_address=suppress)
    except SubscriberError as exc:
        raise _fail(exc) from exc
    if not removed:
        err.print(f"no subscriber {email}", markup=False)
        raise typer.Exit(1)
    typer.echo(f"removed {email}")
