"""Subscriber tables: subscribers, consent records, the permanent suppression list, rate events."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import JSON, Column, String, Text
from sqlmodel import Field, SQLModel

from newsletter.models import utcnow
from subscribers.validation import mailbox_key

STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")
CADENCES = ("daily", "weekly")


def _email_key_default(context: Any) -> str:
    """Rows inserted without a key (admin tools, tests) get the one the service would give."""
    return mailbox_key(str(context.get_current_parameters()["email"]))


def new_link_key() -> str:
    """The random part of every link of one subscriber; a new one revokes all their links."""
    return secrets.token_urlsafe(24)


class Subscriber(SQLModel, table=True):
    """One mailbox. Ids are never re-used (AUTOINCREMENT on SQLite, a sequence on PostgreSQL),
    and every link carries ``link_key``, so a link of an erased row reaches nobody."""

    __tablename__ = "subscribers"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, index=True)  # as typed, domain IDNA-encoded: for sending
    email_key: str = Field(  # one row per mailbox: see subscribers.validation.mailbox_key
        sa_column=Column(
            String(254), unique=True, index=True, nullable=False, default=_email_key_default
        )
    )
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
    link_key: str = Field(default_factory=new_link_key, max_length=64)  # in every link


class SignupRequest(SQLModel, table=True):
    """A signup for an address that is already known: its choices wait here, with their own
    nonce, until the mailbox's owner confirms them; nothing of the subscriber changes before."""

    __tablename__ = "signup_requests"

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscribers.id", index=True, ondelete="CASCADE")
    nonce: str = Field(max_length=64, unique=True)
    created_at: dt.datetime = Field(default_factory=utcnow)
    keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    max_papers: int | None = None
    include_summaries: bool = True
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, sa_column=Column(Text))
    form: str | None = Field(default=None, max_length=64)


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
