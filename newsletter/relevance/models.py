"""Tables of personal relevance, beside (not inside) the subscribers table.

``subscriber_profiles`` holds the free-text interests and favourite authors, and the cached
vector of the interests; ``subscriber_examples`` the example papers, +1 (wanted, given or
"more like this") or -1 ("fewer like this"); ``paper_vectors`` each paper version's vector per
text model, computed once.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from newsletter.models import utcnow


class SubscriberProfile(SQLModel, table=True):
    __tablename__ = "subscriber_profiles"

    subscriber_id: int = Field(primary_key=True, foreign_key="subscribers.id", ondelete="CASCADE")
    interests: str = Field(default="", sa_column=Column(Text, nullable=False))
    authors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow)
    # The interests' vector, for ``vector_model``; cleared whenever the interests change.
    vector_model: str | None = Field(default=None, max_length=64)
    vector: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


class SubscriberExample(SQLModel, table=True):
    __tablename__ = "subscriber_examples"
    __table_args__ = (UniqueConstraint("subscriber_id", "arxiv_id"),)

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscribers.id", index=True, ondelete="CASCADE")
    arxiv_id: str = Field(foreign_key="papers.arxiv_id", max_length=64)
    sign: int = 1  # +1 more like this, -1 fewer like this
    source: str = Field(default="profile", max_length=16)  # profile, upload, feedback
    created_at: dt.datetime = Field(default_factory=utcnow)


class PaperVector(SQLModel, table=True):
    __tablename__ = "paper_vectors"

    arxiv_id: str = Field(primary_key=True, max_length=64)
    model: str = Field(primary_key=True, max_length=64)
    version: int = 1
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
