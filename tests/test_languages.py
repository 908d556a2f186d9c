"""Summaries in each reader's language (issue 14) against the OpenAI-compatible test server.

Each reader's e-mail carries their language's summary and fixed words; a rerun makes no call
for what is cached; a language whose summary fails falls back to the site language's.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_summaries import FakeOpenAI, _error, ai_section, summary_json
from starlette.testclient import TestClient
from test_cadence import ENTRIES, _add, _point, _settings

from newsletter.arxiv.replay import ReplayServer, demo_server
from newsletter.config import Settings
from newsletter.db import make_engine
from newsletter.domain import IssueEntry, IssueView, Paper
from newsletter.email.loading import Audience
from newsletter.email.selection import Selection, SubscriberPrefs
from newsletter.latex import latex_to_text
from newsletter.rhythm.languages import wanted_pairs
from newsletter.web.app import create_app
from tests.fixtures_week import WEEK, outbox, run_day, set_prefs
from tests.httpserver import Response, TestServer


@pytest.fixture
def arxiv() -> Iterator[ReplayServer]:
    with demo_server() as server:
        yield server


@pytest.fixture
def model() -> Iterator[FakeOpenAI]:
    with TestServer() as server:
        yield FakeOpenAI(server)


def _title(body: dict[str, Any]) -> str:
    match = re.search(r"^Title: (.*)$", body["messages"][-1]["content"], re.MULTILINE)
    return match.group(1) if match else ""


def test_each_reader_reads_their_language_and_a_failing_one_falls_back(
    arxiv: ReplayServer,
    model: FakeOpenAI,
    make_settings: Callable[..., Settings],
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_AI_KEY", "test-key")
    failing = next(e for e in ENTRIES[0::5] if "benchmark" in e.summary.lower())
    failing_title = " ".join(failing.title.split())

    def chinese(body: dict[str, Any]) -> Response:
        title = _title(body)
        if title == failing_title:
            return _error(500, "The server had an error", "server_error")
        reply = {**summary_json(title), "tldr": f"中文要点：{title}"}
        return model.reply(body, json.dumps(reply, ensure_ascii=False))

    model.script("in Chinese.", *[chinese] * 100)
    base = _settings(make_settings, sqlite_url)
    settings = Settings.model_validate(
        {
            **base.model_dump(),
            "secret_key": base.secret_key,
            "ai_summary": ai_section(
                model.base_url,
                language="English",
                languages=["English", "Chinese"],
                max_papers_to_summarize=20,
                max_retries=0,
            ),
        }
    )
    settings = _point(settings, arxiv)
    _add(settings, "en@example.org", ["benchmark"])
    _add(settings, "zh@example.org", ["benchmark"], language="Chinese")
    _add(settings, "plain@example.org", ["benchmark"], language="Chinese")
    set_prefs(settings, "plain@example.org", include_summaries=False)

    first = run_day(arxiv, ENTRIES, settings, 0)
    assert first.outcome == "ok", first.message
    mails = {m.to: m for m in outbox(Path(settings.delivery.outbox_dir))}
    en, zh = mails["en@example.org"], mails["zh@example.org"]
    assert en.papers == zh.papers and failing.arxiv_id in zh.papers
    assert "中文要点" not in en.text and "A short summary of" in en.text
    assert zh.subject.startswith("arXiv 论文摘要") and en.subject.startswith("arXiv digest for")
    assert "退订" in zh.html and "Unsubscribe" in en.html
    for entry in (e for e in ENTRIES if e.arxiv_id in zh.papers):
        title = " ".join(latex_to_text(entry.title).split())  # maths shown as readers read it
        if entry.arxiv_id == failing.arxiv_id:  # the Chinese call failed: the English one shows
            assert f"A short summary of {title}" in " ".join(zh.text.split())
        else:
            assert f"中文要点：{title}"[:30] in " ".join(zh.text.split())
    assert "中文要点" not in mails["plain@example.org"].text  # asked for no summaries
    assert "退订" in mails["plain@example.org"].html
    _archive_offers_the_languages(settings, failing.arxiv_id, zh.papers)
    chinese_calls = model.calls_for("in Chinese.")
    assert chinese_calls == len(zh.papers)  # only papers a Chinese reader sees

    calls = len(model.bodies)
    again = run_day(arxiv, ENTRIES, settings, 0)
    assert again.outcome == "ok", again.message
    # Only the failed Chinese summary is asked for again; everything else comes from the cache.
    assert [_title(b) for b in model.bodies[calls:]] == [failing_title]
    assert len(outbox(Path(settings.delivery.outbox_dir))) == 3  # nobody mailed twice


def _archive_offers_the_languages(
    settings: Settings, failing_id: str, chinese_ids: tuple[str, ...]
) -> None:
    engine = make_engine(settings.database_url)
    try:
        with TestClient(create_app(settings, engine=engine)) as http:
            day = WEEK[0].isoformat()
            plain = http.get(f"/archive/{day}")
            assert plain.status_code == 200
            assert 'href="/archive/2026-11-23?lang=Chinese"' in plain.text
            assert "中文要点" not in plain.text
            page = http.get(f"/archive/{day}", params={"lang": "chinese"})
            assert page.status_code == 200 and "<strong>Chinese</strong>" in page.text
            assert page.text.count("中文要点") == len(chinese_ids) - 1  # the failed one: English
            assert http.get(f"/archive/{day}", params={"lang": "<b>x"}).status_code == 200
    finally:
        engine.dispose()


def _paper(n: int) -> Paper:
    return Paper(
        f"2611.{n:05d}", 1, f"T{n}", "A", ("X",), "cs.LG", ("cs.LG",), dt.datetime(2026, 11, 1)
    )


def test_most_read_pairs_first_across_languages(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(ai_summary={"language": "English", "languages": ["Chinese"]})
    a, b, c = (IssueEntry(_paper(n), 1.0, (), n) for n in (1, 2, 3))
    view = IssueView(dt.date(2026, 11, 23), 3, ("cs.LG",), (a, b), (a, b, c))
    prefs = [
        SubscriberPrefs(1, "1@x.org", language="Chinese"),
        SubscriberPrefs(2, "2@x.org", language="Chinese"),
        SubscriberPrefs(3, "3@x.org", language="Chinese"),
        SubscriberPrefs(4, "4@x.org"),
    ]
    only_c = Selection((c,))
    audience = Audience(prefs, {1: only_c, 2: only_c, 3: Selection((c, b)), 4: Selection((b,))})
    pairs = [(p.arxiv_id, lang) for p, lang in wanted_pairs(view, audience, settings)]
    assert pairs == [
        (c.paper.arxiv_id, "Chinese"),  # three readers
        (b.paper.arxiv_id, "English"),  # the digest and one reader
        (a.paper.arxiv_id, "English"),  # the digest
        (b.paper.arxiv_id, "Chinese"),
    ]
