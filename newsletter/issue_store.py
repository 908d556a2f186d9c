"""Papers and issues in the database: write side for the pipeline, read side for everyone else.

An issue is one row per date; re-running a date rebuilds that row's papers in place. A paper that
was in an earlier issue's pool is not repeated, except a replacement (``replace`` /
``replace-cross``) with a newer version when ``announce_types`` asks for it, marked ``is_update``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from newsletter.domain import IssueEntry, IssueView, Paper
from newsletter.models import IssuePaperRow, IssueRow, PaperRow, daily_issue, utcnow
from newsletter.ranking import Ranking

REPLACE_TYPES = frozenset({"replace", "replace-cross"})


@dataclass(frozen=True, slots=True)
class IssueSummary:
    """One line of the issue list (archive index, web archive, feeds)."""

    date: dt.date
    papers_found: int
    papers_selected: int  # global digest size
    pool_size: int
    status: str


@dataclass(frozen=True, slots=True)
class FreshPapers:
    """The papers of a day that may go into its issue, and which of them are updates."""

    papers: tuple[Paper, ...]
    updates: frozenset[str]  # arXiv ids shown as "updated"
    repeats: int  # papers dropped because an earlier issue had them


def _aware(value: dt.datetime) -> dt.datetime:
    """The UTCDateTime columns need aware datetimes; naive ones from arXiv are UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def save_papers(
    session: Session,
    papers: Sequence[Paper],
    *,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Insert new papers and refresh known ones (metadata and version: the latest wins)."""
    ids = [p.arxiv_id for p in papers]
    existing = {
        row.arxiv_id: row
        for row in session.exec(select(PaperRow).where(col(PaperRow.arxiv_id).in_(ids)))
    }
    for paper in papers:
        row = existing.get(paper.arxiv_id)
        if row is None:
            row = PaperRow(
                arxiv_id=paper.arxiv_id,
                title="",
                abstract="",
                primary_category="",
                published=_aware(paper.published),
            )
            existing[paper.arxiv_id] = row
        if paper.version >= row.version or not row.title:
            row.version = paper.version
            row.title = paper.title
            row.abstract = paper.abstract
            row.authors = list(paper.authors)
            row.primary_category = paper.primary_category
            row.categories = list(paper.categories)
            row.published = _aware(paper.published)
            row.updated = _aware(paper.updated) if paper.updated else None
            row.comment = paper.comment
            row.journal_ref = paper.journal_ref
            row.doi = paper.doi
        session.add(row)
        if progress is not None:
            progress(1)
    session.flush()


def fresh_papers(
    session: Session, date: dt.date, papers: Sequence[Paper], announce_types: Iterable[str]
) -> FreshPapers:
    """Drop papers an earlier issue (date < ``date``) already carried; keep wanted updates."""
    wanted = set(announce_types)
    ids = [p.arxiv_id for p in papers]
    seen: dict[str, int] = {}
    rows = session.exec(
        select(IssuePaperRow.arxiv_id, func.max(IssuePaperRow.version))
        .join(IssueRow, col(IssueRow.id) == col(IssuePaperRow.issue_id))
        .where(col(IssueRow.date) < date, daily_issue(), col(IssuePaperRow.arxiv_id).in_(ids))
        .group_by(col(IssuePaperRow.arxiv_id))
    )
    for arxiv_id, version in rows:
        seen[arxiv_id] = int(version)
    kept: list[Paper] = []
    updates: set[str] = set()
    for paper in papers:
        is_replace = paper.announce_type in REPLACE_TYPES
        if is_replace and paper.announce_type not in wanted:
            continue
        if paper.arxiv_id in seen and not (is_replace and paper.version > seen[paper.arxiv_id]):
            continue
        if is_replace:
            updates.add(paper.arxiv_id)
        kept.append(paper)
    return FreshPapers(tuple(kept), frozenset(updates), len(papers) - len(kept))


def build_issue(
    session: Session,
    *,
    date: dt.date,
    ranking: Ranking,
    categories: Sequence[str],
    source: str,
    updates: frozenset[str] = frozenset(),
    papers_found: int | None = None,
) -> IssueRow:
    """Create the date's issue, or rebuild it in place: same row, its papers replaced.

    ``papers_found`` is the announcement's size (default: the papers the ranking saw).
    """
    issue = session.exec(select(IssueRow).where(IssueRow.date == date, daily_issue())).first()
    if issue is None:
        issue = IssueRow(date=date)
    else:
        session.execute(delete(IssuePaperRow).where(col(IssuePaperRow.issue_id) == issue.id))
        issue.updated_at = utcnow()
    issue.papers_found = ranking.papers_found if papers_found is None else papers_found
    issue.papers_selected = len(ranking.digest)
    issue.categories = list(categories)
    issue.source = source
    session.add(issue)
    session.flush()
    if issue.id is None:
        raise RuntimeError("issue row has no id after flush")
    ranks = {r.paper.arxiv_id: i for i, r in enumerate(ranking.digest, start=1)}
    for position, item in enumerate(ranking.pool):
        paper = item.paper
        session.add(
            IssuePaperRow(
                issue_id=issue.id,
                arxiv_id=paper.arxiv_id,
                version=paper.version,
                announce_type=paper.announce_type,
                is_update=paper.arxiv_id in updates,
                score=item.score,
                matched_keywords=list(item.matched_keywords),
                rank=ranks.get(paper.arxiv_id),
                position=position,
            )
        )
    session.flush()
    return issue


def _paper(row: PaperRow, link: IssuePaperRow) -> Paper:
    return Paper(
        arxiv_id=row.arxiv_id,
        version=link.version,
        title=row.title,
        abstract=row.abstract,
        authors=tuple(row.authors),
        primary_category=row.primary_category,
        categories=tuple(row.categories),
        published=row.published,
        updated=row.updated,
        announce_type=link.announce_type,
        comment=row.comment,
        journal_ref=row.journal_ref,
        doi=row.doi,
    )


def _view(session: Session, issue: IssueRow) -> IssueView:
    rows = session.exec(
        select(IssuePaperRow, PaperRow)
        .join(PaperRow, col(PaperRow.arxiv_id) == col(IssuePaperRow.arxiv_id))
        .where(IssuePaperRow.issue_id == issue.id)
        .order_by(col(IssuePaperRow.position))
    ).all()
    pool = tuple(
        IssueEntry(
            paper=_paper(paper, link),
            score=link.score,
            matched_keywords=tuple(link.matched_keywords),
            rank=link.rank,
            announce_type=link.announce_type,
            is_update=link.is_update,
        )
        for link, paper in rows
    )
    digest = tuple(sorted((e for e in pool if e.rank is not None), key=lambda e: e.rank or 0))
    return IssueView(
        date=issue.date,
        papers_found=issue.papers_found,
        categories=tuple(issue.categories),
        digest=digest,
        pool=pool,
        status=issue.status,
    )


def load_issue(session: Session, date: dt.date) -> IssueView | None:
    """The issue of ``date`` with its pool and digest, or None."""
    issue = session.exec(select(IssueRow).where(IssueRow.date == date, daily_issue())).first()
    return None if issue is None else _view(session, issue)


def latest_issue(session: Session) -> IssueView | None:
    """The newest issue, or None when there is none yet."""
    issue = session.exec(
        select(IssueRow).where(daily_issue()).order_by(col(IssueRow.date).desc())
    ).first()
    return None if issue is None else _view(session, issue)


def issue_exists(session: Session, date: dt.date) -> bool:
    return (
        session.exec(select(IssueRow.id).where(IssueRow.date == date, daily_issue())).first()
        is not None
    )


def issue_id_for(session: Session, date: dt.date) -> int | None:
    return session.exec(select(IssueRow.id).where(IssueRow.date == date, daily_issue())).first()


def list_issues(session: Session) -> list[IssueSummary]:
    """Every issue, newest first, with its counts."""
    pool_sizes = (
        select(IssuePaperRow.issue_id, func.count().label("n"))
        .group_by(col(IssuePaperRow.issue_id))
        .subquery()
    )
    rows = session.exec(
        select(IssueRow, pool_sizes.c.n)
        .outerjoin(pool_sizes, pool_sizes.c.issue_id == col(IssueRow.id))
        .where(daily_issue())
        .order_by(col(IssueRow.date).desc())
    ).all()
    return [
        IssueSummary(
            date=issue.date,
            papers_found=issue.papers_found,
            papers_selected=issue.papers_selected,
            pool_size=int(n or 0),
            status=issue.status,
        )
        for issue, n in rows
    ]
