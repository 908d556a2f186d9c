"""Announcement feeds of both flavours, parsed from recorded files; broken input never fatal."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from newsletter.arxiv.feed import FeedError, parse_feed, split_authors
from tests.fixtures_arxiv import ATOM_FEED, RATE_EXCEEDED, RSS_FEED


def test_rss2_feed_parsed_with_date_types_and_full_abstracts() -> None:
    feed = parse_feed(RSS_FEED.read_bytes())
    assert feed.date == dt.date(2026, 4, 27)
    assert feed.problems == []
    assert [e.arxiv_id for e in feed.entries] == ["2604.21952", "2604.21953", "2604.21956"]
    first = feed.entries[0]
    assert first.version == 1 and first.announce_type == "new"
    assert first.categories == ("cs.LG", "cs.AI", "cs.AR", "cs.NE", "cs.RO")
    assert first.abstract.startswith("This work presents a multi-layered methodology")
    assert "visual resolution & stride" in first.abstract  # entity decoded, not cut
    assert first.abstract.endswith("energy-efficient spiking-MFMs.")
    assert first.authors[0] == "Muhammad Shafique" and len(first.authors) == 6


def test_truncated_atom_feed_keeps_every_complete_entry_and_reports_the_rest() -> None:
    feed = parse_feed(ATOM_FEED.read_text(encoding="utf-8"))
    assert feed.date == dt.date(2025, 8, 20)
    assert len(feed.entries) == 86
    assert Counter(e.announce_type for e in feed.entries) == {"new": 41, "cross": 45}
    assert any("malformed XML" in p for p in feed.problems)
    assert any("2508.13435: no announce type" in p for p in feed.problems)
    first = feed.entries[0]
    assert first.arxiv_id == "2508.13167" and first.categories[0] == "cs.AI"
    assert first.authors[:2] == ("Weizhen Li", "Jianbo Lin")


def _without_announce_type(xml: str, arxiv_id: str) -> str:
    """The recorded RSS feed with one item's announce type removed from element and text."""
    start = xml.index(f"<link>https://arxiv.org/abs/{arxiv_id}</link>")
    end = xml.index("</item>", start)
    item = xml[start:end]
    broken = item.replace("<arxiv:announce_type>new</arxiv:announce_type>", "").replace(
        " Announce Type: new", ""
    )
    assert broken != item
    return xml[:start] + broken + xml[end:]


def test_entry_without_announce_type_is_skipped_and_reported() -> None:
    xml = _without_announce_type(RSS_FEED.read_text(encoding="utf-8"), "2604.21953")
    feed = parse_feed(xml)
    assert [e.arxiv_id for e in feed.entries] == ["2604.21952", "2604.21956"]
    assert feed.problems == ["entry 2 skipped: 2604.21953: no announce type"]


def test_announce_type_read_from_description_when_element_missing() -> None:
    xml = RSS_FEED.read_text(encoding="utf-8").replace(
        "<arxiv:announce_type>new</arxiv:announce_type>", "", 1
    )
    feed = parse_feed(xml)
    assert [e.announce_type for e in feed.entries] == ["new", "new", "new"]


def test_abstract_with_newlines_kept_whole() -> None:
    xml = RSS_FEED.read_text(encoding="utf-8").replace(
        "It combines hardware", "First paragraph ends.\r\n\r\n\r\n  It combines hardware", 1
    )
    abstract = parse_feed(xml).entries[0].abstract
    assert "(MFMs). First paragraph ends.\n\nIt combines hardware" in abstract
    assert abstract.endswith("energy-efficient spiking-MFMs.")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "Ada Lovelace, Alan Turing, Grace Hopper",
            ("Ada Lovelace", "Alan Turing", "Grace Hopper"),
        ),
        (
            "Ada Lovelace, Alan Turing and Grace Hopper",
            ("Ada Lovelace", "Alan Turing", "Grace Hopper"),
        ),
        (
            "Ada Lovelace, Alan Turing, and Grace Hopper",
            ("Ada Lovelace", "Alan Turing", "Grace Hopper"),
        ),
        ("Alexander Anand, Sandra Andersen", ("Alexander Anand", "Sandra Andersen")),
        ("John Smith, Jr., Jane Doe", ("John Smith, Jr.", "Jane Doe")),
        (
            "Science and Technology Collaboration, Bo Du",
            ("Science and Technology Collaboration", "Bo Du"),
        ),
        (
            '<a href="https://arxiv.org/a/li_w_1">Weizhen Li</a>, Tian  Xie',
            ("Weizhen Li", "Tian Xie"),
        ),
        ("", ()),
    ],
)
def test_comma_joined_authors_split(raw: str, expected: tuple[str, ...]) -> None:
    assert split_authors(raw) == expected


def test_not_xml_at_all_is_a_clear_error() -> None:
    with pytest.raises(FeedError, match="not XML|not an arXiv announcement feed"):
        parse_feed(RATE_EXCEEDED.read_bytes())
    with pytest.raises(FeedError, match="empty"):
        parse_feed(b"  \n")


def test_feed_where_no_entry_is_readable_is_an_error() -> None:
    xml = RSS_FEED.read_text(encoding="utf-8")
    xml = xml.replace("<arxiv:announce_type>new</arxiv:announce_type>", "")
    xml = xml.replace(" Announce Type: new", "")
    with pytest.raises(FeedError, match="no entry of the announcement feed could be read"):
        parse_feed(xml)


def test_weekend_feed_without_items_has_a_date_and_no_entries() -> None:
    xml = RSS_FEED.read_text(encoding="utf-8")
    empty = xml[: xml.index("<item>")] + xml[xml.rindex("</item>") + len("</item>") :]
    feed = parse_feed(empty)
    assert feed.date == dt.date(2026, 4, 27) and feed.entries == [] and feed.problems == []
