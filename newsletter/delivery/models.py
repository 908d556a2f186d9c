"""Delivery bookkeeping: one row per (issue, subscriber), and SendGrid events seen."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from newsletter.models import utcnow

DELIVERY_STATES = ("queued", "sending", "sent", "failed", "skipped", "unknown")


class Delivery(SQLModel, table=True):
    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("issue_id", "subscriber_id"),)

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issues.id", index=True)
    subscriber_id: int = Field(foreign_key="subscribers.id", index=True, ondelete="CASCADE")
    status: str = Field(default="queued", max_length=16, index=True)
    message_id: str = Field(max_length=255)
    provider_message_id: str | None = Field(default=None, max_length=255)
    attempts: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class WebhookEvent(SQLModel, table=True):
    """SendGrid events already handled, so a redelivered event changes nothing."""

    __tablename__ = "webhook_events"

    id: int | None = Field(default=None, primary_key=True)
    sg_event_id: str = Field(max_length=128, unique=True, index=True)
    event: str = Field(max_length=32)
    received_at: dt.datetime = Field(default_factory=utcnow)
