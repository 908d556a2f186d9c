"""Weekly readers (issue 14): five announcement days replayed in order through the pipeline.

A daily reader gets five e-mails, a weekly reader exactly one on Friday holding papers of
several days ranked by their keywords, a reader who switches cadence mid-week misses nothing
and gets nothing twice, and a crash during the weekly send resumes without doubles.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from newsletter.arxiv.replay import (
    RecordedEntry,
    ReplayServer,
    demo_recording_path,
    demo_server,
    load_recording,
)
from newsletter.config import Settings
from newsletter.db import make_engine, session_scope
from newsletter.matching import term_in_text
from newsletter.pipeline import DEFAULT_STAGES
from newsletter.rhythm.weekly import send_weekly, unfinished
from newsletter.runtime.runner import finish_day
from subscribers import service
from tests.fixtures_delivery import FakeSendGrid, sigkill_while_held
from tests.fixtures_week import QUIET, WEEK, outbox, run_day, set_cadence, set_prefs

ROOT = Path(__file__).resolve().parent.parent
SECRET = "cadence-test-secret-key-0123456789abcdef"

ENTRIES = load_recording(demo_recording_path())
LIMIT = 8  # the weekly reader's maximum


@pytest.fixture
def arxiv() -> Iterator[ReplayServer]:
    with demo_server() as server:
        yield server


def _settings(make_settings: Callable[..., Settings], database_url: str, **delivery: object):  # type: ignore[no-untyped-def]
    return make_settings(
        database_url=database_url,
        categories=["cs.LG"],
        keywords=["learning"],
        arxiv={"rss_url": "", "api_url": "", "pdf_url": ""},
        delivery=delivery,
    )


def _point(settings: Settings, server: ReplayServer) -> Settings:
    data = settings.model_dump()
    data["arxiv"].update(
        rss_url=server.rss_url, api_url=server.api_url, pdf_url=server.pdf_url, delay_seconds=0
    )
    data["secret_key"] = SecretStr(SECRET)
    return Settings.model_validate(data)


def _add(settings: Settings, address: str, keywords: list[str], **extra: object) -> None:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        service.add(
            session, settings=settings, email=address, keywords=keywords, active=True, **extra
        )
    engine.dispose()


def _score(entry: RecordedEntry, keywords: list[str]) -> float:
    """The documented rule, one paper at a time: +1 per keyword in title + abstract, +0.5 more
    when it is in the title (the site's word matcher decides what "in" means)."""
    score = 0.0
    for kw in keywords:
        if term_in_text(kw, f"{entry.title} {entry.summary}", "word"):
            score += 1
            if term_in_text(kw, entry.title, "word"):
                score += 0.5
    return score


def test_a_week_daily_weekly_and_a_switch(
    arxiv: ReplayServer, make_settings: Callable[..., Settings], sqlite_url: str
) -> None:
    """SQLite only (PostgreSQL runs the weekly store path in the crash test below)."""
    settings = _point(_settings(make_settings, sqlite_url), arxiv)
    settings = settings.model_copy(
        update={"ai_summary": settings.ai_summary.model_copy(update={"languages": ["Chinese"]})}
    )
    weekly_kw = ["graph", "language model", "benchmark"]
    _add(settings, "daily@example.org", ["benchmark"])
    _add(settings, "weekly@example.org", weekly_kw, cadence="weekly")
    set_prefs(settings, "weekly@example.org", max_papers=LIMIT)
    _add(settings, "zh@example.org", weekly_kw, cadence="weekly", language="Chinese")
    set_prefs(settings, "zh@example.org", max_papers=LIMIT)
    _add(settings, "switch@example.org", ["benchmark"])
    box = Path(settings.delivery.outbox_dir)
    for k in range(5):
        result = run_day(arxiv, ENTRIES, settings, k)
        assert result.outcome == "ok", result.message
        if k == 1:  # after Tuesday's e-mail the reader asks for a weekly one
            set_cadence(settings, "switch@example.org", "weekly")
        mails = outbox(box)
        if k < 4:  # no weekly e-mail before Friday
            assert "weekly@example.org" not in {m.to for m in mails}
    mails = outbox(box)
    per = Counter(m.to for m in mails)
    assert per["daily@example.org"] == 5
    assert per["weekly@example.org"] == 1
    assert per["switch@example.org"] == 3  # Monday, Tuesday, then the weekly Friday
    # "Once a week, in Chinese": the same papers, the fixed words in Chinese.
    (zh,) = [m for m in mails if m.to == "zh@example.org"]
    assert zh.subject.startswith("每周精选：arXiv 论文摘要 2026-11-27")
    assert "截至2026年11月27日星期五的一周" in zh.text and "退订" in zh.html

    # The weekly e-mail: papers of several days, each once, ranked by the reader's keywords.
    (weekly,) = [m for m in mails if m.to == "weekly@example.org"]
    assert weekly.subject.startswith("Weekly: ")
    by_id = {e.arxiv_id: e for e in ENTRIES}
    days = {i: next(k for k in range(5) if by_id[i] in ENTRIES[k::5]) for i in weekly.papers}
    assert len(set(days.values())) >= 2
    assert len(weekly.papers) == len(set(weekly.papers)) == LIMIT  # their maximum, each once
    scores = [_score(by_id[i], weekly_kw) for i in weekly.papers]
    assert scores == sorted(scores, reverse=True) and min(scores) > 0
    best = sorted((_score(e, weekly_kw) for e in ENTRIES), reverse=True)[: len(scores)]
    assert scores == best
    assert zh.papers == weekly.papers
    for i in weekly.papers:  # each card says which day it came from
        day = WEEK[days[i]]
        assert f"arXiv:{i} | {day:%a} {day.day} {day:%b}" in weekly.text
        assert f"arXiv:{i} | {day.month}月{day.day}日" in zh.text

    # The switcher: every "benchmark" paper of the week exactly once, over three e-mails.
    got = [i for m in mails if m.to == "switch@example.org" for i in m.papers]
    daily_got = [i for m in mails if m.to == "daily@example.org" for i in m.papers]
    assert len(got) == len(set(got))
    assert sorted(got) == sorted(daily_got)

    # A rerun of Friday mails nobody again.
    before = len(mails)
    assert run_day(arxiv, ENTRIES, settings, 4).outcome == "ok"
    assert len(outbox(box)) == before


def test_weekly_to_daily_mid_week_gets_the_missed_days_once(
    arxiv: ReplayServer, make_settings: Callable[..., Settings], sqlite_url: str
) -> None:
    settings = _point(_settings(make_settings, sqlite_url, weekly_weekday="mon"), arxiv)
    _add(settings, "daily@example.org", ["benchmark"])
    _add(settings, "back@example.org", ["benchmark"], cadence="weekly")
    box = Path(settings.delivery.outbox_dir)
    for k in range(5):
        assert run_day(arxiv, ENTRIES, settings, k).outcome == "ok"
        if k == 1:  # weekly on Monday; after Tuesday's run they switch to daily
            set_cadence(settings, "back@example.org", "daily")
    mails = outbox(box)
    back = [m for m in mails if m.to == "back@example.org"]
    # Monday's weekly, Wednesday's catch-up (Tuesday), then daily Wednesday to Friday.
    assert [m.subject.startswith("Weekly: ") for m in back] == [True, False, False, False, False]
    (catch_up,) = [m for m in back[1:] if "| Tue 24 Nov" in m.text]
    assert catch_up.papers and all(
        f"arXiv:{i} | Tue 24 Nov" in catch_up.text for i in catch_up.papers
    )
    got = [i for m in back for i in m.papers]
    daily_got = [i for m in mails if m.to == "daily@example.org" for i in m.papers]
    assert len(got) == len(set(got))
    assert sorted(got) == sorted(daily_got)


def test_a_crash_during_the_weekly_send_resumes_without_doubles(
    arxiv: ReplayServer,
    make_settings: Callable[..., Settings],
    database_url: str,
    tmp_path: Path,
) -> None:
    """SIGKILL the process sending Friday's weekly e-mails mid-send, start it again."""
    # One batch in flight at a time, so the kill leaves exactly one batch's outcome unknown.
    settings = _point(_settings(make_settings, database_url, concurrency=1), arxiv)
    readers = [f"w{i}@example.org" for i in range(9)]
    for address in readers:
        _add(settings, address, ["benchmark"], cadence="weekly")
    for k in (2, 3):  # Wednesday and Thursday; the weekly e-mail holds them and Friday
        assert run_day(arxiv, ENTRIES, settings, k).outcome == "ok"
    # Friday's day issue is built and sent (to nobody daily); the weekly step runs apart.
    no_weekly = [s for s in DEFAULT_STAGES if s.name != "weekly"]
    arxiv.entries, arxiv.feed_date = ENTRIES[4::5], WEEK[4]
    friday = finish_day(
        settings, date=WEEK[4], rebuild=True, today=WEEK[4], console=QUIET, stages=no_weekly
    )
    assert friday.outcome == "ok", friday.message
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps(settings.model_dump(mode="json")), encoding="utf-8")
    args = (str(settings_file), WEEK[4].isoformat(), str(PER_BATCH))
    with FakeSendGrid() as sg:
        sigkill_while_held(_worker(args, sg), sg, 2)
        in_flight = {p["to"][0]["email"] for p in sg.bodies()[1]["personalizations"]}
        engine = make_engine(settings.database_url)
        try:  # the day's own issue went out; its weekly e-mails did not: run the day again
            assert unfinished(engine, WEEK[4]) and not unfinished(engine, WEEK[3])
        finally:
            engine.dispose()
        sg.block_at = set()
        again = _worker(args, sg)
        out, err = again.communicate(timeout=60)
        assert again.returncode == 0, err
        counted = Counter(sg.recipients())
        assert json.loads(out.strip().splitlines()[-1])["complete"] is True
    # Nobody twice; only the batch in flight at the kill is unknown (policy "skip").
    assert all(n == 1 for n in counted.values()), counted
    assert set(counted) | in_flight == set(readers)
    assert len(in_flight) == PER_BATCH
    # A third run (e.g. the Friday rerun) sends nothing more.
    engine = make_engine(settings.database_url)
    try:
        assert send_weekly(engine, settings, WEEK[4]).sent == 0
        assert not unfinished(engine, WEEK[4])
    finally:
        engine.dispose()


PER_BATCH = 3


def _worker(args: tuple[str, str, str], sg: FakeSendGrid) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NEWSLETTER_SECRET_KEY": SECRET}
    settings_file, day, per_batch = args
    return subprocess.Popen(
        [sys.executable, "-m", "tests.weekly_worker", settings_file, sg.url, day, per_batch],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
