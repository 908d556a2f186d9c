"""Database tables of the pipeline: papers, issues, summaries, runs and locks.

Subscriber tables live in ``subscribers.models``, delivery tables in
``newsletter.delivery.models``; all are registered on ``SQLModel.metadata`` and created
by the Alembic migrations in ``alembic/``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel, col


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PaperRow(SQLModel, table=True):
    """The latest known metadata of a paper (one row per arXiv id, version tracked)."""

    __tablename__ = "papers"

    arxiv_id: str = Field(primary_key=True, max_length=64)
    version: int = 1
    title: str = Field(sa_column=Column(Text, nullable=False))
    abstract: str = Field(sa_column=Column(Text, nullable=False))
    authors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    primary_category: str = Field(max_length=64)
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    published: dt.datetime
    updated: dt.datetime | None = None
    comment: str | None = Field(default=None, sa_column=Column(Text))
    journal_ref: str | None = Field(default=None, sa_column=Column(Text))
    doi: str | None = Field(default=None, max_length=255)
    first_seen: dt.datetime = Field(default_factory=utcnow)


class IssueRow(SQLModel, table=True):
    """One day's issue (``kind`` "daily"; re-running a date rebuilds it in place), or the weekly
    e-mail sent with that day's run (``kind`` "weekly", no papers of its own: its deliveries
    carry the weekly readers' e-mails). Unique per (date, kind)."""

    __tablename__ = "issues"
    __table_args__ = (Index("uq_issues_date_kind", "date", "kind", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    date: dt.date = Field(index=True)
    kind: str = Field(default="daily", max_length=16)  # daily, weekly
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)
    papers_found: int = 0
    papers_selected: int = 0
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    source: str = Field(default="rss", max_length=16)
    status: str = Field(default="built", max_length=16)  # built, sending, sent
    sent_at: dt.datetime | None = None


def daily_issue() -> Any:
    """The condition that picks day issues (not the weekly e-mails' rows) out of ``issues``."""
    return col(IssueRow.kind) == "daily"


class IssuePaperRow(SQLModel, table=True):
    """A paper in an issue's candidate pool; ``rank`` is set for the global digest only."""

    __tablename__ = "issue_papers"
    __table_args__ = (UniqueConstraint("issue_id", "arxiv_id"),)

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issues.id", index=True, ondelete="CASCADE")
    arxiv_id: str = Field(foreign_key="papers.arxiv_id", max_length=64, index=True)
    version: int = 1
    announce_type: str = Field(default="new", max_length=16)
    is_update: bool = False
    score: float = 0.0
    matched_keywords: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    rank: int | None = None  # 1-based position in the global digest; None: pool only
    position: int = 0  # fetch order, keeps ranking stable


class SummaryRow(SQLModel, table=True):
    """A cached model summary, keyed so that a rerun of the same day makes no model call."""

    __tablename__ = "summaries"
    __table_args__ = (
        UniqueConstraint("arxiv_id", "version", "model", "prompt_hash", "language", "source"),
    )

    id: int | None = Field(default=None, primary_key=True)
    arxiv_id: str = Field(max_length=64, index=True)
    version: int
    model: str = Field(max_length=200)
    prompt_hash: str = Field(max_length=64)
    language: str = Field(max_length=64)
    source: str = Field(max_length=16)
    tldr: str = Field(sa_column=Column(Text, nullable=False))
    sections: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    tokens_used: int = 0
    created_at: dt.datetime = Field(default_factory=utcnow)


class RunRow(SQLModel, table=True):
    """One pipeline run: what it did and how it ended (for /healthz, /metrics and the log)."""

    __tablename__ = "runs"

    id: int | None = Field(default=None, primary_key=True)
    date: dt.date | None = Field(default=None, index=True)
    trigger: str = Field(default="cli", max_length=16)  # cli, schedule, admin, demo
    started_at: dt.datetime = Field(default_factory=utcnow)
    finished_at: dt.datetime | None = None
    outcome: str = Field(default="running", max_length=32)  # running, ok, no-announcement, failed
    message: str | None = Field(default=None, sa_column=Column(Text))
    papers: int = 0
    emails_sent: int = 0
    emails_failed: int = 0
    model_calls: int = 0


class LockRow(SQLModel, table=True):
    """A named lock with an expiry: SQLite's equivalent of PostgreSQL's advisory lock."""

    __tablename__ = "locks"

    name: str = Field(primary_key=True, max_length=128)
    holder: str = Field(max_length=128)
    acquired_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime
