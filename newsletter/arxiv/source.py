"""A day's announcement: feed entries merged with full API metadata, each paper once.

Rules (documented in docs/arxiv.md):
- ``date=None``: today's feed, whatever its date. ``date=D``: the feed when it is D's, otherwise
  the API's papers first submitted in D's submission window (see arxiv.calendar); D may lie at
  most ``days_back`` days before today.
- Entries of the same paper collapse into one, with the strongest announce type
  (new > cross > replace > replace-cross). A ``cross`` whose API primary category is configured
  and whose submission falls in this announcement's window is the paper's ``new`` announcement
  (the old bot lost such papers). Only then are ``announce_types`` applied.
- The API's metadata wins; a paper the API lacks keeps the feed's metadata, with a warning.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from newsletter.arxiv.calendar import (
    ARXIV_TZ,
    announcement_date,
    is_announcement_day,
    submission_window,
)
from newsletter.arxiv.client import ArxivClient, ArxivError
from newsletter.arxiv.feed import FeedEntry, FeedError, ParsedFeed, parse_feed
from newsletter.config import Settings
from newsletter.domain import ANNOUNCE_TYPES, Announcement, Paper

log = logging.getLogger(__name__)

_UPGRADE = {"cross": "new", "replace-cross": "replace"}


class AnnouncementDateError(ValueError):
    """The requested date cannot be built (in the future, or older than ``days_back``)."""


@dataclass(slots=True)
class _Seen:
    entry: FeedEntry
    announce_type: str


def _strongest(a: str, b: str) -> str:
    return a if ANNOUNCE_TYPES.index(a) <= ANNOUNCE_TYPES.index(b) else b


def collapse_entries(entries: Iterable[FeedEntry]) -> list[_Seen]:
    """One item per paper, in order of first appearance, with its strongest announce type."""
    seen: dict[str, _Seen] = {}
    for entry in entries:
        prior = seen.get(entry.arxiv_id)
        if prior is None:
            seen[entry.arxiv_id] = _Seen(entry, entry.announce_type)
        else:
            prior.announce_type = _strongest(prior.announce_type, entry.announce_type)
    return list(seen.values())


def _resolved_type(kind: str, paper: Paper | None, categories: set[str], day: dt.date) -> str:
    """A cross-listing of a paper whose primary category we follow is really its own kind."""
    if paper is None or kind not in _UPGRADE or paper.primary_category not in categories:
        return kind
    if kind == "cross" and announcement_date(paper.published) != day:
        return kind  # an older paper cross-listed today: a genuine cross-list
    return _UPGRADE[kind]


def _could_be_wanted(kind: str, wanted: set[str]) -> bool:
    return kind in wanted or _UPGRADE.get(kind) in wanted


def paper_from_entry(entry: FeedEntry, day: dt.date) -> Paper:
    """The feed's own metadata as a Paper (when the API does not know the paper)."""
    published = entry.published or dt.datetime.combine(day, dt.time(0), tzinfo=ARXIV_TZ)
    return Paper(
        arxiv_id=entry.arxiv_id,
        version=entry.version,
        title=entry.title,
        abstract=entry.abstract,
        authors=entry.authors,
        primary_category=entry.categories[0] if entry.categories else "",
        categories=entry.categories,
        published=published,
        announce_type=entry.announce_type,
    )


def _title_key(paper: Paper) -> str:
    return re.sub(r"[^0-9a-z]+", "", paper.title.casefold())


def _link_key(paper: Paper) -> str:
    return re.sub(r"v\d+$", "", re.sub(r"^https?://(www\.)?", "", paper.abs_url).rstrip("/"))


def deduplicate(papers: Sequence[Paper], settings: Settings) -> list[Paper]:
    """Drop later papers sharing an id, a title or a link with an earlier one (as configured)."""
    if not settings.enable_deduplication:
        return list(papers)
    methods = set(settings.deduplication_methods)
    seen: set[tuple[str, str]] = set()
    kept: list[Paper] = []
    for paper in papers:
        keys = []
        if "id" in methods:
            keys.append(("id", paper.arxiv_id))
        if "title" in methods:
            keys.append(("title", _title_key(paper)))
        if "link" in methods:
            keys.append(("link", _link_key(paper)))
        clash = next((k for k in keys if k in seen), None)
        if clash is not None:
            log.info("duplicate %s dropped (same %s as an earlier paper)", paper.arxiv_id, clash[0])
            continue
        seen.update(keys)
        kept.append(paper)
    return kept


