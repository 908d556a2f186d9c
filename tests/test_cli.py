"""The CLI as a user runs it: a subprocess, a replayed arXiv on 127.0.0.1, exit codes and files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fixtures_pipeline import old_bot_rank, recorded_papers, repo_config

from newsletter.arxiv.replay import ReplayServer, demo_server
from newsletter.config import settings_for_tests
from newsletter.ranking import rank_papers
from tests.httpserver import Response, TestServer

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = "cs.AI+cs.CL+cs.DC+cs.LG"


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    clean.update({"PYTHONPATH": str(ROOT), "COLUMNS": "200"}, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "newsletter", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def arxiv() -> Iterator[ReplayServer]:
    with demo_server() as server:
        yield server


def _env(server: ReplayServer, tmp_path: Path) -> dict[str, str]:
    return {
        "NEWSLETTER_ARXIV__RSS_URL": server.rss_url,
        "NEWSLETTER_ARXIV__API_URL": server.api_url,
        "NEWSLETTER_ARXIV__DELAY_SECONDS": "0",
        "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "NEWSLETTER_ARCHIVE_DIR": str(tmp_path / "archive"),
    }


def _config(tmp_path: Path, **over: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**repo_config(), **over}), encoding="utf-8")
    return path


def _page_entries(text: str) -> list[tuple[str, float]]:
    ids = re.findall(r"^\*\*ArXiv ID\*\*: (\S+)v\d+  $", text, re.M)
    scores = [float(s) for s in re.findall(r"^\*\*Score\*\*: (\d+\.\d)  $", text, re.M)]
    assert len(ids) == len(scores) == len(re.findall(r"^### \d+\. \[", text, re.M))
    return list(zip(ids, scores, strict=True))


def _feed_order(server: ReplayServer) -> list[str]:
    feed = httpx.get(server.rss_url + CATEGORIES).text
    return re.findall(r"oai:arXiv\.org:([\d.]+)v\d+", feed)


@pytest.mark.parametrize("mode", ["substring", "word"])
def test_run_date_no_send_writes_every_matching_paper_scored_right(
    arxiv: ReplayServer, tmp_path: Path, mode: str
) -> None:
    day = arxiv.date.isoformat()
    config = _config(tmp_path, keyword_match=mode)
    done = cli(
        "run",
        "--date",
        day,
        "--today",
        day,
        "--no-send",
        "--config",
        str(config),
        cwd=tmp_path,
        env=_env(arxiv, tmp_path),
    )
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "archive" / f"{day}.md").read_text(encoding="utf-8")
    by_id = {p.arxiv_id: p for p in recorded_papers()}
    fetched = tuple(by_id[i] for i in _feed_order(arxiv))
    assert len(fetched) == 50
    cfg = repo_config()
    if mode == "substring":
        want = old_bot_rank(fetched, cfg["keywords"], cfg["exclude_keywords"], cfg["max_papers"])
        want = [(i, s) for i, s in want if s >= cfg["min_score"]]
    else:
        s = settings_for_tests(**{k: v for k, v in cfg.items() if k != "ai_summary"})
        want = [(r.paper.arxiv_id, r.score) for r in rank_papers(fetched, s.keywords, s).digest]
    assert _page_entries(page) == want
    assert "- **Papers announced**: 50" in page
    assert "done: issue" in done.stdout and "sending skipped" in done.stdout


def test_run_without_date_twice_is_no_new_announcement(arxiv: ReplayServer, tmp_path: Path) -> None:
    env = _env(arxiv, tmp_path)
    config = str(_config(tmp_path))
    first = cli("run", "--no-send", "--config", config, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    page = tmp_path / "archive" / f"{arxiv.date}.md"
    stamp = page.stat().st_mtime_ns
    second = cli("run", "--no-send", "--config", config, cwd=tmp_path, env=env)
    assert second.returncode == 0
    assert f"no new announcement: the feed still shows {arxiv.date}" in second.stdout
    assert page.stat().st_mtime_ns == stamp


def test_demo_produces_an_archive(tmp_path: Path) -> None:
    done = cli("demo", "--out", "out", "--config", str(_config(tmp_path)), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    pages = sorted((tmp_path / "out" / "archive").glob("2*.md"))
    assert len(pages) == 1 and pages[0].read_text(encoding="utf-8").count("\n### ") >= 10
    assert (tmp_path / "out" / "archive" / "README.md").exists()
    assert (tmp_path / "out" / "newsletter.db").exists()
    assert str(pages[0]) in done.stdout and "e-mail outbox" in done.stdout
    assert "INFO alembic" not in done.stderr  # Alembic is quiet unless --debug


def test_arxiv_down_exits_1_with_a_message_and_no_traceback(tmp_path: Path) -> None:
    with TestServer() as server:
        server.routes[("GET", "*")] = lambda req: Response(503, "down for maintenance")
        env = {
            "NEWSLETTER_ARXIV__RSS_URL": server.url + "/rss/",
            "NEWSLETTER_ARXIV__API_URL": server.url + "/api/query",
            "NEWSLETTER_ARXIV__DELAY_SECONDS": "0",
            "NEWSLETTER_ARXIV__MAX_RETRIES": "1",
            "NEWSLETTER_ARXIV__BACKOFF_SECONDS": "0",
            "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        }
        quiet = cli("run", "--no-send", cwd=tmp_path, env=env)
        loud = cli("run", "--no-send", "--debug", cwd=tmp_path, env=env)
    assert quiet.returncode == loud.returncode == 1
    assert "error: fetch failed: arXiv is unavailable" in quiet.stderr
    assert "503" in quiet.stderr and "Traceback" not in quiet.stderr
    assert "--debug" in quiet.stderr
    assert "Traceback" in loud.stderr and "ArxivError" in loud.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "2026-02-30"], "'2026-02-30': February 2026 has no day 30 (it has 28 days)"),
        (["--date", "2026-13-01"], "'2026-13-01': there is no month 13 (months are 01 to 12)"),
        (["--date", "yesterday"], "'yesterday' is not a date: write it as YYYY-MM-DD"),
        (["--today", "2026-4-22"], "'2026-4-22' is not a date: write it as YYYY-MM-DD"),
        (["--date", "2026-01-05", "--today", "2026-04-22"], "lets the API reach back to"),
        (["--date", "2026-05-01", "--today", "2026-04-22"], "is in the future"),
    ],
)
def test_bad_dates_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    env = {
        "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "NEWSLETTER_ARXIV__RSS_URL": "http://127.0.0.1:9/rss/",
        "NEWSLETTER_ARXIV__API_URL": "http://127.0.0.1:9/api/query",
        "NEWSLETTER_ARXIV__MAX_RETRIES": "0",
        "NEWSLETTER_ARXIV__DELAY_SECONDS": "0",
    }
    done = cli("run", "--no-send", *args, cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
