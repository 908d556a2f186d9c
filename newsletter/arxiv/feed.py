"""Parse rss.arxiv.org announcement feeds (RSS 2.0 and Atom flavours); pure, no I/O.

A broken entry is reported in ``problems`` and skipped, never fatal: one bad item must not cost
the day (the old bot crashed on an entry without an announce type). Truncated or malformed XML
yields whatever entries parse; only a document with nothing recognisable raises FeedError.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from newsletter.arxiv.calendar import ARXIV_TZ
from newsletter.domain import ANNOUNCE_TYPES

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "arxiv": "http://arxiv.org/schemas/atom",
    "dc": "http://purl.org/dc/elements/1.1/",
}
# New-style (2504.01234) and old-style (hep-th/9901001) identifiers, with an optional version.
ARXIV_ID_RE = re.compile(r"(?P<id>\d{4}\.\d{4,5}|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v(?P<v>\d+))?")
_DESCRIPTION_RE = re.compile(
    r"^\s*arXiv:(?P<ref>\S+)\s+Announce Type:\s*(?P<type>[\w\-]+)\s*(?:Abstract:\s*)?(?P<abs>.*)$",
    re.DOTALL,
)
_AUTHOR_SUFFIXES = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"})
_GROUP_WORDS = re.compile(r"\b(collaboration|consortium|team|group|project)\b", re.IGNORECASE)


class FeedError(ValueError):
    """The document is not an arXiv announcement feed at all."""


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One announced paper as the feed describes it (the API adds the rest)."""

    arxiv_id: str  # without version
    version: int
    announce_type: str
    title: str
    abstract: str
    authors: tuple[str, ...]
    categories: tuple[str, ...]  # the first one is the primary category
    link: str
    published: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    date: dt.date | None
    entries: list[FeedEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def normalise_text(text: str) -> str:
    """Whole text, line breaks kept: unify newlines, trim each line, at most one blank line."""
    lines = [" ".join(line.split()) for line in text.replace("\r\n", "\n").split("\n")]
    joined = "\n".join(lines).strip()
    return re.sub(r"\n{3,}", "\n\n", joined)


def normalise_title(text: str) -> str:
    return " ".join(text.split())


def split_authors(raw: str) -> tuple[str, ...]:
    """Split dc:creator's comma-joined names; "A, B and C" and "A, B, and C" give three.

    "and" is a separator only as a whole word, never inside a name (Alexander, Anand), and not
    inside a group name ("Science and Technology Collaboration"). "Jr."-style suffixes stay
    attached to the name before them.
    """
    text = re.sub(r"<[^>]+>", "", raw)
    names: list[str] = []
    for part in re.split(r"[,;]", text):
        chunk = " ".join(part.split())
        if not chunk:
            continue
        if chunk.lower().startswith("and "):
            chunk = chunk[4:].strip()
        pieces = [chunk] if _GROUP_WORDS.search(chunk) else re.split(r"\s+and\s+", chunk)
        for piece in pieces:
            if names and piece.lower() in _AUTHOR_SUFFIXES:
                names[-1] = f"{names[-1]}, {piece}"
            elif piece:
                names.append(piece)
    return tuple(names)


def _text(elem: etree._Element, path: str) -> str:
    found = elem.find(path, NS)
    if found is None:
        return ""
    return "".join(found.itertext())


def _parse_rfc822(value: str) -> dt.datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _parse_iso(value: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _feed_date(stamp: dt.datetime | None, *, local: bool) -> dt.date | None:
    """A feed's date: its own calendar date if stamped in arXiv's zone, else converted."""
    if stamp is None:
        return None
    return stamp.date() if local else stamp.astimezone(ARXIV_TZ).date()


def _entry(
    *,
    ident: str,
    link: str,
    title: str,
    description: str,
    announce_type: str,
    creators: str,
    categories: list[str],
    published: dt.datetime | None,
) -> FeedEntry:
    """Build one entry or raise ValueError saying what is wrong with it."""
    match = _DESCRIPTION_RE.match(description)
    abstract = match.group("abs") if match else description
    kind = announce_type.strip() or (match.group("type") if match else "")
    ref = ARXIV_ID_RE.search(ident) or ARXIV_ID_RE.search(link)
    if match and not ref:
        ref = ARXIV_ID_RE.search(match.group("ref"))
    if ref is None:
        raise ValueError(f"no arXiv identifier (id {ident!r}, link {link!r})")
    label = ref.group("id")
    if not kind:
        raise ValueError(f"{label}: no announce type")
    if kind not in ANNOUNCE_TYPES:
        raise ValueError(f"{label}: unknown announce type {kind!r}")
    clean_title = normalise_title(title)
    if not clean_title:
        raise ValueError(f"{label}: no title")
    version = ref.group("v")
    if version is None and match:
        inner = ARXIV_ID_RE.search(match.group("ref"))
        version = inner.group("v") if inner else None
    return FeedEntry(
        arxiv_id=label,
        version=int(version or 1),
        announce_type=kind,
        title=clean_title,
        abstract=normalise_text(abstract),
        authors=split_authors(creators),
        categories=tuple(dict.fromkeys(c.strip() for c in categories if c.strip())),
        link=link.strip() or f"https://arxiv.org/abs/{label}",
        published=published,
    )


def _rss_items(channel: etree._Element) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for item in channel.iterfind("item"):
        items.append(
            {
                "ident": _text(item, "guid"),
                "link": _text(item, "link"),
                "title": _text(item, "title"),
                "description": _text(item, "description"),
                "announce_type": _text(item, "arxiv:announce_type"),
                "creators": _text(item, "dc:creator"),
                "categories": ["".join(c.itertext()) for c in item.iterfind("category")],
                "published": _parse_rfc822(_text(item, "pubDate")),
            }
        )
    return items


def _atom_items(root: etree._Element) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for entry in root.iterfind("atom:entry", NS):
        link = entry.find("atom:link", NS)
        creators = _text(entry, "dc:creator") or ", ".join(
            _text(a, "atom:name") for a in entry.iterfind("atom:author", NS)
        )
        items.append(
            {
                "ident": _text(entry, "atom:id"),
                "link": link.get("href", "") if link is not None else "",
                "title": _text(entry, "atom:title"),
                "description": _text(entry, "atom:summary"),
                "announce_type": _text(entry, "arxiv:announce_type"),
                "creators": creators,
                "categories": [c.get("term", "") for c in entry.iterfind("atom:category", NS)],
                "published": _parse_iso(_text(entry, "atom:published")),
            }
        )
    return items


def parse_feed(xml: str | bytes) -> ParsedFeed:
    """Entries of an announcement feed, in feed order, plus the problems met on the way."""
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    if not data.strip():
        raise FeedError("the announcement feed is empty (no XML at all)")
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True)
    problems: list[str] = []
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise FeedError(f"the announcement feed is not XML: {exc}") from exc
    if root is None:
        raise FeedError("the announcement feed is not XML (nothing could be parsed)")
    if parser.error_log:
        first = parser.error_log[0]
        problems.append(
            f"malformed XML ({len(parser.error_log)} errors; first at line {first.line}: "
            f"{first.message}); keeping the entries that parsed"
        )
    tag = etree.QName(root).localname
    channel = root.find("channel") if tag == "rss" else None
    if channel is not None:
        raw = _rss_items(channel)
        stamp = _parse_rfc822(_text(channel, "pubDate"))
        date = _feed_date(stamp, local=True) or _feed_date(
            _parse_rfc822(_text(channel, "lastBuildDate")), local=False
        )
    elif tag == "feed" and etree.QName(root).namespace == NS["atom"]:
        raw = _atom_items(root)
        date = _feed_date(_parse_iso(_text(root, "atom:updated")), local=False)
    else:
        raise FeedError(f"not an arXiv announcement feed (root element <{tag}>)")
    entries: list[FeedEntry] = []
    for index, fields in enumerate(raw, start=1):
        try:
            entries.append(_entry(**fields))
        except ValueError as exc:
            problems.append(f"entry {index} skipped: {exc}")
    if not entries and raw:
        raise FeedError(f"no entry of the announcement feed could be read: {'; '.join(problems)}")
    if date is None and entries and entries[0].published is not None:
        date = _feed_date(entries[0].published, local=True)
    return ParsedFeed(date=date, entries=entries, problems=problems)
