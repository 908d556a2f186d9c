"""Subscriber search: an address fragment, a keyword, a status; newest first, one page at a time.

Filters run in SQL (``LIKE`` on the address and on the keywords' JSON text, the status index),
and a page reads ``PAGE_SIZE`` rows, so the cost is one scan of the table at most, never loading
every subscriber into Python (``benchmarks/bench_admin_search.py`` measures both).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import ColumnElement, String, cast, func
from sqlmodel import Session, col, select

from subscribers.models import STATUSES, Subscriber

PAGE_SIZE = 50
MAX_TERM = 254


@dataclass(frozen=True)
class Query:
    text: str = ""
    keyword: str = ""
    status: str = ""
    page: int = 1

    @classmethod
    def parse(cls, text: str = "", keyword: str = "", status: str = "", page: str = "1") -> Query:
        """Clean query-string values; an unknown status or a bad page number is ignored."""
        number = int(page) if page.isdigit() and 0 < len(page) < 7 else 1
        return cls(
            text=text.strip()[:MAX_TERM],
            keyword=keyword.strip()[:MAX_TERM],
            status=status if status in STATUSES else "",
            page=max(1, number),
        )


@dataclass(frozen=True)
class Page:
    query: Query
    rows: list[Subscriber]
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


def _like(term: str) -> str:
    escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(session: Session, query: Query) -> Page:
    where: list[ColumnElement[bool]] = []
    if query.text:
        where.append(func.lower(col(Subscriber.email)).like(_like(query.text), escape="\\"))
    if query.keyword:
        keywords = func.lower(cast(col(Subscriber.keywords), String))
        # The column holds JSON text, where non-ASCII letters and quotes are escaped.
        term = json.dumps(query.keyword.lower())[1:-1]
        where.append(keywords.like(_like(term), escape="\\"))
    if query.status:
        where.append(col(Subscriber.status) == query.status)
    total = session.exec(select(func.count()).select_from(Subscriber).where(*where)).one()
    rows = session.exec(
        select(Subscriber)
        .where(*where)
        .order_by(col(Subscriber.id).desc())
        .offset((query.page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    return Page(query, list(rows), int(total))
