"""Atom is valid RFC 4287 (RELAX NG, tests/data/feeds/atom-rfc4287.rng): unique and true
``updated`` per entry, the self link as requested, the language from configuration."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from starlette.testclient import TestClient

from newsletter.arxiv.calendar import announcement_time
from newsletter.config import Settings
from newsletter.web.app import create_app
from tests.test_web_service import DAY, OLD, site_of

SCHEMA = etree.RelaxNG(
    etree.parse(str(Path(__file__).resolve().parent / "data" / "feeds" / "atom-rfc4287.rng"))
)
A = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def site(make_settings: Callable[..., Settings]) -> Iterator[tuple[TestClient, Settings, Any]]:
    with site_of(make_settings) as built:
        yield built


XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _atom(client: Any, url: str) -> etree._Element:
    resp = client.get(url)
    assert resp.status_code == 200
    root = etree.fromstring(resp.content)
    assert SCHEMA.validate(root), SCHEMA.error_log
    return root


def _iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    "query", ["", "?keywords=llm&categories=cs.LG", "?categories=cs.AI,cs.LG&keywords=inference"]
)
def test_atom_is_valid_with_unique_true_updated_and_the_requested_self_link(
    site: Any, query: str
) -> None:
    client, settings, _ = site
    root = _atom(client, f"/feed.atom{query}")
    assert root.get(XML_LANG) == "en"
    self_links = [link.get("href") for link in root.iter(f"{A}link") if link.get("rel") == "self"]
    assert self_links == [f"{settings.base_url}/feed.atom{query}"]
    entries = root.findall(f"{A}entry")
    updated = [_iso(e.findtext(f"{A}updated") or "") for e in entries]
    assert len(set(updated)) == len(updated)
    issue_of = {"2605.00001": DAY, "2605.00002": DAY, "2605.00003": DAY, "2605.00004": OLD}
    for entry, when in zip(entries, updated, strict=True):
        arxiv_id = (entry.findtext(f"{A}id") or "").rsplit("/", 1)[1]
        announced = announcement_time(issue_of[arxiv_id])
        assert announced <= when < announced + dt.timedelta(minutes=5)
    if updated:
        assert _iso(root.findtext(f"{A}updated") or "") == max(updated)


def test_an_entry_keeps_its_updated_in_every_filtered_feed(site: Any) -> None:
    client, _, _ = site

    def times(url: str) -> dict[str, str]:
        root = _atom(client, url)
        return {
            e.findtext(f"{A}id") or "": e.findtext(f"{A}updated") or ""
            for e in root.findall(f"{A}entry")
        }

    full, filtered = times("/feed.atom?categories=cs.LG"), times("/feed.atom?keywords=llm")
    shared = set(full) & set(filtered)
    assert shared and all(full[k] == filtered[k] for k in shared)


def test_announcement_time_is_the_evening_before_in_new_york() -> None:
    # Monday's feed was announced on Friday 20:00 EDT; Wednesday's on Tuesday 20:00 EST.
    assert announcement_time(dt.date(2026, 5, 4)) == dt.datetime(2026, 5, 2, 0, 0, tzinfo=dt.UTC)
    assert announcement_time(dt.date(2026, 1, 7)) == dt.datetime(2026, 1, 7, 1, 0, tzinfo=dt.UTC)


def test_language_comes_from_configuration(site: Any) -> None:
    _, settings, engine = site
    german = settings.model_copy(update={"site_language": "de-CH"})
    with TestClient(create_app(german, engine=engine, migrate=False)) as client:
        assert _atom(client, "/feed.atom").get(XML_LANG) == "de-CH"
        rss = etree.fromstring(client.get("/feed.xml").content)
        assert rss.findtext("channel/language") == "de-CH"
