"""The replayed arXiv speaks the real wire formats: feedparser and the `arxiv` package read it."""

from __future__ import annotations

import datetime as dt

import arxiv
import feedparser
import httpx

from newsletter.arxiv.replay import demo_server


def test_demo_server_feed_api_and_pdf_over_http() -> None:
    with demo_server() as srv:
        assert srv.date == dt.date(2026, 4, 22) and srv.categories == ("cs.LG",)
        feed = feedparser.parse(httpx.get(f"{srv.rss_url}cs.LG").content)
        assert not feed.bozo and len(feed.entries) == 50
        assert feed.entries[0]["arxiv_announce_type"] == "new"

        client = arxiv.Client(delay_seconds=0, num_retries=0)
        client.query_url_format = srv.api_url + "?{}"
        results = list(client.results(arxiv.Search(id_list=["2604.19485", "2604.19453"])))
        assert [r.get_short_id() for r in results] == ["2604.19485v1", "2604.19453v1"]
        assert results[0].primary_category == "cs.LG" and len(results[0].authors) == 13

        bad = httpx.get(srv.api_url, params={"id_list": "abc"})
        assert bad.status_code == 400 and b"incorrect id format for abc" in bad.content
        pdf = httpx.get(f"{srv.pdf_url}2604.19485v1")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
        assert httpx.get(f"{srv.pdf_url}9999.99999v1").status_code == 404
        assert [r.path for r in srv.requests][:2] == ["/rss/cs.LG", "/api/query"]
        assert len(srv.requests) == 5
