"""The stages of a day's run: fetch, store, rank, build the issue, summarise, archive, send.

Stages are plain functions of a shared ``RunContext``, listed in ``DEFAULT_STAGES``; a stage ends
the run early with ``ctx.stop``. ``newsletter.runtime.runner.finish_day`` is the one lifecycle
that runs them (lock, record, skip the build stages of an issue already built).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from sqlalchemy.engine import Engine

from newsletter import archive, issue_store
from newsletter.arxiv.client import ArxivClient, ArxivError
from newsletter.arxiv.source import AnnouncementDateError, fetch_announcement
from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.domain import Announcement, IssueView, Summary
from newsletter.email.loading import Audience, audience_of, issue_summaries
from newsletter.ranking import Ranking, rank_papers

log = logging.getLogger("newsletter.pipeline")

# "locked": another process holds the day; "already-done": every delivery has an outcome.
Outcome = Literal["ok", "no-announcement", "already-done", "failed", "stopped", "locked"]
SUCCESS: frozenset[str] = frozenset({"ok", "no-announcement", "already-done"})


@dataclass
class RunContext:
    """What the stages share. Later stages read what earlier ones put here."""

    settings: Settings
    engine: Engine
    console: Console
    requested_date: dt.date | None
    send: bool = True
    trigger: str = "cli"
    client: ArxivClient | None = None
    today: dt.date | None = None  # arXiv's "today" (None: the real date); the demo pins it
    run_id: int | None = None
    announcement: Announcement | None = None
    fresh: issue_store.FreshPapers | None = None
    ranking: Ranking | None = None
    issue_id: int | None = None
    view: IssueView | None = None
    summaries: dict[str, Summary] = field(default_factory=dict)  # filled by a summarise stage
    # Per reader language other than the site's: its summaries over the site's (issue 14).
    translations: dict[str, dict[str, Summary]] = field(default_factory=dict)
    audience: Audience | None = None  # who gets what today, computed once per run
    stop_event: threading.Event = field(default_factory=threading.Event)  # graceful shutdown
    outputs: dict[str, Path] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    outcome: Outcome | None = None
    message: str = ""

    @property
    def date(self) -> dt.date | None:
        return self.announcement.date if self.announcement else self.requested_date

    def stop(self, outcome: Outcome, message: str) -> None:
        """End the run after the current stage (e.g. no announcement today)."""
        self.outcome = outcome
        self.message = message

    def progress(self) -> Progress:
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=self.console,
            transient=True,
        )


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    run: Callable[[RunContext], None]


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended; the CLI maps ``outcome`` to the exit code."""

    outcome: Outcome
    date: dt.date | None
    issue_id: int | None
    counts: dict[str, int]
    message: str
    outputs: dict[str, Path]
    run_id: int | None = None
    error: BaseException | None = None

    @property
    def exit_code(self) -> int:
        """The CLI's exit code: 0 done, 2 a ``--date`` arXiv cannot serve, 1 anything else."""
        if self.outcome in SUCCESS:
            return 0
        return 2 if isinstance(self.error, AnnouncementDateError) else 1


def fetch_stage(ctx: RunContext) -> None:
    """The announcement of the requested date, or of the feed's current date."""
    what = ctx.requested_date.isoformat() if ctx.requested_date else "today's feed"
    with ctx.console.status(f"Fetching the arXiv announcement ({what})..."):
        announcement = fetch_announcement(
            arxiv_client(ctx), ctx.settings, ctx.requested_date, today=ctx.today
        )
    check_announcement(ctx, announcement)


def arxiv_client(ctx: RunContext) -> ArxivClient:
    """The run's arXiv client (made on first use; a stop cuts its waits short)."""
    if ctx.client is None:
        ctx.client = ArxivClient(ctx.settings.arxiv, stop=ctx.stop_event)
    return ctx.client


def check_announcement(ctx: RunContext, announcement: Announcement | None) -> None:
    """Accept the fetched announcement or end the run: no announcement today."""
    if announcement is None:
        when = ctx.requested_date.isoformat() if ctx.requested_date else "today"
        ctx.stop(
            "no-announcement",
            f"no arXiv announcement for {when} (weekend or holiday?); nothing to do",
        )
        return
    ctx.announcement = announcement
    ctx.counts["papers_found"] = len(announcement.papers)
    log.info(
        "fetched %d papers announced on %s (source: %s, categories: %s)",
        len(announcement.papers),
        announcement.date,
        announcement.source,
        ", ".join(ctx.settings.categories),
    )


