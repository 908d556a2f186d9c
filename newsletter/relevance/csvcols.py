"""The profile's CSV columns (``interests``, ``papers``, ``authors``; ``;`` between items),
read and written for ``subscribers.csvio`` in bulk."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import insert
from sqlmodel import Session

from newsletter.config import Settings
from newsletter.relevance.models import SubscriberExample, SubscriberProfile
from newsletter.relevance.profiles import (
    Fetch,
    check_authors,
    check_interests,
    check_papers,
    profiles_of,
    resolve_papers,
)

PROFILE_COLUMNS = ("interests", "papers", "authors")


@dataclass(frozen=True, slots=True)
class ProfileCells:
    interests: str
    papers: tuple[str, ...]
    authors: tuple[str, ...]


def parse_profile_cells(row: Mapping[str, str | None], settings: Settings) -> ProfileCells | None:
    """The row's profile, validated (``InvalidInput`` names the problem); None when blank."""
    cells = ProfileCells(
        interests=check_interests(row.get("interests") or ""),
        papers=tuple(check_papers(row.get("papers") or "", settings)),
        authors=tuple(check_authors(row.get("authors") or "")),
    )
    return cells if (cells.interests or cells.papers or cells.authors) else None


def resolve_rows(
    session: Session, cells: Sequence[ProfileCells | None], fetch: Fetch | None
) -> tuple[set[int], dict[int, str]]:
    """Which rows can be stored (their papers are known or fetched, one lookup for the chunk)
    and, by row index, why the others cannot."""
    wanted = [p for c in cells if c is not None for p in c.papers]
    unknown = set(resolve_papers(session, wanted, fetch))
    keep: set[int] = set()
    bad: dict[int, str] = {}
    for index, c in enumerate(cells):
        missing = [p for p in (c.papers if c else ()) if p in unknown]
        if missing:
            bad[index] = "unknown arXiv paper(s): " + ", ".join(missing[:10])
        else:
            keep.add(index)
    return keep, bad


def save_rows(
    session: Session, ids: Sequence[int], cells: Sequence[ProfileCells | None], now: dt.datetime
) -> None:
    """Bulk insert of the profiles of freshly inserted subscribers (``ids`` in row order)."""
    profiles = [
        {
            "subscriber_id": sid,
            "interests": c.interests,
            "authors": list(c.authors),
            "updated_at": now,
            "vector_model": None,
            "vector": None,
        }
        for sid, c in zip(ids, cells, strict=True)
        if c is not None
    ]
    examples = [
        {
            "subscriber_id": sid,
            "arxiv_id": p,
            "sign": 1,
            "source": "profile",
            "created_at": now,
        }
        for sid, c in zip(ids, cells, strict=True)
        if c is not None
        for p in c.papers
    ]
    if profiles:
        session.execute(insert(SubscriberProfile.__table__), profiles)  # type: ignore[attr-defined]
    if examples:
        session.execute(insert(SubscriberExample.__table__), examples)  # type: ignore[attr-defined]


def profile_cells(session: Session, ids: Sequence[int]) -> dict[int, tuple[str, str, str]]:
    """The three cells of each subscriber who has a profile."""
    return {
        sid: (p.interests, ";".join(p.papers), ";".join(p.authors))
        for sid, p in profiles_of(session, ids).items()
    }
