"""The home page's "latest issue" line. Replaceable by ``newsletter.issue_store.latest_issue``
once the pipeline's read model exists; until then it reads IssueRow directly."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session, col, select

from newsletter.models import IssuePaperRow, IssueRow, PaperRow, daily_issue


@dataclass(frozen=True, slots=True)
class Headline:
    date: dt.date
    count: int
    top_title: str | None


def latest_headline(session: Session) -> Headline | None:
    issue = session.exec(
        select(IssueRow).where(daily_issue()).order_by(col(IssueRow.date).desc()).limit(1)
    ).first()
    if issue is None:
        return None
    top = session.exec(
        select(PaperRow.title)
        .join(IssuePaperRow, col(IssuePaperRow.arxiv_id) == col(PaperRow.arxiv_id))
        .where(IssuePaperRow.issue_id == issue.id, col(IssuePaperRow.rank).is_not(None))
        .order_by(col(IssuePaperRow.rank))
        .limit(1)
    ).first()
    title = " ".join(top.split()) if top else None
    return Headline(issue.date, issue.papers_selected, title)
