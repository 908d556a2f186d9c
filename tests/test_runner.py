"""finish_day: one lifecycle under the day's lock; unfinished days finished within the window."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

from fixtures_pipeline import announcement, repo_config
from rich.console import Console
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.delivery.models import Delivery
from newsletter.models import IssueRow, RunRow
from newsletter.pipeline import DEFAULT_STAGES, Stage, check_announcement
from newsletter.runtime.locking import DayLock
from newsletter.runtime.runner import (
    finish_day,
    finish_unfinished,
    lock_name,
    run_day,
    waiting_by_issue,
)
from tests.fixtures_delivery import seed_subscribers, with_secret
from tests.fixtures_service import count_runs, start_worker, wait_for

DAY = dt.date(2026, 4, 21)
QUIET = Console(file=open("/dev/null", "w"), force_terminal=False)  # noqa: SIM115


def _stages(day: dt.date = DAY) -> list[Stage]:
    """The default stages with the recorded announcement of ``day`` instead of the network."""
    ann = announcement(day)
    fetch = Stage("fetch", lambda ctx: check_announcement(ctx, ann))
    return [fetch, *(s for s in DEFAULT_STAGES if s.name != "fetch")]


def _settings(make_settings: Callable[..., Settings], database_url: str, **kw: object) -> Settings:
    cfg = repo_config()
    return with_secret(
        make_settings(database_url=database_url, keywords=cfg["keywords"], **kw)  # type: ignore[arg-type]
    )


def _interrupt(engine: Engine, keep: int) -> None:
    """As if the sending process died after ``keep`` e-mails: the rest queued again."""
    with engine.begin() as conn:
        ids = conn.execute(select(Delivery.id).order_by(Delivery.id)).scalars().all()
        conn.execute(update(Delivery).where(Delivery.id.in_(ids[keep:])).values(status="queued"))
        conn.execute(update(IssueRow).values(status="sending"))


def test_a_locked_day_is_refused_and_not_recorded(
    engine: Engine, database_url: str, make_settings: Callable[..., Settings]
) -> None:
    holder = DayLock(engine, lock_name(DAY))
    assert holder.acquire()
    try:
        result = finish_day(
            _settings(make_settings, database_url), date=DAY, engine=engine, stages=_stages()
        )
    finally:
        holder.release()
    assert (result.outcome, result.exit_code) == ("locked", 1)
    assert "another run of 2026-04-21 is in progress" in result.message
    assert count_runs(engine) == 0


def test_dead_run_is_marked_abandoned_by_the_next(
    engine: Engine, database_url: str, make_settings: Callable[..., Settings]
) -> None:
    with session_scope(engine) as session:
        session.add(RunRow(date=DAY, trigger="schedule", outcome="running"))
    finish_day(
        _settings(make_settings, database_url),
        date=DAY,
        engine=engine,
        stages=_stages(),
        console=QUIET,
    )
    with session_scope(engine) as session:
        outcomes = [r.outcome for r in session.exec(select(RunRow).order_by(RunRow.id)).scalars()]
    assert outcomes == ["abandoned", "ok"]


def test_a_stop_ends_the_run_between_stages(
    engine: Engine, database_url: str, make_settings: Callable[..., Settings]
) -> None:
    stop = threading.Event()
    stop.set()
    result = finish_day(
        _settings(make_settings, database_url),
        date=DAY,
        engine=engine,
        stages=_stages(),
        stop=stop,
        console=QUIET,
    )
    assert (result.outcome, result.exit_code) == ("stopped", 1)


def test_day_without_date_is_today_in_the_schedule_time_zone(
    make_settings: Callable[..., Settings],
) -> None:
    late = dt.datetime(2026, 5, 4, 23, 30, tzinfo=dt.UTC)
    assert run_day(make_settings(), late) == dt.date(2026, 5, 4)
    assert run_day(make_settings(schedule={"timezone": "Asia/Tokyo"}), late) == dt.date(2026, 5, 5)


def test_unfinished_days_within_the_window_are_finished(
    engine: Engine, database_url: str, make_settings: Callable[..., Settings]
) -> None:
    """An issue with queued e-mails is finished by the next firing while it is within
    ``schedule.resume_days``; the waiting deliveries are visible per issue meanwhile."""
    settings = _settings(make_settings, database_url, schedule={"resume_days": 3})
    seed_subscribers(engine, 6)
    first = finish_day(settings, date=DAY, engine=engine, stages=_stages(), console=QUIET)
    assert first.counts["emails_sent"] == 6
    _interrupt(engine, keep=2)
    assert waiting_by_issue(engine) == [(DAY, 4)]

    def at(day: dt.date) -> Callable[[], dt.datetime]:
        return lambda: dt.datetime.combine(day, dt.time(6), tzinfo=dt.UTC)

    stop = threading.Event()
    late = finish_unfinished(
        settings, engine, trigger="schedule", stop=stop, clock=at(DAY + dt.timedelta(days=4))
    )
    assert late == [] and waiting_by_issue(engine) == [(DAY, 4)]  # outside the window
    (result,) = finish_unfinished(
        settings, engine, trigger="schedule", stop=stop, clock=at(DAY + dt.timedelta(days=3))
    )
    assert (result.outcome, result.date, result.counts["emails_sent"]) == ("ok", DAY, 4)
    assert waiting_by_issue(engine) == []
    with engine.connect() as conn:
        assert conn.execute(select(IssueRow.status)).scalar_one() == "sent"
        attempts = conn.execute(select(Delivery.attempts).order_by(Delivery.id)).scalars()
        assert list(attempts) == [1, 1, 2, 2, 2, 2]  # the four queued ones sent once more


def test_two_processes_running_the_real_pipeline_send_each_email_once(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """Two OS processes run the real digest for the same day against one database: one builds
    and sends it, the other meets the lock or the sent issue; nobody is mailed twice."""
    from newsletter.arxiv.replay import demo_server
    from newsletter.config import settings_for_tests
    from subscribers import service

    settings = settings_for_tests(database_url=database_url, categories=["cs.LG"])
    with session_scope(engine) as session:
        for address in ("ada@example.org", "grace@example.org", "alan@example.org"):
            service.add(session, settings=settings, email=address, active=True)
    with demo_server() as arxiv:
        day = arxiv.date.isoformat()
        procs = {
            name: start_worker(
                ["race-pipeline", database_url, day, str(tmp_path), name, arxiv.url, str(tmp_path)]
            )
            for name in ("a", "b")
        }
        try:
            wait_for(lambda: all((tmp_path / f"ready-{n}").exists() for n in procs), what="ready")
            (tmp_path / "go").touch()
            outcomes = {}
            for name, proc in procs.items():
                out, err = proc.communicate(timeout=60)
                assert proc.returncode == 0, err
                outcomes[name] = json.loads(out)["outcome"]
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
                    p.communicate()
    assert sorted(outcomes.values()) in (["locked", "ok"], ["already-done", "ok"]), outcomes
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 3
    with session_scope(engine) as session:
        statuses = session.exec(select(Delivery.status)).scalars().all()
        issue = session.exec(select(IssueRow).where(IssueRow.date == dt.date.fromisoformat(day)))
        assert sorted(statuses) == ["sent", "sent", "sent"]
        assert issue.scalars().one().status == "sent"


def test_sigterm_during_the_arxiv_backoff_stops_the_run_at_once(
    sqlite_url: str, tmp_path: Path
) -> None:
    """arXiv answers 503 and the run waits a 60-second backoff: SIGTERM ends it now, exit 1."""
    import signal
    import subprocess
    import sys
    import time

    from tests.httpserver import Response, TestServer

    with TestServer() as arxiv:
        arxiv.routes[("GET", "*")] = lambda _req: Response(503, b"unavailable")
        config = tmp_path / "config.json"
        config.write_text(
            json.dumps(
                {
                    "database_url": sqlite_url,
                    "archive_dir": str(tmp_path / "archive"),
                    "categories": ["cs.LG"],
                    "arxiv": {
                        "rss_url": f"{arxiv.url}/rss/",
                        "api_url": f"{arxiv.url}/api/query",
                        "delay_seconds": 0,
                        "backoff_seconds": 60,
                        "max_backoff_seconds": 60,
                    },
                }
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        env.update(PYTHONPATH=str(Path(__file__).resolve().parent.parent))
        proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "run", "--no-send", "--config", str(config)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_for(lambda: arxiv.requests or proc.poll() is not None, timeout=60, what="arXiv")
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            out, _ = proc.communicate(timeout=30)
            waited = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 1, out
    assert "stopped while waiting for arXiv" in out
    assert waited < 30 and len(arxiv.requests) == 1  # not after a 60 s backoff and a retry
