"""The profile on the preferences page (HTTP): save interests, papers (typed and from a
BibTeX upload, unknown ones fetched from the replayed arXiv), authors; remove an example;
bad input gets a clear message and stores nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from newsletter.arxiv.replay import ReplayServer, demo_server
from newsletter.config import Settings, settings_for_tests
from newsletter.db import session_scope
from newsletter.relevance.profiles import ProfileView, profile_of
from subscribers import service
from subscribers.links import preferences_url
from tests.subscriber_helpers import csrf_of, make_client, with_secret


@pytest.fixture(scope="module")
def arxiv() -> Iterator[ReplayServer]:
    with demo_server() as server:
        yield server


@pytest.fixture
def settings(database_url: str, arxiv: ReplayServer) -> Settings:
    return with_secret(
        settings_for_tests(
            database_url=database_url,
            base_url="http://testserver",
            arxiv={"api_url": arxiv.api_url, "delay_seconds": 0, "max_retries": 0},
        )
    )


@pytest.fixture
def reader(engine: Engine, settings: Settings) -> Iterator[tuple[TestClient, str, int]]:
    with session_scope(engine) as s:
        sub = service.add(s, settings=settings, email="p@example.org", active=True).subscriber
        sid, key = sub.id or 0, sub.link_key
    path = preferences_url(settings, sid, key).removeprefix(settings.base_url)
    with make_client(settings, engine) as client:
        yield client, path, sid


def profile(engine: Engine, sid: int) -> ProfileView:
    with session_scope(engine) as s:
        return profile_of(s, sid)


def post_profile(client: TestClient, path: str, files: dict | None = None, **fields: str):
    page = client.get(path)
    data = {"csrf_token": csrf_of(page.text), **fields}
    return client.post(f"{path}/profile", data=data, files=files)


def test_save_upload_and_remove(
    engine: Engine, reader: tuple[TestClient, str, int], arxiv: ReplayServer
) -> None:
    client, path, sid = reader
    a, b, c = arxiv.entries[0], arxiv.entries[1], arxiv.entries[2]
    bib = (
        f"@article{{one, title={{{b.title}}}, eprint={{{b.arxiv_id}}}, archivePrefix={{arXiv}}}}\n"
        f"@misc{{two, url={{https://arxiv.org/abs/{c.arxiv_id}v1}}}}\n"
    )
    done = post_profile(
        client,
        path,
        files={"upload": ("library.bib", bib.encode(), "application/x-bibtex")},
        interests="graph <b>neural</b> networks",
        papers=f"https://arxiv.org/abs/{a.arxiv_id}",
        authors="Ada Lovelace\nAlan Turing",
    )
    assert done.status_code == 200 and "Your preferences are saved" in done.text
    saved = profile(engine, sid)
    assert saved.interests == "graph <b>neural</b> networks"
    assert saved.papers == (a.arxiv_id, b.arxiv_id, c.arxiv_id)
    assert saved.authors == ("Ada Lovelace", "Alan Turing")
    assert "graph &lt;b&gt;neural&lt;/b&gt; networks" in done.text
    for entry in (a, b, c):
        assert f"arXiv:{entry.arxiv_id}" in done.text
    page = client.get(path)
    gone = client.post(
        f"{path}/examples/remove", data={"csrf_token": csrf_of(page.text), "arxiv_id": b.arxiv_id}
    )
    assert gone.status_code == 200
    assert profile(engine, sid).papers == (a.arxiv_id, c.arxiv_id)
    assert f"arXiv:{b.arxiv_id}" not in gone.text


@pytest.mark.parametrize(
    ("fields", "files", "message"),
    [
        ({"papers": "2604.19485\nnot an id"}, None, "not arXiv identifiers"),
        ({"papers": "2604.19485\n2101.00001"}, None, "unknown arXiv paper(s): 2101.00001"),
        (
            {"papers": "2604.19485"},
            {"upload": ("big.bib", b"@misc{x, eprint={2604.19453}}\n" * 180_000, "text/plain")},
            "is larger than 1000 kB",
        ),
        ({}, {"upload": ("empty.bib", b"@misc{x, title={nothing}}", "text/plain")}, "no arXiv"),
        ({"interests": "x" * 2001}, None, "at most 2000"),
    ],
)
def test_bad_input_is_refused_and_stores_nothing(
    engine: Engine,
    reader: tuple[TestClient, str, int],
    fields: dict[str, str],
    files: dict | None,
    message: str,
) -> None:
    client, path, sid = reader
    before = post_profile(client, path, interests="kept", papers="2604.19414")
    assert before.status_code == 200
    refused = post_profile(client, path, files=files, authors="New Person", **fields)
    assert refused.status_code == 400 and message in refused.text
    after = profile(engine, sid)
    assert (after.interests, after.papers, after.authors) == ("kept", ("2604.19414",), ())
