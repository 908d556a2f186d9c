"""A day's announcement over real HTTP: feed + API merged, cross-lists kept once, no-news days."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from newsletter.arxiv.client import ArxivClient
from newsletter.arxiv.replay import ReplayServer, answer_api, demo_server, render_feed
from newsletter.arxiv.source import AnnouncementDateError, deduplicate, fetch_announcement
from newsletter.config import Settings
from tests.fixtures_arxiv import ATOM_FEED, FakeClock, recorded_entries, source_settings
from tests.httpserver import Request, Response, TestServer

DAY = dt.date(2026, 4, 22)  # the recorded papers' announcement date (a Wednesday)
ENTRIES = recorded_entries()
BY_ID = {e.arxiv_id: e for e in ENTRIES}


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    with demo_server() as srv:
        yield srv


def _client(settings_url: str, **overrides: Any) -> tuple[ArxivClient, Settings]:
    settings = source_settings(settings_url, **overrides)
    clock = FakeClock()
    return ArxivClient(settings.arxiv, clock=clock, sleep=clock.sleep), settings


def test_todays_feed_merged_with_full_api_metadata(replay: ReplayServer) -> None:
    client, settings = _client(replay.url)
    with client:
        ann = fetch_announcement(client, settings, None)
    assert ann is not None and ann.date == DAY and ann.source == "rss"
    assert len(ann.papers) == 50
    assert Counter(p.announce_type for p in ann.papers) == {"new": 36, "cross": 14}
    for paper in ann.papers:
        recorded = BY_ID[paper.arxiv_id]
        assert paper.primary_category == recorded.primary_category
        assert paper.authors == recorded.authors
        assert paper.categories == recorded.categories
        assert (paper.announce_type == "new") == (paper.primary_category == "cs.LG")
    with_comment = [p for p in ann.papers if p.comment]
    assert len(with_comment) == 19
    assert sum(1 for p in ann.papers if p.journal_ref) == 4
    assert sum(1 for p in ann.papers if p.doi) == 1
    paths = [r.path for r in replay.requests]
    assert paths == ["/rss/cs.LG", "/api/query"]


def _feed_of_two_categories() -> bytes:
    """The old bot's trap: cs.AI's feed (cs.LG papers as ``cross``) then cs.LG's (as ``new``)."""
    ai = render_feed(ENTRIES, ["cs.AI"], DAY).decode()
    lg = render_feed(ENTRIES, ["cs.LG"], DAY).decode()
    lg_items = lg[lg.index("<item>") : lg.rindex("</item>") + len("</item>")]
    return (ai.replace("  </channel>", lg_items + "\n  </channel>")).encode()


@pytest.fixture
def two_feed_server() -> Iterator[TestServer]:
    with TestServer() as srv:
        srv.routes[("GET", "/rss/cs.AI+cs.LG")] = lambda _r: Response(
            200, _feed_of_two_categories(), content_type="application/rss+xml"
        )
        srv.routes[("GET", "/rss/cs.AI")] = lambda _r: Response(
            200, render_feed(ENTRIES, ["cs.AI"], DAY), content_type="application/rss+xml"
        )

        def api(req: Request) -> Response:
            status, body = answer_api(req.query, ENTRIES)
            return Response(status, body, content_type="application/atom+xml")

        srv.routes[("GET", "/api/query")] = api
        yield srv


@pytest.mark.parametrize("types", [["new"], ["new", "cross"]])
def test_cross_listed_paper_survives_once_with_its_primary_category(
    two_feed_server: TestServer, types: list[str]
) -> None:
    both = [e for e in ENTRIES if e.primary_category == "cs.LG" and "cs.AI" in e.categories]
    assert both, "the recording has cs.LG papers cross-listed to cs.AI"
    client, settings = _client(
        two_feed_server.url, categories=["cs.AI", "cs.LG"], announce_types=types
    )
    with client:
        ann = fetch_announcement(client, settings, None)
    assert ann is not None
    ids = [p.arxiv_id for p in ann.papers]
    assert len(ids) == len(set(ids))
    for entry in both:
        (paper,) = [p for p in ann.papers if p.arxiv_id == entry.arxiv_id]
        assert paper.announce_type == "new" and paper.primary_category == "cs.LG"
    # feed order: the cs.AI section came first, so its papers lead
    ai_first = [p.arxiv_id for p in ann.papers][: len(both)]
    assert set(ai_first) <= {e.arxiv_id for e in ENTRIES if "cs.AI" in e.categories}


def test_cross_only_entry_of_a_followed_primary_counts_as_new(two_feed_server: TestServer) -> None:
    """Only cs.AI's feed was read, but cs.LG is followed too: its papers are new, not cross."""
    client, settings = _client(
        two_feed_server.url, categories=["cs.AI", "cs.LG"], announce_types=["new"]
    )
    two_feed_server.routes[("GET", "/rss/cs.AI+cs.LG")] = two_feed_server.routes[
        ("GET", "/rss/cs.AI")
    ]
    with client:
        ann = fetch_announcement(client, settings, None)
    assert ann is not None
    lg_primary = {e.arxiv_id for e in ENTRIES if e.primary_category == "cs.LG"} & {
        p.arxiv_id for p in ann.papers
    }
    assert lg_primary
    assert all(p.announce_type == "new" for p in ann.papers)