def announcement_from_feed(
    client: ArxivClient, settings: Settings, feed: ParsedFeed, day: dt.date
) -> Announcement | None:
    """Merge the feed's entries with API metadata; None when nothing of the wanted kinds is left."""
    wanted: set[str] = set(settings.announce_types)
    categories = set(settings.categories)
    seen = collapse_entries(feed.entries)
    candidates = [s for s in seen if _could_be_wanted(s.announce_type, wanted)]
    metadata = client.fetch_metadata([s.entry.arxiv_id for s in candidates]) if candidates else {}
    missing = [s.entry.arxiv_id for s in candidates if s.entry.arxiv_id not in metadata]
    if missing:
        log.warning(
            "%d of %d papers not found in the arXiv API; using the feed's metadata for: %s",
            len(missing),
            len(candidates),
            ", ".join(missing),
        )
    papers: list[Paper] = []
    for item in candidates:
        api_paper = metadata.get(item.entry.arxiv_id)
        kind = _resolved_type(item.announce_type, api_paper, categories, day)
        if kind not in wanted:
            continue
        base = api_paper or paper_from_entry(item.entry, day)
        papers.append(replace(base, announce_type=kind))
    papers = deduplicate(papers, settings)
    log.info(
        "announcement of %s from the feed: %d entries, %d papers, %d kept (types %s)",
        day,
        len(feed.entries),
        len(seen),
        len(papers),
        ", ".join(settings.announce_types),
    )
    if not papers:
        return None
    return Announcement(date=day, papers=tuple(papers), source="rss")


def announcement_from_api(
    client: ArxivClient, settings: Settings, day: dt.date
) -> Announcement | None:
    """D's papers by submission window; replacements cannot be found this way (logged)."""
    start, end = submission_window(day)
    categories = set(settings.categories)
    found = client.search_window(settings.categories, start, end)
    if not found:
        log.info("no papers submitted between %s and %s: no announcement on %s", start, end, day)
        return None
    typed = [
        replace(p, announce_type="new" if p.primary_category in categories else "cross")
        for p in found
    ]
    typed.sort(key=lambda p: (ANNOUNCE_TYPES.index(p.announce_type), p.arxiv_id))
    if {"replace", "replace-cross"} & set(settings.announce_types):
        log.info("replacements are not in the API's submission window; only new and cross papers")
    papers = deduplicate([p for p in typed if p.announce_type in settings.announce_types], settings)
    log.info(
        "announcement of %s from the API window: %d found, %d kept", day, len(found), len(papers)
    )
    if not papers:
        return None
    return Announcement(date=day, papers=tuple(papers), source="api")


def _read_feed(client: ArxivClient, settings: Settings) -> ParsedFeed:
    feed = parse_feed(client.fetch_feed(settings.categories))
    for problem in feed.problems:
        log.warning("announcement feed: %s", problem)
    return feed


def fetch_announcement(
    client: ArxivClient,
    settings: Settings,
    date: dt.date | None,
    *,
    today: dt.date | None = None,
) -> Announcement | None:
    """The announcement of ``date`` (None: today's feed); None when there is none that day."""
    if date is None:
        feed = _read_feed(client, settings)
        day = feed.date or dt.datetime.now(ARXIV_TZ).date()
        if not feed.entries:
            log.info("the announcement feed (dated %s) has no entries: no announcement", day)
            return None
        return announcement_from_feed(client, settings, feed, day)

    if not is_announcement_day(date):
        log.info("%s is a %s: arXiv makes no announcement", date, date.strftime("%A"))
        return None
    # The feed first, whatever the date: when it is D's, it is the announcement itself (a
    # recorded or mirrored feed may be months old). Only the API window is bounded by days_back.
    try:
        feed = _read_feed(client, settings)
    except (ArxivError, FeedError) as exc:
        log.warning("announcement feed unavailable (%s); using the API instead", exc)
    else:
        if feed.date == date:
            if not feed.entries:
                log.info("the feed of %s has no entries: no announcement", date)
                return None
            return announcement_from_feed(client, settings, feed, date)
        log.info("the feed is dated %s, not %s; using the API's submission window", feed.date, date)
    current = today or dt.datetime.now(ARXIV_TZ).date()
    if date > current:
        raise AnnouncementDateError(f"{date.isoformat()} is in the future (today is {current})")
    if (current - date).days > settings.days_back:
        raise AnnouncementDateError(
            f"{date.isoformat()} is {(current - date).days} days ago and the feed is not that "
            f"day's; days_back={settings.days_back} lets the API reach back to "
            f"{current - dt.timedelta(settings.days_back)}"
        )
    return announcement_from_api(client, settings, date)
