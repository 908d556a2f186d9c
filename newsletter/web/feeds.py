"""``/feed.xml`` (RSS 2.0), ``/feed.atom`` and ``/rss/{category}``: recent papers, newest first,
read from the database only (an unknown category is a 404; arXiv is never fetched from here).

Without filters a feed carries the global digests; with ``?keywords=`` or ``?categories=`` (or
a category path) it searches every day's candidate pool, keywords matched with the site's matcher.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from sqlmodel import Session, col, select
from starlette.responses import Response

from newsletter.arxiv.calendar import announcement_time
from newsletter.config import Settings
from newsletter.domain import IssueEntry
from newsletter.feedxml import FeedItem, FeedMeta, atom, rss
from newsletter.issue_store import load_issue
from newsletter.latex import latex_to_text, latex_to_text_markdown
from newsletter.matching import matcher, normalise_terms
from newsletter.models import IssueRow, daily_issue
from newsletter.summaries import cached_summaries
from newsletter.web.deps import SessionDep, SettingsDep

router = APIRouter()

MAX_TERMS = 20
MAX_TERM_LEN = 100
MAX_ISSUES = 60  # how far back a feed looks


def split_terms(raw: str | None, what: str) -> list[str]:
    """A comma-separated query value, bounded (a 400 names the limit)."""
    if not raw:
        return []
    terms = normalise_terms(raw.split(","))
    if len(terms) > MAX_TERMS or any(len(t) > MAX_TERM_LEN for t in terms):
        raise HTTPException(
            status_code=400, detail=f"at most {MAX_TERMS} {what} of {MAX_TERM_LEN} characters"
        )
    return terms


def check_categories(settings: Settings, categories: Sequence[str]) -> list[str]:
    known = {c.lower(): c for c in settings.categories}
    out = []
    for cat in categories:
        if cat.lower() not in known:
            raise HTTPException(status_code=404)
        out.append(known[cat.lower()])
    return out


def select_entries(
    settings: Settings,
    entries: Sequence[IssueEntry],
    digest: Sequence[IssueEntry],
    *,
    keywords: Sequence[str],
    categories: Sequence[str],
) -> list[IssueEntry]:
    """One issue's feed entries (pure): the digest, or the filtered pool by score."""
    if not keywords and not categories:
        return list(digest)
    found = matcher(keywords, settings.keyword_match) if keywords else None
    wanted = set(categories)
    out = []
    for entry in entries:
        paper = entry.paper
        if wanted and not wanted.intersection(paper.categories):
            continue
        if found is not None and not found.any(f"{paper.title} {paper.abstract}"):
            continue
        out.append(entry)
    out.sort(key=lambda e: -e.score)
    return out


def entry_times(day: dt.date, pool: Sequence[IssueEntry]) -> dict[str, dt.datetime]:
    """Each paper's Atom ``updated``: the announcement time of its issue, plus one second per
    paper announced before it that day, papers ordered by their own last update (then id). So
    every entry of a feed has its own ``updated``, the same in every filtered feed, and within
    minutes of when it truly appeared."""
    announced = announcement_time(day)
    papers = {e.paper.arxiv_id: e.paper for e in pool}
    ordered = sorted(papers.values(), key=lambda p: (p.updated or p.published, p.arxiv_id))
    return {p.arxiv_id: announced + dt.timedelta(seconds=n) for n, p in enumerate(ordered)}


def collect_items(
    session: Session,
    settings: Settings,
    *,
    keywords: Sequence[str],
    categories: Sequence[str],
) -> list[FeedItem]:
    """Recent issues newest first, each one's entries, up to ``web.feed_size`` items."""
    limit = settings.web.feed_size
    dates = session.exec(
        select(col(IssueRow.date))
        .where(daily_issue())
        .order_by(col(IssueRow.date).desc())
        .limit(MAX_ISSUES)
    ).all()
    items: list[FeedItem] = []
    for day in dates:
        view = load_issue(session, day)
        if view is None:
            continue
        chosen = select_entries(
            settings, view.pool, view.digest, keywords=keywords, categories=categories
        )[: limit - len(items)]
        summaries = cached_summaries(session, settings, [e.paper for e in chosen])
        when = dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)
        updated = entry_times(day, [*view.pool, *view.digest])
        for entry in chosen:
            paper = entry.paper
            summary = summaries.get(paper.arxiv_id)
            items.append(
                FeedItem(
                    arxiv_id=paper.arxiv_id,
                    title=" ".join(latex_to_text(paper.title).split()),
                    link=paper.abs_url,
                    authors=tuple(latex_to_text(a) for a in paper.authors),
                    categories=paper.categories,
                    date=when,
                    updated=updated[paper.arxiv_id],
                    published=paper.published,
                    score=entry.score,
                    matched_keywords=entry.matched_keywords,
                    summary=(
                        latex_to_text_markdown(summary.tldr)
                        if summary is not None
                        else latex_to_text(paper.abstract)
                    ),
                    archive_link=f"{settings.base_url}/archive/{day.isoformat()}#{paper.arxiv_id}",
                )
            )
        if len(items) >= limit:
            break
    return items


def _meta(settings: Settings, request: Request, title: str) -> FeedMeta:
    """The self link is the URL as requested (query string as sent, under ``base_url``); the
    feed's id is the same URL with its query sorted, so it does not change with the order."""
    path = f"{settings.base_url}{request.url.path}"
    query = urlencode(sorted(request.query_params.items()))
    raw_query = request.url.query
    return FeedMeta(
        title=title,
        link=f"{settings.base_url}/archive",
        self_link=path + (f"?{raw_query}" if raw_query else ""),
        description=f"Recent arXiv papers selected by {settings.site_name}",
        feed_id=path + (f"?{query}" if query else ""),
        updated=dt.datetime.now(dt.UTC).replace(microsecond=0),
        language=settings.site_language,
    )


def _feed(
    request: Request,
    session: Session,
    settings: Settings,
    *,
    fmt: str,
    keywords: str | None,
    categories: Sequence[str],
    title: str,
) -> Response:
    terms = split_terms(keywords, "keywords")
    items = collect_items(session, settings, keywords=terms, categories=categories)
    if terms:
        title += f" — {', '.join(terms)}"
    meta = _meta(settings, request, title)
    if items:  # the feed changed when its newest entry appeared
        meta = replace(meta, updated=max(item.updated for item in items))
    if fmt == "atom":
        return Response(atom(meta, items), media_type="application/atom+xml; charset=utf-8")
    return Response(rss(meta, items), media_type="application/rss+xml; charset=utf-8")


@router.get("/feed.xml")
def feed_rss(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    keywords: str | None = None,
    categories: str | None = None,
) -> Response:
    cats = check_categories(settings, split_terms(categories, "categories"))
    return _feed(
        request,
        session,
        settings,
        fmt="rss",
        keywords=keywords,
        categories=cats,
        title=settings.site_name,
    )


@router.get("/feed.atom")
def feed_atom(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    keywords: str | None = None,
    categories: str | None = None,
) -> Response:
    cats = check_categories(settings, split_terms(categories, "categories"))
    return _feed(
        request,
        session,
        settings,
        fmt="atom",
        keywords=keywords,
        categories=cats,
        title=settings.site_name,
    )


@router.get("/rss/{category}")
def category_rss(
    category: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    keywords: str | None = None,
) -> Response:
    cats = check_categories(settings, [category])
    return _feed(
        request,
        session,
        settings,
        fmt="rss",
        keywords=keywords,
        categories=cats,
        title=f"{settings.site_name}: {cats[0]}",
    )