def test_announce_types_filter(replay: ReplayServer) -> None:
    client, settings = _client(replay.url, announce_types=["cross"])
    with client:
        ann = fetch_announcement(client, settings, None)
    assert ann is not None and len(ann.papers) == 14
    assert all(p.announce_type == "cross" and p.primary_category != "cs.LG" for p in ann.papers)


def test_paper_missing_from_api_keeps_feed_metadata(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with TestServer() as srv:
        srv.routes[("GET", "/rss/cs.AI")] = lambda _r: Response(200, ATOM_FEED.read_bytes())

        def api(req: Request) -> Response:
            status, body = answer_api(req.query, ENTRIES)
            return Response(status, body, content_type="application/atom+xml")

        srv.routes[("GET", "/api/query")] = api
        client, settings = _client(srv.url, categories=["cs.AI"], arxiv={"max_retries": 0})
        with client, caplog.at_level(logging.WARNING):
            ann = fetch_announcement(client, settings, None)
    assert ann is not None and ann.date == dt.date(2025, 8, 20)
    assert len(ann.papers) == 86
    first = ann.papers[0]
    assert first.arxiv_id == "2508.13167" and first.primary_category == "cs.AI"
    assert first.authors[0] == "Weizhen Li" and first.abstract.startswith("Recent advances")
    assert "86 of 86 papers not found in the arXiv API" in caplog.text
    assert "no announce type" in caplog.text  # the truncated last entry was reported


def test_past_date_built_from_api_window(replay: ReplayServer) -> None:
    replay.feed_date = DAY + dt.timedelta(days=5)  # the feed has moved on
    client, settings = _client(replay.url)
    with client:
        ann = fetch_announcement(client, settings, DAY, today=DAY + dt.timedelta(days=5))
    assert ann is not None and ann.source == "api" and ann.date == DAY
    assert len(ann.papers) == 50
    assert [p.announce_type for p in ann.papers][:36] == ["new"] * 36
    assert replay.requests[0].path.startswith("/rss/")  # the feed is asked first
    query = replay.requests[1].query["search_query"][0]
    assert "submittedDate:[202604201800 TO 202604211759]" in query


def test_date_of_current_feed_uses_feed(replay: ReplayServer) -> None:
    client, settings = _client(replay.url)
    with client:
        ann = fetch_announcement(client, settings, DAY, today=DAY)
    assert ann is not None and ann.source == "rss" and len(ann.papers) == 50


def test_no_announcement_on_a_weekend_day(replay: ReplayServer) -> None:
    client, settings = _client(replay.url)
    saturday = dt.date(2026, 4, 25)
    with client:
        assert fetch_announcement(client, settings, saturday, today=saturday) is None
    assert replay.requests == []


def test_no_announcement_when_window_is_empty(replay: ReplayServer) -> None:
    client, settings = _client(replay.url)
    tuesday = dt.date(2026, 4, 21)  # the feed is Wednesday's; nothing recorded for Tuesday
    with client:
        assert fetch_announcement(client, settings, tuesday, today=DAY) is None
    assert [r.path for r in replay.requests] == ["/rss/cs.LG", "/api/query"]


def test_no_announcement_when_feed_is_empty() -> None:
    empty = render_feed(ENTRIES, ["q-bio.QM"], DAY)  # a feed of the day with no items
    with TestServer() as srv:
        srv.routes[("GET", "/rss/q-bio.QM")] = lambda _r: Response(200, empty)
        client, settings = _client(srv.url, categories=["q-bio.QM"])
        with client:
            assert fetch_announcement(client, settings, None) is None
            assert fetch_announcement(client, settings, DAY, today=DAY) is None
        assert [r.path for r in srv.requests] == ["/rss/q-bio.QM", "/rss/q-bio.QM"]


def test_dates_out_of_range_are_refused(replay: ReplayServer) -> None:
    replay.feed_date = DAY + dt.timedelta(days=8)
    client, settings = _client(replay.url, days_back=7)
    with client:
        with pytest.raises(AnnouncementDateError, match="days_back=7"):
            fetch_announcement(client, settings, DAY, today=DAY + dt.timedelta(days=8))
        with pytest.raises(AnnouncementDateError, match="future"):
            fetch_announcement(client, settings, DAY, today=DAY - dt.timedelta(days=1))
    assert not any(r.path.startswith("/api/") for r in replay.requests)  # no API window tried


def test_a_feed_of_the_date_is_used_however_old_the_date(replay: ReplayServer) -> None:
    client, settings = _client(replay.url, days_back=7)
    with client:
        ann = fetch_announcement(client, settings, DAY, today=DAY + dt.timedelta(days=200))
    assert ann is not None and ann.source == "rss" and ann.date == DAY and len(ann.papers) == 50


def test_deduplication_by_title_and_link(replay: ReplayServer) -> None:
    client, settings = _client(replay.url)
    with client:
        ann = fetch_announcement(client, settings, None)
    assert ann is not None
    a, b, c = ann.papers[:3]
    twin = replace(b, title=a.title.upper() + "!")
    papers = [a, twin, c]
    assert deduplicate(papers, settings) == [a, c]
    only_ids = settings.model_copy(update={"deduplication_methods": ["id"]})
    assert deduplicate(papers, only_ids) == papers
    off = settings.model_copy(update={"enable_deduplication": False})
    assert deduplicate([a, a], off) == [a, a]
