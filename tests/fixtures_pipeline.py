"""Recorded arXiv data turned into domain objects for pipeline tests (parsed, never hand-typed)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from functools import lru_cache
from pathlib import Path

import feedparser

from newsletter.arxiv.replay import demo_recording_path
from newsletter.domain import Announcement, Paper

# The recorded API answer shipped for the demo (see newsletter/demo_data/arxiv/PROVENANCE.md).
API_SAMPLE = demo_recording_path()
ROOT = Path(__file__).resolve().parent.parent
_ID = re.compile(r"abs/(?P<id>[^v]+)v(?P<v>\d+)$")


@lru_cache(maxsize=1)
def recorded_papers() -> tuple[Paper, ...]:
    """The 50 cs.LG papers of 2026-04-21 from a recorded API response, in feed order."""
    feed = feedparser.parse(API_SAMPLE.read_bytes())
    papers = []
    for e in feed.entries:
        m = _ID.search(e.id)
        assert m is not None
        papers.append(
            Paper(
                arxiv_id=m["id"],
                version=int(m["v"]),
                title=" ".join(e.title.split()),
                abstract=e.summary,
                authors=tuple(a["name"] for a in e.authors),
                primary_category=e.arxiv_primary_category["term"],
                categories=tuple(t["term"] for t in e.tags),
                published=dt.datetime(*e.published_parsed[:6], tzinfo=dt.UTC),
                announce_type="new",
            )
        )
    return tuple(papers)


def announcement(
    date: dt.date, papers: tuple[Paper, ...] | None = None, source: str = "rss"
) -> Announcement:
    return Announcement(
        date=date, papers=recorded_papers() if papers is None else papers, source=source
    )


def retyped(paper: Paper, **changes: object) -> Paper:
    return dataclasses.replace(paper, **changes)  # type: ignore[arg-type]


def repo_config() -> dict[str, object]:
    """The repository's config.json (the old bot's seed config)."""
    data: dict[str, object] = json.loads((ROOT / "config.json").read_text(encoding="utf-8"))
    return data


def old_bot_rank(
    papers: tuple[Paper, ...], keywords: list[str], exclude: list[str], max_papers: int
) -> list[tuple[str, float]]:
    """The old bot's rule, transcribed from the issue as an independent oracle."""
    scored = []
    for p in papers:
        text = (p.title + " " + p.abstract).lower()
        t = p.title.lower()
        score = 0.0
        for k in keywords:
            if k.lower() in text:
                score += 1.0
        for k in keywords:
            if k.lower() in t:
                score += 0.5
        if any(k.lower() in text for k in keywords) and not any(x.lower() in text for x in exclude):
            scored.append((p.arxiv_id, score))
    scored.sort(key=lambda x: x[1], reverse=True)
    return scored[:max_papers]
