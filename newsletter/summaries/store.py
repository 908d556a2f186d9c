"""The summary cache in the database: look up, store, and count the day's tokens."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsletter.db import session_scope
from newsletter.domain import SUMMARY_SECTIONS, Paper, Summary
from newsletter.models import SummaryRow, utcnow

ABSTRACT = "abstract"


@dataclass(frozen=True, slots=True)
class CacheKey:
    """Everything except the paper that decides whether a stored summary still answers."""

    model: str
    prompt_hash: str
    language: str
    source: str


def _summary(row: SummaryRow) -> Summary:
    sections = {name: str(row.sections.get(name, "")) for name in SUMMARY_SECTIONS}
    return Summary(tldr=row.tldr, sections=sections, model=row.model)


def lookup(session: Session, key: CacheKey, papers: Sequence[Paper]) -> dict[str, Summary]:
    """Stored summaries of these papers' current versions under ``key``.

    In full-text mode a summary made from the abstract (the PDF was unavailable) also answers,
    so a rerun does not pay again; the full-text one wins when both exist.
    """
    if not papers:
        return {}
    versions = {p.arxiv_id: p.version for p in papers}
    sources = [key.source] if key.source == ABSTRACT else [key.source, ABSTRACT]
    rows = session.exec(
        select(SummaryRow).where(
            col(SummaryRow.arxiv_id).in_(list(versions)),
            SummaryRow.model == key.model,
            SummaryRow.prompt_hash == key.prompt_hash,
            SummaryRow.language == key.language,
            col(SummaryRow.source).in_(sources),
        )
    ).all()
    found: dict[str, SummaryRow] = {}
    for row in rows:
        if versions.get(row.arxiv_id) != row.version:
            continue
        current = found.get(row.arxiv_id)
        if current is None or (current.source == ABSTRACT and row.source != ABSTRACT):
            found[row.arxiv_id] = row
    return {arxiv_id: _summary(row) for arxiv_id, row in found.items()}


def tokens_spent(session: Session, day: dt.date) -> int:
    """Tokens recorded by summaries created on ``day`` (UTC): every run of a day shares them."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    total = session.exec(
        select(func.coalesce(func.sum(SummaryRow.tokens_used), 0)).where(
            SummaryRow.created_at >= start,
            SummaryRow.created_at < start + dt.timedelta(days=1),
        )
    ).one()
    return int(total)


def store(
    engine: Engine,
    key: CacheKey,
    paper: Paper,
    *,
    source: str,
    tldr: str,
    sections: dict[str, str],
    tokens: int,
) -> None:
    """Save one summary; a concurrent run that stored the same key first is not an error."""
    row = SummaryRow(
        arxiv_id=paper.arxiv_id,
        version=paper.version,
        model=key.model,
        prompt_hash=key.prompt_hash,
        language=key.language,
        source=source,
        tldr=tldr,
        sections=sections,
        tokens_used=tokens,
        created_at=utcnow(),
    )
    try:
        with session_scope(engine) as session:
            session.add(row)
    except IntegrityError:
        return