def store_stage(ctx: RunContext) -> None:
    """Save every paper; keep those no earlier issue carried (and wanted updates)."""
    ann = _need(ctx.announcement, "announcement")
    with session_scope(ctx.engine) as session, ctx.progress() as bar:
        task = bar.add_task("Storing papers", total=len(ann.papers))
        issue_store.save_papers(session, ann.papers, progress=lambda n: bar.advance(task, n))
        ctx.fresh = issue_store.fresh_papers(
            session, ann.date, ann.papers, ctx.settings.announce_types
        )
    ctx.counts["repeats_skipped"] = ctx.fresh.repeats
    ctx.counts["updates"] = len(ctx.fresh.updates)
    log.info(
        "stored %d papers; %d already went out in an earlier issue and are skipped; %d updates",
        len(ann.papers),
        ctx.fresh.repeats,
        len(ctx.fresh.updates),
    )


def rank_stage(ctx: RunContext) -> None:
    """Score the fresh papers against the site keywords (pure)."""
    fresh = _need(ctx.fresh, "fresh papers")
    s = ctx.settings
    ctx.ranking = rank_papers(fresh.papers, s.keywords, s)
    ctx.counts["pool"] = len(ctx.ranking.pool)
    ctx.counts["matched"] = ctx.ranking.matched
    ctx.counts["papers"] = len(ctx.ranking.digest)
    log.info(
        "ranked (%s mode): %d candidates after the exclude list, %d match keywords, "
        "%d in the digest (max_papers=%d, min_score=%s)",
        s.keyword_match,
        len(ctx.ranking.pool),
        ctx.ranking.matched,
        len(ctx.ranking.digest),
        s.max_papers,
        s.min_score,
    )
    if not s.keywords and not s.high_score_keywords:
        log.warning("no keywords configured: the global digest is empty; set 'keywords'")


def issue_stage(ctx: RunContext) -> None:
    """Build (or rebuild in place) the date's issue and read it back."""
    ann = _need(ctx.announcement, "announcement")
    ranking = _need(ctx.ranking, "ranking")
    fresh = _need(ctx.fresh, "fresh papers")
    with session_scope(ctx.engine) as session:
        rebuilt = issue_store.issue_exists(session, ann.date)
        issue = issue_store.build_issue(
            session,
            date=ann.date,
            ranking=ranking,
            categories=ctx.settings.categories,
            source=ann.source,
            updates=fresh.updates,
            papers_found=len(ann.papers),
        )
        if ctx.send and issue.status == "built":
            # Committed with the issue: a crash from here on leaves a day the resume finishes.
            issue.status = "sending"
            session.add(issue)
        ctx.issue_id = issue.id
        ctx.view = issue_store.load_issue(session, ann.date)
    log.info("issue %s %s (id %s)", ann.date, "rebuilt in place" if rebuilt else "built", issue.id)


def audience(ctx: RunContext) -> Audience:
    """Every active subscriber's selection of today's issue (computed once, reused by send)."""
    if ctx.audience is None:
        ctx.audience = audience_of(ctx.engine, _need(ctx.view, "issue"), ctx.settings)
    return ctx.audience


def summarise_stage(ctx: RunContext) -> None:
    """Summaries for the papers readers will see, most-read first across their languages: the
    ones stored for this issue first (a resumed send mails what the first run mailed), then the
    cache, then the model for what is missing."""
    from newsletter.rhythm.languages import summarise_for_audience

    view = _need(ctx.view, "issue")
    stored: dict[str, Summary] = {}
    if ctx.settings.ai_summary.enabled:
        with session_scope(ctx.engine) as session:
            stored = issue_summaries(session, view, ctx.settings)
    fetch_pdf = arxiv_client(ctx).fetch_pdf if ctx.settings.ai_summary.enabled else None
    made = summarise_for_audience(
        ctx.engine, ctx.settings, view, audience(ctx), pdf_fetcher=fetch_pdf
    )
    ctx.summaries = {**made.site, **stored}
    ctx.translations = made.by_language
    ctx.counts["model_calls"] = made.calls
    ctx.counts["summary_failures"] = made.failures
    if not made.disabled:
        log.info(made.describe)


