"""Helpers for the service tests: rows inserted directly, a recording firing, subprocess workers."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import func, select

from newsletter.db import session_scope
from newsletter.models import IssuePaperRow, IssueRow, PaperRow, RunRow

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "service_worker.py"


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def worker_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def start_worker(args: Sequence[str], **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        cwd=str(ROOT),
        stdin=subprocess.PIPE,  # "hold-lock" holds until its stdin closes
        env=worker_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class RecordingFire:
    """What a scheduler firing does, for the scheduler tests: counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.called = threading.Event()

    def __call__(self) -> None:
        self.calls += 1
        self.called.set()


def count_runs(engine: Engine, **where: Any) -> int:
    with session_scope(engine) as session:
        stmt = select(func.count()).select_from(RunRow)
        for key, value in where.items():
            stmt = stmt.where(getattr(RunRow, key) == value)
        return int(session.exec(stmt).one())


def add_paper(
    engine: Engine,
    arxiv_id: str,
    *,
    title: str = "A paper",
    abstract: str = "An abstract.",
    authors: Sequence[str] = ("Ada Lovelace",),
    categories: Sequence[str] = ("cs.LG",),
    published: dt.datetime | None = None,
) -> None:
    with session_scope(engine) as session:
        session.add(
            PaperRow(
                arxiv_id=arxiv_id,
                version=1,
                title=title,
                abstract=abstract,
                authors=list(authors),
                primary_category=categories[0],
                categories=list(categories),
                published=published or dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
            )
        )


def add_issue(
    engine: Engine,
    date: dt.date,
    entries: Sequence[tuple[str, float, Sequence[str], int | None]],
    *,
    status: str = "sent",
) -> int:
    """An issue with (arxiv_id, score, matched keywords, rank) entries; papers must exist."""
    with session_scope(engine) as session:
        issue = IssueRow(
            date=date,
            status=status,
            papers_found=len(entries) + 5,
            papers_selected=sum(1 for e in entries if e[3] is not None),
            categories=["cs.AI", "cs.LG"],
        )
        session.add(issue)
        session.flush()
        if issue.id is None:
            raise RuntimeError("issue got no id")
        for position, (arxiv_id, score, keywords, rank) in enumerate(entries):
            session.add(
                IssuePaperRow(
                    issue_id=issue.id,
                    arxiv_id=arxiv_id,
                    score=score,
                    matched_keywords=list(keywords),
                    rank=rank,
                    position=position,
                )
            )
        return issue.id
