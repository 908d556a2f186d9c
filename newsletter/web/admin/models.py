"""The dashboard's own tables: the audit log of operator actions and failed sign-ins."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from newsletter.models import utcnow


class AdminAudit(SQLModel, table=True):
    """One operator action (sign-in, suppress, erase, import, send, ...). Never the address of
    an erased person: subscribers are named by id and a prefix of their address's hash."""

    __tablename__ = "admin_audit"

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(default_factory=utcnow, index=True)
    action: str = Field(max_length=32)
    subscriber_id: int | None = Field(default=None, index=True)
    target: str = Field(default="", max_length=254)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    ip: str | None = Field(default=None, max_length=64)


class AdminSigninFailure(SQLModel, table=True):
    """A failed sign-in, counted per client address to throttle guessing across processes."""

    __tablename__ = "admin_signin_failures"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=128, index=True)
    at: dt.datetime = Field(default_factory=utcnow, index=True)
