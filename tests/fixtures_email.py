"""Test data for the digest e-mail: a real recorded day of cs.LG papers as an ``IssueView``."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from pathlib import Path

import feedparser

from newsletter.domain import IssueEntry, IssueView, Paper, Summary

DATA = Path(__file__).resolve().parent / "data" / "email"
RECORDED_DAY = dt.date(2026, 4, 22)


def recorded_papers() -> list[Paper]:
    """The 50 cs.LG papers of the recorded API page (published 2026-04-21), in feed order."""
    feed = feedparser.parse(DATA / "cs_lg_50_2026-04-21.xml")
    papers = []
    for e in feed.entries:
        m = re.search(r"abs/([^v]+)v(\d+)$", e.id)
        assert m, e.id
        papers.append(
            Paper(
                arxiv_id=m.group(1),
                version=int(m.group(2)),
                title=" ".join(e.title.split()),
                abstract=e.summary,
                authors=tuple(a["name"] for a in e.authors),
                primary_category=e.arxiv_primary_category["term"],
                categories=tuple(t["term"] for t in e.tags),
                published=dt.datetime.fromisoformat(e.published.replace("Z", "+00:00")),
            )
        )
    return papers


def entry(paper: Paper, score: float = 0.0, matched: tuple[str, ...] = (), rank: int | None = None):
    return IssueEntry(paper=paper, score=score, matched_keywords=matched, rank=rank)


def make_view(
    papers: list[Paper],
    digest_ids: list[str] | None = None,
    site_matched: dict[str, tuple[str, ...]] | None = None,
    day: dt.date = RECORDED_DAY,
) -> IssueView:
    """A view whose pool is ``papers`` and whose digest is ``digest_ids`` (default: the first 5)."""
    ids = digest_ids if digest_ids is not None else [p.arxiv_id for p in papers[:5]]
    by_id = {p.arxiv_id: p for p in papers}
    matched = site_matched or {}
    digest = tuple(
        entry(by_id[i], 1.0, matched.get(i, ()), rank=n) for n, i in enumerate(ids, start=1)
    )
    ranks = {e.paper.arxiv_id: e for e in digest}
    pool = tuple(ranks.get(p.arxiv_id, entry(p)) for p in papers)
    return IssueView(
        date=day,
        papers_found=len(papers),
        categories=("cs.LG",),
        digest=digest,
        pool=pool,
    )


def paper(
    arxiv_id: str,
    title: str = "A paper",
    abstract: str = "Nothing to see.",
    categories: tuple[str, ...] = ("cs.LG",),
    authors: tuple[str, ...] = ("Ada Lovelace",),
) -> Paper:
    return Paper(
        arxiv_id=arxiv_id,
        version=1,
        title=title,
        abstract=abstract,
        authors=authors,
        primary_category=categories[0],
        categories=categories,
        published=dt.datetime(2026, 4, 21, tzinfo=dt.UTC),
    )


def summary(tldr: str) -> Summary:
    return Summary(tldr=tldr, sections={"contributions": "x"}, model="test-model")


def with_title(p: Paper, title: str) -> Paper:
    return replace(p, title=title)