def archive_stage(ctx: RunContext) -> None:
    """Write the issue's Markdown page and refresh the archive index."""
    view = _need(ctx.view, "issue")
    with session_scope(ctx.engine) as session:
        issues = issue_store.list_issues(session)
    ctx.outputs["issue_markdown"] = archive.write_issue(ctx.settings, view, ctx.summaries)
    ctx.outputs["archive_index"] = archive.write_index(ctx.settings, issues)
    log.info("archive: wrote %s", ctx.outputs["issue_markdown"])


def send_stage(ctx: RunContext) -> None:
    """Mail every active subscriber their selection; resumable, never twice (see delivery)."""
    if not ctx.send:
        return
    from newsletter.delivery.send import send_issue

    view = _need(ctx.view, "issue")
    report = send_issue(
        ctx.engine,
        ctx.settings,
        view.date,
        view=view,
        summaries=ctx.summaries,
        translations=ctx.translations,
        stop=ctx.stop_event,
        audience=audience(ctx),
    )
    ctx.counts["emails_sent"] = report.sent
    ctx.counts["emails_failed"] = report.failed
    log.info(
        "e-mail (%s): sent %d, failed %d, skipped %d, no match %d; %d requests, %d distinct bodies",
        report.backend,
        report.sent,
        report.failed,
        report.skipped,
        report.no_match,
        report.requests,
        report.distinct_bodies,
    )
    if report.in_flight:
        log.warning(
            "%d deliveries were in flight when an earlier run stopped; policy %r applied",
            len(report.in_flight),
            ctx.settings.delivery.in_flight_policy,
        )
    if report.stopped:
        ctx.stop("stopped", f"stopped while sending {view.date}: run again to send the rest")
    elif not report.complete:
        waiting = report.totals.get("queued", 0) + report.totals.get("sending", 0)
        ctx.stop(
            "failed",
            f"{waiting} e-mails of {view.date} could not be handed over yet; "
            "run again to resume (nobody is mailed twice)",
        )


def weekly_stage(ctx: RunContext) -> None:
    """After the day's send: weekly readers' e-mails on the week's run, and catch-ups for
    readers who switched to daily (``newsletter.rhythm.weekly``); resumable like the daily."""
    if not ctx.send:
        return
    from newsletter.rhythm.weekly import send_weekly

    view = _need(ctx.view, "issue")
    fetch_pdf = ctx.client.fetch_pdf if ctx.client is not None else None
    report = send_weekly(
        ctx.engine, ctx.settings, view.date, stop=ctx.stop_event, pdf_fetcher=fetch_pdf
    )
    ctx.counts["weekly_sent"] = report.sent
    ctx.counts["emails_sent"] = ctx.counts.get("emails_sent", 0) + report.sent
    ctx.counts["emails_failed"] = ctx.counts.get("emails_failed", 0) + report.failed
    ctx.counts["model_calls"] = ctx.counts.get("model_calls", 0) + report.model_calls
    if report.stopped:
        ctx.stop("stopped", f"stopped while sending the weekly e-mails of {view.date}")
    elif not report.complete:
        ctx.stop(
            "failed",
            f"weekly e-mails of {view.date} could not all be handed over yet; "
            "run again to resume (nobody is mailed twice)",
        )


DEFAULT_STAGES: tuple[Stage, ...] = (
    Stage("fetch", fetch_stage),
    Stage("store", store_stage),
    Stage("rank", rank_stage),
    Stage("issue", issue_stage),
    Stage("summarise", summarise_stage),
    Stage("archive", archive_stage),
    Stage("send", send_stage),
    Stage("weekly", weekly_stage),
)


def _need(value: Any, what: str) -> Any:
    if value is None:
        raise RuntimeError(f"pipeline stage order: no {what} yet")
    return value


def describe(exc: BaseException) -> str:
    if isinstance(exc, ArxivError):
        return f"arXiv is unavailable or answered badly: {exc}. Try again later."
    return f"{type(exc).__name__}: {exc}"


def ok_message(ctx: RunContext) -> str:
    c = ctx.counts
    text = (
        f"issue {ctx.date}: {c.get('papers', 0)} papers in the digest "
        f"({c.get('papers_found', 0)} announced, {c.get('matched', 0)} matched keywords)"
    )
    if not ctx.send:
        text += "; sending skipped (--no-send)"
    else:
        text += f"; {c.get('emails_sent', 0)} e-mails sent, {c.get('emails_failed', 0)} failed"
    return text
