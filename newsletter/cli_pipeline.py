"""``newsletter run`` and ``newsletter demo``: thin wrappers that call ``run_pipeline``.

Exit codes: 0 success (also "no announcement"), 1 failure, 2 usage or configuration error.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli import ConfigOption, app, console, get_settings, parse_date
from newsletter.config import Settings
from newsletter.pipeline import RunResult, run_pipeline

DebugOption = Annotated[
    bool, typer.Option("--debug", help="Show tracebacks and debug log lines on failure")
]


def _is_usage_error(exc: BaseException | None) -> bool:
    """A --date arXiv cannot serve (future, beyond days_back) is the caller's to fix: exit 2."""
    if exc is None:
        return False
    try:
        from newsletter.arxiv_source import AnnouncementDateError
    except ImportError:
        return False
    return isinstance(exc, AnnouncementDateError)


def report(result: RunResult, *, debug: bool) -> int:
    """Print how the run ended and where its outputs are; return the exit code."""
    if result.outcome == "ok":
        console.print(f"[green]done:[/green] {result.message}", highlight=False, soft_wrap=True)
        for name, path in result.outputs.items():
            console.print(f"  {name.replace('_', ' ')}: {path}", highlight=False, soft_wrap=True)
        return 0
    if result.outcome == "no-announcement":
        console.print(f"[yellow]{result.message}[/yellow]", highlight=False, soft_wrap=True)
        return 0
    console.print(f"[red]error:[/red] {result.message}", highlight=False, soft_wrap=True)
    if debug and result.error is not None:
        traceback.print_exception(result.error)
    elif result.error is not None:
        console.print("(run again with --debug for the traceback)", highlight=False, soft_wrap=True)
    return 2 if _is_usage_error(result.error) else 1


def _debug_logging(debug: bool) -> None:
    if debug:
        logging.getLogger().setLevel(logging.DEBUG)


@app.command("run")
def run(
    date: Annotated[
        str | None,
        typer.Option("--date", metavar="YYYY-MM-DD", help="Build (or rebuild) this day's issue"),
    ] = None,
    no_send: Annotated[
        bool, typer.Option("--no-send", help="Build the issue, send nothing")
    ] = False,
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Fetch the day's announcement, rank it, store the issue, write the archive and send."""
    day = parse_date(date)
    settings = get_settings(config)
    _debug_logging(debug)
    result = run_pipeline(settings, date=day, send=not no_send, trigger="cli", console=console)
    raise typer.Exit(report(result, debug=debug))


def _print_demo_outputs(settings: Settings, out: Path, result: RunResult) -> None:
    console.print(
        f"\nEverything the demo produced is under {out.resolve()}:", highlight=False, soft_wrap=True
    )
    console.print(f"  database:       {settings.database_url}", highlight=False, soft_wrap=True)
    console.print(f"  archive:        {settings.archive_dir}", highlight=False, soft_wrap=True)
    if "issue_markdown" in result.outputs:
        console.print(
            f"  today's issue:  {result.outputs['issue_markdown']}", highlight=False, soft_wrap=True
        )
    console.print(
        f"  e-mail outbox:  {settings.delivery.outbox_dir}", highlight=False, soft_wrap=True
    )
    if not settings.keywords:
        console.print(
            "[yellow]no keywords configured: the digest is empty; see config.json[/yellow]"
        )


@app.command("demo")
def demo(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for the demo's database, archive and outbox")
    ] = Path("demo-output"),
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Run the whole pipeline offline on a recorded real arXiv day."""
    from newsletter.arxiv_replay import demo_server
    from newsletter.demo import demo_settings

    settings = get_settings(config)
    _debug_logging(debug)
    with demo_server() as server:
        local = demo_settings(settings, out, server)
        console.print(f"replaying arXiv's announcement of {server.date} from {server.rss_url}")
        result = run_pipeline(
            local, date=server.date, trigger="demo", console=console, today=server.date
        )
    code = report(result, debug=debug)
    if code == 0:
        _print_demo_outputs(local, out, result)
    raise typer.Exit(code)
