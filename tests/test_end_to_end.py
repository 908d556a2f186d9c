"""The product as an operator runs it: `newsletter run` with subscribers, a model and the outbox.

Real wires only: the arXiv replay server, the fake OpenAI-compatible server, SQLite, the CLI
in a subprocess. One day is built, summarised, archived and mailed; a second run of the same
day makes no model call and mails nobody again.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_summaries import ENV, FakeOpenAI, ai_section
from test_cli import _config, _env, cli

from newsletter.arxiv.replay import ReplayServer, demo_server
from tests.httpserver import Response, TestServer

SECRET = "e2e-Vb7Kq2Lm9Xw4Rt6Yp1Zs8Nd3Hc5Jf0Ga"


@pytest.fixture(scope="module")
def arxiv() -> Iterator[ReplayServer]:
    with demo_server() as server:
        yield server


@pytest.fixture
def model() -> Iterator[FakeOpenAI]:
    with TestServer() as server:
        yield FakeOpenAI(server)


def _outbox(tmp_path: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in sorted((tmp_path / "outbox").glob("*.eml"))
    ]


def test_a_day_is_summarised_archived_and_mailed_once(
    arxiv: ReplayServer, model: FakeOpenAI, tmp_path: Path
) -> None:
    day = arxiv.date.isoformat()
    config = _config(
        tmp_path,
        ai_summary=ai_section(model.base_url, max_papers_to_summarize=6),
        delivery={"outbox_dir": str(tmp_path / "outbox")},
    )
    env = {
        **_env(arxiv, tmp_path),
        "TEST_AI_KEY": ENV["TEST_AI_KEY"],
        "NEWSLETTER_SECRET_KEY": SECRET,
    }
    for address, extra in (
        ("ada@example.org", []),
        ("grace@example.org", ["--keywords", "reinforcement learning"]),
    ):
        add = ("subscribers", "add", address, "--active", *extra, "--config", str(config))
        added = cli(*add, cwd=tmp_path, env=env)
        assert added.returncode == 0, added.stderr

    first = cli(
        "run", "--date", day, "--today", day, "--config", str(config), cwd=tmp_path, env=env
    )
    assert first.returncode == 0, first.stderr
    assert len(model.bodies) == 6, first.stderr  # capped by max_papers_to_summarize
    page = (tmp_path / "archive" / f"{day}.md").read_text(encoding="utf-8")
    assert page.count("<details>") == 6
    assert "AI summary" in page and "A short summary of" in page
    mails = _outbox(tmp_path)
    assert sorted(str(m["To"]) for m in mails) == ["ada@example.org", "grace@example.org"]
    grace = next(m for m in mails if m["To"] == "grace@example.org")
    assert grace["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = grace.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "reinforcement learning" in html.lower()
    assert "A short summary of" in html  # the TL;DR reached the e-mail

    again = cli(
        "run", "--date", day, "--today", day, "--config", str(config), cwd=tmp_path, env=env
    )
    assert again.returncode == 0, again.stderr
    assert len(model.bodies) == 6  # every summary came from the cache
    assert len(_outbox(tmp_path)) == 2  # nobody mailed twice


def test_sending_without_a_secret_key_stops_before_any_work(
    arxiv: ReplayServer, tmp_path: Path
) -> None:
    done = cli("run", "--config", str(_config(tmp_path)), cwd=tmp_path, env=_env(arxiv, tmp_path))
    assert done.returncode == 2
    assert "NEWSLETTER_SECRET_KEY" in done.stderr and "--no-send" in done.stderr
    assert not (tmp_path / "archive").exists()


def test_demo_mails_sample_readers_and_writes_previews(tmp_path: Path) -> None:
    done = cli("demo", "--out", "out", "--config", str(_config(tmp_path)), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    emls = sorted((out / "outbox").glob("*.eml"))
    previews = sorted((out / "previews").glob("*.html"))
    assert len(emls) == len(previews) == 4
    assert all(str(p) in done.stdout for p in previews)
    again = cli("demo", "--out", "out", "--config", str(_config(tmp_path)), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(list((out / "outbox").glob("*.eml"))) == 4  # a fresh demo, not a second copy


def test_run_refuses_while_another_process_holds_the_day_and_takes_over_a_dead_one(
    arxiv: ReplayServer, tmp_path: Path
) -> None:
    from tests.fixtures_service import start_worker

    env = _env(arxiv, tmp_path)
    day = arxiv.date.isoformat()
    run = ("run", "--date", day, "--today", day, "--no-send")
    assert cli("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    holder = start_worker(["hold-lock", env["NEWSLETTER_DATABASE_URL"], f"digest:{day}"])
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        busy = cli(*run, cwd=tmp_path, env=env)
    finally:
        holder.kill()  # the holder "crashes": its lock row stays behind
        holder.communicate(timeout=10)
    assert busy.returncode == 1
    assert f"another run of {day} is in progress" in busy.stderr
    assert not (tmp_path / "archive").exists()
    done = cli(*run, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "whose process is gone" in done.stderr
    assert (tmp_path / "archive" / f"{day}.md").exists()


def test_debug_logging_never_prints_the_sendgrid_key(arxiv: ReplayServer, tmp_path: Path) -> None:
    key = "SG.do-not-log-me-7Hq2"
    with TestServer() as sendgrid:
        sendgrid.routes[("POST", "/v3/mail/send")] = lambda _r: Response(
            202, b"", headers={"X-Message-Id": "sg-1"}
        )
        config = _config(tmp_path, delivery={"backend": "sendgrid", "sendgrid_host": sendgrid.url})
        env = {
            **_env(arxiv, tmp_path),
            "SENDGRID_API_KEY": key,
            "NEWSLETTER_SECRET_KEY": SECRET,
            "NEWSLETTER_LOG_LEVEL": "DEBUG",
        }
        add = ("subscribers", "add", "ada@example.org", "--active", "--config", str(config))
        assert cli(*add, cwd=tmp_path, env=env).returncode == 0
        day = arxiv.date.isoformat()
        run = ("run", "--date", day, "--today", day, "--debug", "--config", str(config))
        done = cli(*run, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert [r.headers["authorization"] for r in sendgrid.requests] == [f"Bearer {key}"]
    assert key not in done.stdout + done.stderr
    assert "DEBUG" in done.stderr  # debug logging was really on
