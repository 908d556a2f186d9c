"""Subscriber tables: subscribers, consent records, the permanent suppression list, rate events."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from newsletter.models import utcnow

STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")
CADENCES = ("daily", "weekly")


class Subscriber(SQLModel, table=True):
    __tablename__ = "subscribers"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)  # normalised
    status: str = Field(default="pending", max_length=16, index=True)
    created_at: dt.datetime = Field(default_factory=utcnow)
    status_changed_at: dt.datetime = Field(default_factory=utcnow)
    confirmed_at: dt.datetime | None = None
    unsubscribed_at: dt.datetime | None = None
    keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    max_papers: int | None = None
    include_summaries: bool = True
    cadence: str = Field(default="daily", max_length=16)  # daily, weekly (docs/cadence-language.md)
    language: str | None = Field(default=None, max_length=64)  # None: the site's language
    token_nonce: str = Field(default="", max_length=64)  # rotated to make tokens single-use


class Consent(SQLModel, table=True):
    """Who agreed to what, when, from where and through which form."""

    __tablename__ = "consents"

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscribers.id", index=True, ondelete="CASCADE")
    action: str = Field(max_length=32)  # signup, confirm, preferences, unsubscribe, resubscribe
    at: dt.datetime = Field(default_factory=utcnow)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, sa_column=Column(Text))
    form: str | None = Field(default=None, max_length=64)


class Suppression(SQLModel, table=True):
    """Addresses never mailed again; outlives erasure (stores a hash, not the address)."""

    __tablename__ = "suppressions"

    id: int | None = Field(default=None, primary_key=True)
    email_hash: str = Field(max_length=64, unique=True, index=True)
    reason: str = Field(max_length=32)  # unsubscribed, bounced, complained, erased, admin
    created_at: dt.datetime = Field(default_factory=utcnow)


class RateEvent(SQLModel, table=True):
    """One counted action (a signup from an IP, for an address) for rate limits across processes."""

    __tablename__ = "rate_events"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=128, index=True)
    at: dt.datetime = Field(default_factory=utcnow, index=True)
