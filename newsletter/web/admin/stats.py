"""The overview's figures, read from the tables the pipeline and the subscriber store keep.

Daily activity comes from timestamps already stored: signups, confirmations and unsubscribes
from the consent records (one per status change), bounces and complaints from the suppression
list (which outlives erasure). Erasing a person removes their consent records, so their signup
and confirmation leave the chart too; that is what erasure means.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func
from sqlmodel import Session, col, select

from newsletter.config import Settings
from newsletter.delivery.models import Delivery
from newsletter.models import IssuePaperRow, IssueRow, RunRow, SummaryRow, utcnow
from subscribers import service
from subscribers.models import STATUSES, Consent, Suppression

SERIES = ("signups", "confirmations", "unsubscribes", "bounces", "complaints")
SIGNUP_ACTIONS = ("signup", "import", "admin-add")
UNSUBSCRIBE_ACTIONS = ("unsubscribe", "suppress:unsubscribed")
PENDING_STATES = ("queued", "sending")
DONE_STATES = ("sent", "failed", "skipped", "unknown")
STALE_AFTER = dt.timedelta(hours=1)
RATE_WINDOW = dt.timedelta(days=30)
# Gmail and Yahoo (February 2024 sender rules): keep the spam rate under 0.1 %, never 0.3 %.
COMPLAINT_TARGET = 0.001
COMPLAINT_LIMIT = 0.003
# Neither publishes a bounce threshold; 2 % is the usual provider warning, 5 % gets accounts paused.
BOUNCE_TARGET = 0.02
BOUNCE_LIMIT = 0.05


def aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _day_of(column: Any, dialect: str) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp column, grouped by in SQL."""
    if dialect == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


@dataclass(frozen=True)
class Activity:
    days: list[dt.date]
    series: dict[str, list[int]]

    def total(self, name: str) -> int:
        return sum(self.series[name])

    def busy_days(self) -> list[tuple[dt.date, list[int]]]:
        """(day, a count per series) for the days with any event, newest first."""
        rows = [(day, [v[i] for v in self.series.values()]) for i, day in enumerate(self.days)]
        return [(day, counts) for day, counts in reversed(rows) if any(counts)]


def daily_activity(session: Session, *, days: int = 90, today: dt.date | None = None) -> Activity:
    """Per-day counts of each event in ``SERIES`` over the last ``days`` days (UTC)."""
    today = today or utcnow().date()
    start = today - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    dialect = session.get_bind().dialect.name
    index = {start + dt.timedelta(days=i): i for i in range(days)}
    series = {name: [0] * days for name in SERIES}

    def add(name: str, rows: Any) -> None:
        for day, n in rows:
            i = index.get(_as_date(day))
            if i is not None:
                series[name][i] += int(n)

    def consents(actions: tuple[str, ...]) -> Any:
        day = _day_of(col(Consent.at), dialect)
        return session.exec(
            select(day, func.count(func.distinct(Consent.subscriber_id)))
            .where(col(Consent.action).in_(actions), col(Consent.at) >= since)
            .group_by(day)
        ).all()

    def suppressions(reason: str) -> Any:
        day = _day_of(col(Suppression.created_at), dialect)
        return session.exec(
            select(day, func.count())
            .where(Suppression.reason == reason, col(Suppression.created_at) >= since)
            .group_by(day)
        ).all()

    add("signups", consents(SIGNUP_ACTIONS))
    add("confirmations", consents(("confirm",)))
    add("unsubscribes", consents(UNSUBSCRIBE_ACTIONS))
    add("bounces", suppressions("bounced"))
    add("complaints", suppressions("complained"))
    return Activity(sorted(index), series)


def subscriber_counts(session: Session) -> dict[str, int]:
    """Subscribers by status now, every status present (zero when none)."""
    found = service.count_by_status(session)
    return {status: found.get(status, 0) for status in STATUSES} | found


@dataclass
class IssueFigures:
    """How one issue went: its papers, deliveries by state, the run and the model's work."""

    id: int
    date: dt.date
    status: str
    papers: int
    deliveries: dict[str, int] = field(default_factory=dict)
    run_seconds: float | None = None
    run_outcome: str | None = None
    summaries: int = 0
    tokens: int = 0
    model_calls: int = 0

    @property
    def recipients(self) -> int:
        return sum(self.deliveries.values())

    def count(self, state: str) -> int:
        return self.deliveries.get(state, 0)

    @property
    def pending(self) -> int:
        return sum(self.count(s) for s in PENDING_STATES)

    @property
    def done(self) -> int:
        return sum(self.count(s) for s in DONE_STATES)

    @property
    def percent(self) -> int:
        return 100 if not self.recipients else int(100 * self.done / self.recipients)


def issue_figures(session: Session, issues: list[IssueRow]) -> list[IssueFigures]:
    """Figures of ``issues`` (a handful of grouped queries, whatever their number)."""
    ids = [i.id for i in issues if i.id is not None]
    if not ids:
        return []
    figures = {
        i.id: IssueFigures(id=i.id, date=i.date, status=i.status, papers=i.papers_selected)
        for i in issues
        if i.id is not None
    }
    for issue_id, state, n in session.exec(
        select(Delivery.issue_id, Delivery.status, func.count())
        .where(col(Delivery.issue_id).in_(ids))
        .group_by(col(Delivery.issue_id), col(Delivery.status))
    ):
        figures[issue_id].deliveries[state] = int(n)
    for issue_id, n, tokens in session.exec(
        select(
            IssuePaperRow.issue_id, func.count(), func.coalesce(func.sum(SummaryRow.tokens_used), 0)
        )
        .join(
            SummaryRow,
            (col(SummaryRow.arxiv_id) == col(IssuePaperRow.arxiv_id))
            & (col(SummaryRow.version) == col(IssuePaperRow.version)),
        )
        .where(col(IssuePaperRow.issue_id).in_(ids))
        .group_by(col(IssuePaperRow.issue_id))
    ):
        figures[issue_id].summaries = int(n)
        figures[issue_id].tokens = int(tokens)
    by_date = {f.date: f for f in figures.values()}
    runs = session.exec(
        select(RunRow).where(col(RunRow.date).in_(list(by_date))).order_by(col(RunRow.id))
    ).all()
    for run in runs:  # the latest run of each day wins
        fig = by_date.get(run.date) if run.date else None
        if fig is None:
            continue
        fig.run_outcome = run.outcome
        fig.model_calls = run.model_calls
        started, finished = aware(run.started_at), aware(run.finished_at)
        fig.run_seconds = (finished - started).total_seconds() if started and finished else None
    return [figures[i] for i in ids]


def recent_issues(session: Session, *, limit: int = 10) -> list[IssueFigures]:
    issues = session.exec(select(IssueRow).order_by(col(IssueRow.date).desc()).limit(limit)).all()
    return issue_figures(session, list(issues))


def running_runs(session: Session) -> list[RunRow]:
    return list(
        session.exec(
            select(RunRow).where(RunRow.outcome == "running").order_by(col(RunRow.id).desc())
        ).all()
    )


def sends_in_progress(session: Session) -> list[IssueFigures]:
    """Issues whose send has started and not finished (some deliveries still queued)."""
    ids = session.exec(
        select(Delivery.issue_id)
        .where(col(Delivery.status).in_(PENDING_STATES))
        .group_by(col(Delivery.issue_id))
    ).all()
    if not ids:
        return []
    issues = session.exec(select(IssueRow).where(col(IssueRow.id).in_(list(ids)))).all()
    return issue_figures(session, list(issues))


@dataclass(frozen=True)
class Rates:
    sent: int
    bounces: int
    complaints: int

    @property
    def bounce_rate(self) -> float:
        return self.bounces / self.sent if self.sent else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.sent if self.sent else 0.0


def rates(session: Session, *, now: dt.datetime | None = None) -> Rates:
    """Bounces and complaints against e-mails sent, over ``RATE_WINDOW``."""
    since = (now or utcnow()) - RATE_WINDOW
    sent = session.exec(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.status == "sent", col(Delivery.updated_at) >= since)
    ).one()
    by_reason = dict(
        session.exec(
            select(Suppression.reason, func.count())
            .where(col(Suppression.created_at) >= since)
            .group_by(col(Suppression.reason))
        ).all()
    )
    return Rates(int(sent), int(by_reason.get("bounced", 0)), int(by_reason.get("complained", 0)))


@dataclass(frozen=True)
class Warning:
    level: str  # "danger" (act now) or "warning"
    text: str
    href: str | None = None


def _percent(rate: float) -> str:
    return f"{rate * 100:.2f} %"


def warnings(
    session: Session, settings: Settings, *, now: dt.datetime | None = None
) -> list[Warning]:
    """What an operator must act on, most urgent first."""
    now = now or utcnow()
    out: list[Warning] = []
    stale = session.exec(
        select(col(IssueRow.date), func.count())
        .join(Delivery, col(Delivery.issue_id) == col(IssueRow.id))
        .where(
            col(Delivery.status).in_(PENDING_STATES), col(Delivery.created_at) < now - STALE_AFTER
        )
        .group_by(col(IssueRow.date))
        .order_by(col(IssueRow.date))
    ).all()
    for day, n in stale:
        out.append(
            Warning(
                "danger",
                f"The issue of {day.isoformat()} has {n} deliveries queued for more than an hour.",
                f"/admin/issues/{day.isoformat()}",
            )
        )
    r = rates(session, now=now)
    window = f"over the last {RATE_WINDOW.days} days ({r.sent} sent)"
    if r.complaint_rate > COMPLAINT_LIMIT:
        out.append(
            Warning(
                "danger",
                f"Spam complaint rate {_percent(r.complaint_rate)} {window} is above the 0.3 % "
                "Gmail and Yahoo enforce.",
            )
        )
    elif r.complaint_rate > COMPLAINT_TARGET:
        out.append(
            Warning(
                "warning",
                f"Spam complaint rate {_percent(r.complaint_rate)} {window} is above the 0.1 % "
                "target of Gmail and Yahoo.",
            )
        )
    if r.bounce_rate > BOUNCE_LIMIT:
        out.append(
            Warning("danger", f"Bounce rate {_percent(r.bounce_rate)} {window} is above 5 %.")
        )
    elif r.bounce_rate > BOUNCE_TARGET:
        out.append(
            Warning("warning", f"Bounce rate {_percent(r.bounce_rate)} {window} is above 2 %.")
        )
    last = session.exec(select(RunRow).order_by(col(RunRow.id).desc()).limit(1)).first()
    if last is not None and last.outcome == "failed":
        when = last.date.isoformat() if last.date else "?"
        why = last.message or "see the log"
        out.append(Warning("danger", f"The last run (#{last.id}, {when}) failed: {why}"))
    if not settings.email.postal_address.strip():
        out.append(
            Warning(
                "warning",
                "No postal address is set (email.postal_address): bulk senders must show one "
                "in every e-mail.",
            )
        )
    if settings.base_url.startswith("http://"):
        out.append(
            Warning(
                "warning",
                f"The base URL {settings.base_url} is http: links in e-mails and this "
                "dashboard's cookie travel unencrypted.",
            )
        )
    return out
