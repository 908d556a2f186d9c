"""Database reads the digest needs: subscribers as ``SubscriberPrefs`` and an issue's summaries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsletter.config import Settings
from newsletter.domain import SUMMARY_SECTIONS, IssueView, Summary
from newsletter.email.selection import Selection, SubscriberPrefs, select_all
from newsletter.models import SummaryRow
from subscribers.mailable import SUBSCRIBER_COLUMNS as SUBS
from subscribers.mailable import mailable_rows
from subscribers.models import Subscriber


def prefs_of(row: Subscriber) -> SubscriberPrefs:
    if row.id is None:
        raise ValueError("subscriber has no id (not saved)")
    return SubscriberPrefs(
        id=row.id,
        email=row.email,
        keywords=tuple(row.keywords or ()),
        categories=tuple(row.categories or ()),
        max_papers=row.max_papers,
        include_summaries=row.include_summaries,
        cadence=row.cadence,
        language=row.language,
    )


def active_prefs(engine: Engine, cadence: str | None = "daily") -> list[SubscriberPrefs]:
    """Who gets today's digest, as selection input: those who may be mailed
    (``subscribers.mailable``), read in bulk, of ``cadence`` (None: every cadence)."""
    with engine.connect() as conn:
        rows = mailable_rows(
            conn,
            (
                SUBS.keywords,
                SUBS.categories,
                SUBS.max_papers,
                SUBS.include_summaries,
                SUBS.cadence,
                SUBS.language,
            ),
        )
    if cadence is not None:
        rows = [r for r in rows if r.cadence == cadence]
    return [
        SubscriberPrefs(
            id=r.id,
            email=r.email,
            keywords=tuple(r.keywords or ()),
            categories=tuple(r.categories or ()),
            max_papers=r.max_papers,
            include_summaries=bool(r.include_summaries),
            cadence=r.cadence,
            language=r.language,
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class Audience:
    """Who gets an issue and what each of them gets: computed once per run, shared by the
    summaries (most-read papers first) and the sender."""

    prefs: list[SubscriberPrefs]
    selections: dict[int, Selection]


def selections_for(
    engine: Engine, view: IssueView, prefs: list[SubscriberPrefs], settings: Settings
) -> dict[int, Selection]:
    """Readers' selections, in a transaction of their own (vectors are cached on the way)."""
    from newsletter.db import session_scope

    with session_scope(engine) as session:
        return selections_in(session, view, prefs, settings)


def selections_in(
    session: Session, view: IssueView, prefs: list[SubscriberPrefs], settings: Settings
) -> dict[int, Selection]:
    """The one place readers' selections are made: readers with a relevance profile ranked
    by ``newsletter.relevance``, the others by their keywords as before."""
    from newsletter.relevance.personal import personal_picks

    personal = personal_picks(session, view, prefs, settings)
    return select_all(view, prefs, settings, personal=personal)


def audience_of(engine: Engine, view: IssueView, settings: Settings) -> Audience:
    prefs = active_prefs(engine)
    return Audience(prefs, selections_for(engine, view, prefs, settings))


def find_subscriber(session: Session, address: str) -> Subscriber | None:
    """The subscriber with this address (addresses are stored normalised; compared lower-case)."""
    wanted = address.strip().lower()
    return session.exec(select(Subscriber).where(func.lower(Subscriber.email) == wanted)).first()


def issue_summaries(
    session: Session,
    view: IssueView,
    settings: Settings,
    papers: Iterable[str] | None = None,
    language: str | None = None,
) -> dict[str, Summary]:
    """The stored summary of each paper's current version, per arXiv id.

    Several may exist (other models, prompts or languages): the configured model wins, then
    ``language`` (a reader's), then the site's language, then the newest. Papers without one
    are absent (the e-mail shows the abstract).
    """
    versions = {e.paper.arxiv_id: e.paper.version for e in view.pool}
    wanted = list(versions) if papers is None else [i for i in papers if i in versions]
    if not wanted:
        return {}
    rows = session.exec(select(SummaryRow).where(col(SummaryRow.arxiv_id).in_(wanted))).all()
    best: dict[str, SummaryRow] = {}

    def rank(row: SummaryRow) -> tuple[bool, bool, bool, float]:
        return (
            row.model == settings.ai_summary.model,
            language is not None and row.language == language,
            row.language == settings.ai_summary.language,
            row.created_at.timestamp(),
        )

    for row in rows:
        if versions.get(row.arxiv_id) != row.version or not row.tldr.strip():
            continue
        current = best.get(row.arxiv_id)
        if current is None or rank(row) > rank(current):
            best[row.arxiv_id] = row
    return {
        arxiv_id: Summary(
            tldr=row.tldr,
            sections={n: str((row.sections or {}).get(n, "")) for n in SUMMARY_SECTIONS},
            model=row.model,
        )
        for arxiv_id, row in best.items()
    }
