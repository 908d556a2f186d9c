"""``newsletter preview``: a subscriber's digest from a real database, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
from pydantic import SecretStr
from sqlmodel import Session

from newsletter.config import settings_for_tests
from newsletter.db import make_engine, session_scope
from newsletter.email.preview import preview_email
from newsletter.issue_store import build_issue, save_papers
from newsletter.models import SummaryRow
from newsletter.ranking import rank_papers
from subscribers.models import Subscriber
from subscribers.tokens import read_token
from tests.fixtures_email import RECORDED_DAY, recorded_papers

ROOT = Path(__file__).resolve().parent.parent
SECRET = "preview-test-secret"


def seed(database_url: str) -> int:
    """The recorded day as an issue, one subscriber, and a summary of one of their papers."""
    papers = recorded_papers()
    settings = settings_for_tests(database_url=database_url, keywords=["LLM"], max_papers=5)
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        save_papers(session, papers)
        build_issue(
            session,
            date=RECORDED_DAY,
            ranking=rank_papers(papers, settings.keywords, settings),
            categories=["cs.LG"],
            source="api",
        )
        sub = Subscriber(
            email="reader@example.org",
            status="active",
            keywords=["diffusion", "reinforcement learning"],
            max_papers=3,
        )
        session.add(sub)
        session.add(
            SummaryRow(
                arxiv_id="2604.19009",
                version=1,
                model="qwen-long",
                prompt_hash="h",
                language="English",
                source="abstract",
                tldr="Distils **diffusion** with RL rewards. <script>x</script>",
            )
        )
        session.flush()
        assert sub.id is not None
        sub_id = sub.id
    engine.dispose()
    return sub_id


def run_cli(tmp_path: Path, database_url: str, *args: str, secret: bool = True):
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"database_url": database_url, "base_url": "https://digest.example.org"})
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["PYTHONPATH"] = str(ROOT)
    if secret:
        env["NEWSLETTER_SECRET_KEY"] = SECRET
    return subprocess.run(
        [sys.executable, "-m", "newsletter", "preview", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )


def test_preview_writes_the_subscribers_personal_digest(tmp_path: Path, sqlite_url: str) -> None:
    sub_id = seed(sqlite_url)
    out = tmp_path / "preview" / "digest.html"
    result = run_cli(tmp_path, sqlite_url, "--email", "Reader@Example.org ", "--out", str(out))
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    text = out.with_suffix(".txt").read_text()
    assert "Distils <strong>diffusion</strong> with RL rewards." in html
    assert "<script>x" not in html
    assert "Why you got it: diffusion" in text
    assert text.count("=" * 70) == 3  # their max_papers, not the site's 5
    unsub = next(line for line in text.splitlines() if line.startswith("Unsubscribe: "))
    token = unquote(unsub.split("/unsubscribe/")[1])
    assert read_token(SECRET, "unsubscribe", token, 60).subscriber_id == sub_id
    assert unsub.split(": ", 1)[1] in html
    assert "-unsubscribe_url-" not in html and "-preferences_url-" not in text


def test_preview_errors_are_clear(tmp_path: Path, sqlite_url: str) -> None:
    out = tmp_path / "x.html"
    no_issue = run_cli(tmp_path, sqlite_url, "--email", "nobody@example.org", "--out", str(out))
    assert no_issue.returncode == 1 and "no subscriber" in no_issue.stderr
    seed(sqlite_url)
    unknown = run_cli(tmp_path, sqlite_url, "--email", "x@example.org", "--out", str(out))
    assert (
        unknown.returncode == 1
        and "no subscriber with the address 'x@example.org'" in unknown.stderr
    )
    no_key = run_cli(
        tmp_path, sqlite_url, "--email", "reader@example.org", "--out", str(out), secret=False
    )
    assert no_key.returncode == 2 and "NEWSLETTER_SECRET_KEY" in no_key.stderr
    wrong_day = run_cli(
        tmp_path,
        sqlite_url,
        "--email",
        "reader@example.org",
        "--out",
        str(out),
        "--date",
        "2026-01-01",
    )
    assert wrong_day.returncode == 1 and "no issue for 2026-01-01" in wrong_day.stderr
    bad_date = run_cli(
        tmp_path,
        sqlite_url,
        "--email",
        "reader@example.org",
        "--out",
        str(out),
        "--date",
        "yesterday",
    )
    assert bad_date.returncode == 2
    assert not out.exists()


@pytest.mark.parametrize("include", [True, False])
def test_preview_summaries_follow_version_model_and_subscriber(
    database_url: str, include: bool
) -> None:
    seed(database_url)
    settings = settings_for_tests(database_url=database_url).model_copy(
        update={"secret_key": SecretStr(SECRET)}
    )
    engine = make_engine(database_url)
    with Session(engine) as session:
        session.add(
            SummaryRow(
                arxiv_id="2604.19009",
                version=0,
                model="qwen-long",
                prompt_hash="h",
                language="English",
                source="abstract",
                tldr="STALE VERSION",
            )
        )
        session.add(
            SummaryRow(
                arxiv_id="2604.19009",
                version=1,
                model="other-model",
                prompt_hash="h",
                language="English",
                source="abstract",
                tldr="OTHER MODEL",
            )
        )
        sub = session.get(Subscriber, 1)
        assert sub is not None
        sub.include_summaries = include
        session.add(sub)
        session.commit()
        result = preview_email(session, settings, "reader@example.org", RECORDED_DAY)
    engine.dispose()
    text = result.rendered.text
    assert ("TL;DR: Distils **diffusion** with RL rewards." in text) is include
    assert "STALE VERSION" not in text and "OTHER MODEL" not in text
    assert result.matched and result.status == "active" and result.issue_date == RECORDED_DAY
