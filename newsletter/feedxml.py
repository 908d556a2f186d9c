"""RSS 2.0 and Atom documents built with a real XML library (pure: items in, bytes out).

Every text goes through ElementTree, which escapes it; characters XML 1.0 forbids (control
characters that arXiv metadata sometimes carries) are dropped first, so feeds always parse.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import format_datetime

ATOM_NS = "http://www.w3.org/2005/Atom"
DC_NS = "http://purl.org/dc/elements/1.1/"
_INVALID_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class FeedItem:
    arxiv_id: str
    title: str
    link: str
    authors: tuple[str, ...]
    categories: tuple[str, ...]
    date: dt.datetime  # the date: what "newest first" orders by
    updated: dt.datetime  # Atom: when this entry appeared (unique within a feed)
    published: dt.datetime
    score: float
    matched_keywords: tuple[str, ...]
    summary: str  # TL;DR when there is one, else the abstract
    archive_link: str


@dataclass(frozen=True, slots=True)
class FeedMeta:
    title: str
    link: str  # the site page the feed is about
    self_link: str  # the feed's own URL
    description: str
    feed_id: str
    updated: dt.datetime
    language: str = "en"  # RSS <language>, Atom xml:lang


def clean(text: str) -> str:
    return _INVALID_XML.sub("", text)


def item_text(item: FeedItem) -> str:
    """The description: score and why it matched, then the summary."""
    head = f"Score: {item.score:.1f}"
    if item.matched_keywords:
        head += f" · Matched: {', '.join(item.matched_keywords)}"
    return f"{head} · {', '.join(item.categories)}\n\n{item.summary}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: clean(v) for k, v in attrs.items()})
    if text is not None:
        el.text = clean(text)
    return el


def _iso(value: dt.datetime) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def rss(meta: FeedMeta, items: Sequence[FeedItem]) -> bytes:
    ET.register_namespace("atom", ATOM_NS)
    ET.register_namespace("dc", DC_NS)
    root = ET.Element("rss", {"version": "2.0"})
    channel = _sub(root, "channel")
    _sub(channel, "title", meta.title)
    _sub(channel, "link", meta.link)
    _sub(channel, "description", meta.description)
    _sub(channel, "language", meta.language)
    _sub(channel, "lastBuildDate", format_datetime(meta.updated.astimezone(dt.UTC), usegmt=True))
    _sub(channel, f"{{{ATOM_NS}}}link", href=meta.self_link, rel="self", type="application/rss+xml")
    for item in items:
        el = _sub(channel, "item")
        _sub(el, "title", item.title)
        _sub(el, "link", item.link)
        _sub(el, "guid", item.link, isPermaLink="true")
        _sub(el, "pubDate", format_datetime(item.date.astimezone(dt.UTC), usegmt=True))
        for author in item.authors:
            _sub(el, f"{{{DC_NS}}}creator", author)
        for category in item.categories:
            _sub(el, "category", category)
        _sub(el, "comments", item.archive_link)
        _sub(el, "description", item_text(item))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def atom(meta: FeedMeta, items: Sequence[FeedItem]) -> bytes:
    root = ET.Element(
        "feed", {"xmlns": ATOM_NS, "{http://www.w3.org/XML/1998/namespace}lang": meta.language}
    )
    _sub(root, "id", meta.feed_id)
    _sub(root, "title", meta.title)
    _sub(root, "subtitle", meta.description)
    _sub(root, "updated", _iso(meta.updated))
    _sub(root, "link", href=meta.self_link, rel="self", type="application/atom+xml")
    _sub(root, "link", href=meta.link, rel="alternate", type="text/html")
    author = _sub(root, "author")
    _sub(author, "name", meta.title)
    for item in items:
        entry = _sub(root, "entry")
        _sub(entry, "id", item.link)
        _sub(entry, "title", item.title, type="text")
        _sub(entry, "link", href=item.link, rel="alternate")
        _sub(entry, "link", href=item.archive_link, rel="related", type="text/html")
        _sub(entry, "updated", _iso(item.updated))
        _sub(entry, "published", _iso(item.published))
        for name in item.authors:
            _sub(_sub(entry, "author"), "name", name)
        for category in item.categories:
            _sub(entry, "category", term=category)
        _sub(entry, "summary", item_text(item), type="text")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
