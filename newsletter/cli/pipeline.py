"""``newsletter run`` and ``newsletter demo``: thin wrappers that call ``runner.finish_day``.

Exit codes (``RunResult.exit_code``): 0 success (also "no announcement" and "already done"),
1 failure, stopped, or another process holds the day; 2 usage or configuration error.
"""

from __future__ import annotations

import datetime as dt
import traceback
from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.app import (
    ConfigOption,
    DebugOption,
    console,
    date_option,
    err_console,
    get_settings,
    parse_date,
    ready_to_send,
    stop_on_sigterm,
)
from newsletter.config import Settings
from newsletter.db import display_url
from newsletter.pipeline import RunResult
from newsletter.runtime.runner import finish_day


def report(result: RunResult, *, debug: bool) -> int:
    """Print how the run ended and where its outputs are; return the exit code."""
    if result.outcome == "ok":
        console.print(f"[green]done:[/green] {result.message}", highlight=False, soft_wrap=True)
        for name, path in result.outputs.items():
            console.print(f"  {name.replace('_', ' ')}: {path}", highlight=False, soft_wrap=True)
    elif result.outcome in ("no-announcement", "already-done"):
        console.print(f"[yellow]{result.message}[/yellow]", highlight=False, soft_wrap=True)
    elif result.outcome == "stopped":
        err_console.print(f"[yellow]{result.message}[/yellow]")
    else:
        err_console.print(f"[red]error:[/red] {result.message}")
        if debug and result.error is not None:
            traceback.print_exception(result.error)
        elif result.error is not None:
            err_console.print("(run again with --debug for the traceback)")
    return result.exit_code


def run(
    date: Annotated[dt.date | None, date_option("Build (or rebuild) this day's issue")] = None,
    no_send: Annotated[
        bool, typer.Option("--no-send", help="Build the issue, send nothing")
    ] = False,
    config: ConfigOption = None,
    debug: DebugOption = False,
    today: Annotated[
        dt.date | None,
        typer.Option(
            "--today",
            metavar="YYYY-MM-DD",
            parser=parse_date,
            help="Take this as arXiv's current date (when replaying a recorded arXiv)",
        ),
    ] = None,
) -> None:
    """Fetch the day's announcement, rank it, store the issue, write the archive and send."""
    settings = get_settings(config, debug=debug)
    if not no_send:
        ready_to_send(settings)
    stop = stop_on_sigterm()
    result = finish_day(
        settings,
        date=date,
        send=not no_send,
        rebuild=date is not None,
        trigger="cli",
        console=err_console,
        today=today,
        stop=stop,
    )
    raise typer.Exit(report(result, debug=debug))


def _print_demo_outputs(settings: Settings, out: Path, result: RunResult) -> None:
    console.print(
        f"\nEverything the demo produced is under {out.resolve()}:", highlight=False, soft_wrap=True
    )
    console.print(
        f"  database:       {display_url(settings.database_url)}", highlight=False, soft_wrap=True
    )
    console.print(f"  archive:        {settings.archive_dir}", highlight=False, soft_wrap=True)
    if "issue_markdown" in result.outputs:
        console.print(
            f"  today's issue:  {result.outputs['issue_markdown']}", highlight=False, soft_wrap=True
        )
    emails = sorted(Path(settings.delivery.outbox_dir).glob("*.eml"))
    console.print(
        f"  e-mail outbox:  {settings.delivery.outbox_dir} ({len(emails)} .eml files)",
        highlight=False,
        soft_wrap=True,
    )
    if not settings.keywords:
        err_console.print(
            "[yellow]no keywords configured: the digest is empty; see config.json[/yellow]"
        )


def demo(
    out: Annotated[
        Path,
        typer.Option(
            "--out", metavar="DIR", help="Directory for the demo's database, archive and outbox"
        ),
    ] = Path("demo-output"),
    config: ConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Run the whole pipeline offline on a recorded real arXiv day, mailing sample readers."""
    from newsletter.arxiv.replay import demo_server
    from newsletter.db import make_engine
    from newsletter.demo import (
        SAMPLE_READERS,
        demo_settings,
        reset_outputs,
        seed_readers,
        write_previews,
    )

    settings = get_settings(config, debug=debug)
    out.mkdir(parents=True, exist_ok=True)
    reset_outputs(out)
    with demo_server() as server:
        local = demo_settings(settings, out, server)
        engine = make_engine(local.database_url)
        try:
            seed_readers(engine, local)
            console.print(
                f"replaying arXiv's announcement of {server.date} from {server.rss_url}; "
                f"{len(SAMPLE_READERS)} sample subscribers",
                highlight=False,
                soft_wrap=True,
            )
            result = finish_day(
                local,
                date=server.date,
                trigger="demo",
                console=err_console,
                today=server.date,
                engine=engine,
            )
            previews = write_previews(engine, local, out) if result.outcome == "ok" else []
        finally:
            engine.dispose()
    code = report(result, debug=debug)
    if code == 0:
        _print_demo_outputs(local, out, result)
        console.print("  e-mail previews (open in a browser):", highlight=False)
        for path in previews:
            console.print(f"    {path}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)
