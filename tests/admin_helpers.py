"""Helpers of the dashboard tests: settings with an admin token, signing in, a seeded issue."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.delivery.models import Delivery
from newsletter.models import IssuePaperRow, IssueRow, PaperRow
from subscribers.models import Subscriber, Suppression
from subscribers.validation import email_hash, mailbox_key, normalise_email
from tests.subscriber_helpers import csrf_of

ADMIN_TOKEN = "adm-9Jq4Lx2Vb7Nc1Zr8Tw5Yp3Hs6-Qx7vLp2mZr9"


def with_admin(settings: Settings, token: str = ADMIN_TOKEN) -> Settings:
    return settings.model_copy(update={"admin_token": SecretStr(token)})


def sign_in(client: TestClient, token: str = ADMIN_TOKEN) -> Any:
    page = client.get("/admin/login")
    return client.post(
        "/admin/login",
        data={"csrf_token": csrf_of(page.text), "token": token},
        follow_redirects=False,
    )


def seed_issue(
    engine: Engine,
    day: dt.date,
    *,
    papers: int = 3,
    deliveries: dict[int, str] | None = None,
    queued_at: dt.datetime | None = None,
    title: str = "Paper",
) -> int:
    """An issue of ``day`` whose digest is ``papers`` papers on cs.LG, and delivery rows
    (subscriber id -> state) created at ``queued_at``."""
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        issue_id = conn.execute(
            insert(IssueRow.__table__).values(  # type: ignore[attr-defined]
                date=day,
                categories=["cs.LG"],
                papers_found=papers,
                papers_selected=papers,
                status="built",
                created_at=now,
                updated_at=now,
                source="api",
            )
        ).inserted_primary_key[0]
        for i in range(papers):
            arxiv_id = f"{day:%y%m}.{day.day:02d}{i:03d}"
            conn.execute(
                insert(PaperRow.__table__).values(  # type: ignore[attr-defined]
                    arxiv_id=arxiv_id,
                    version=1,
                    title=f"{title} {i}",
                    abstract="An abstract.",
                    authors=["A. Author"],
                    primary_category="cs.LG",
                    categories=["cs.LG"],
                    published=now,
                    first_seen=now,
                )
            )
            conn.execute(
                insert(IssuePaperRow.__table__).values(  # type: ignore[attr-defined]
                    issue_id=issue_id,
                    arxiv_id=arxiv_id,
                    version=1,
                    announce_type="new",
                    is_update=False,
                    score=1.0,
                    matched_keywords=[],
                    rank=i + 1,
                    position=i,
                )
            )
        for sid, state in (deliveries or {}).items():
            conn.execute(
                insert(Delivery.__table__).values(  # type: ignore[attr-defined]
                    issue_id=issue_id,
                    subscriber_id=sid,
                    status=state,
                    message_id=f"<{sid}.{day}@test>",
                    attempts=1 if state != "queued" else 0,
                    error="550 mailbox unavailable" if state == "failed" else None,
                    created_at=queued_at or now,
                    updated_at=queued_at or now,
                )
            )
    return int(issue_id)


def find(session: Session, *, email: str) -> Subscriber | None:
    """The row of this mailbox, read straight from the table."""
    key = mailbox_key(normalise_email(email))
    return session.exec(select(Subscriber).where(Subscriber.email_key == key)).first()


def is_suppressed(session: Session, *, email: str) -> bool:
    """Whether the suppression list holds this address (by its hash, as the store keeps it)."""
    digest = email_hash(normalise_email(email))
    return (
        session.exec(select(Suppression).where(Suppression.email_hash == digest)).first()
        is not None
    )
