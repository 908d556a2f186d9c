"""What the subscriber and issue pages show, read in one place so the routes only render it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from newsletter.config import Settings
from newsletter.delivery.models import Delivery
from newsletter.domain import IssueEntry
from newsletter.email.loading import prefs_of
from newsletter.email.selection import select_all
from newsletter.issue_store import load_issue
from newsletter.models import IssueRow, SummaryRow, daily_issue
from newsletter.web.admin import actions, stats
from newsletter.web.admin.models import AdminAudit
from subscribers.errors import NotFound
from subscribers.models import Consent, Subscriber, Suppression

RECIPIENTS_PAGE = 50
FAILED_STATES = ("failed", "unknown")


@dataclass(frozen=True)
class SubscriberDetail:
    sub: Subscriber
    consents: list[Consent]
    deliveries: list[tuple[Delivery, dt.date]]  # newest issue first, at most 100
    suppression: Suppression | None
    audit: list[AdminAudit]

    @property
    def liftable(self) -> bool:
        return self.suppression is not None and self.suppression.reason not in actions.NOT_LIFTABLE


def subscriber_detail(session: Session, subscriber_id: int) -> SubscriberDetail:
    sub = session.get(Subscriber, subscriber_id)
    if sub is None:
        raise NotFound("no such subscriber")
    consents = session.exec(
        select(Consent).where(Consent.subscriber_id == subscriber_id).order_by(col(Consent.id))
    ).all()
    deliveries = session.exec(
        select(Delivery, col(IssueRow.date))
        .join(IssueRow, col(IssueRow.id) == col(Delivery.issue_id))
        .where(Delivery.subscriber_id == subscriber_id)
        .order_by(col(IssueRow.date).desc())
        .limit(100)
    ).all()
    return SubscriberDetail(
        sub=sub,
        consents=list(consents),
        deliveries=[(d, day) for d, day in deliveries],
        suppression=actions.suppression_of(session, sub),
        audit=actions.recent(session, subscriber_id=subscriber_id, limit=20),
    )


@dataclass(frozen=True)
class IssueDetail:
    issue: IssueRow
    figures: stats.IssueFigures
    digest: tuple[IssueEntry, ...]
    pool_size: int
    summarised: set[str]
    recipients: list[tuple[Delivery, Subscriber]]  # one page
    papers_of: dict[int, int]  # subscriber id -> papers their preferences select now
    page: int
    failures: list[tuple[str, str | None, int]]  # state, reason, count

    @property
    def pages(self) -> int:
        return max(1, -(-self.figures.recipients // RECIPIENTS_PAGE))

    @property
    def complete(self) -> bool:
        return self.issue.status == "sent" and not self.figures.pending


def issue_detail(
    session: Session, settings: Settings, day: dt.date, *, page: int = 1
) -> IssueDetail | None:
    """The issue of ``day`` with one page of recipients, or None when there is no such issue."""
    row = session.exec(select(IssueRow).where(IssueRow.date == day, daily_issue())).first()
    view = load_issue(session, day)
    if row is None or view is None:
        return None
    [figures] = stats.issue_figures(session, [row])
    recipients = session.exec(
        select(Delivery, Subscriber)
        .join(Subscriber, col(Subscriber.id) == col(Delivery.subscriber_id))
        .where(Delivery.issue_id == row.id)
        .order_by(col(Delivery.id))
        .offset((page - 1) * RECIPIENTS_PAGE)
        .limit(RECIPIENTS_PAGE)
    ).all()
    selected = select_all(view, [prefs_of(s) for _, s in recipients], settings)
    failures: Any = session.exec(
        select(Delivery.status, Delivery.error, func.count())
        .where(Delivery.issue_id == row.id, col(Delivery.status).in_(FAILED_STATES))
        .group_by(col(Delivery.status), col(Delivery.error))
        .order_by(func.count().desc())
    ).all()
    ids = [e.paper.arxiv_id for e in view.digest]
    summarised = session.exec(select(SummaryRow.arxiv_id).where(col(SummaryRow.arxiv_id).in_(ids)))
    return IssueDetail(
        issue=row,
        figures=figures,
        digest=view.digest,
        pool_size=len(view.pool),
        summarised=set(summarised.all()),
        recipients=[(d, s) for d, s in recipients],
        papers_of={sid: len(sel.entries) for sid, sel in selected.items()},
        page=page,
        failures=[(state, error, int(n)) for state, error, n in failures],
    )
