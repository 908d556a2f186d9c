"""run_once: one run per day, re-check before starting, every outcome recorded."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.locking import DayLock
from newsletter.models import IssueRow, RunRow
from newsletter.runner import lock_name, run_day, run_once
from tests.fixtures_service import RecordingJob, count_runs, start_worker, wait_for

DAY = dt.date(2026, 5, 4)


def test_run_records_outcome_and_counts(
    engine: Engine, make_settings: Callable[..., Settings]
) -> None:
    job = RecordingJob()
    result = run_once(make_settings(), engine, date=DAY, trigger="admin", job=job)
    assert result.outcome == "ok" and result.run_id is not None
    assert job.calls == [{"date": DAY, "trigger": "admin"}]
    with session_scope(engine) as session:
        row = session.get(RunRow, result.run_id)
    assert row is not None
    assert (row.outcome, row.trigger, row.date) == ("ok", "admin", DAY)
    assert (row.papers, row.emails_sent, row.model_calls) == (3, 2, 1)
    assert row.finished_at is not None


def test_sent_issue_is_not_run_again(
    engine: Engine, make_settings: Callable[..., Settings]
) -> None:
    with session_scope(engine) as session:
        session.add(IssueRow(date=DAY, status="sent"))
    job = RecordingJob()
    result = run_once(make_settings(), engine, date=DAY, trigger="admin", job=job)
    assert result.outcome == "already-done" and not result.ran
    assert job.calls == []


def test_scheduled_run_skips_a_day_already_finished(
    engine: Engine, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    first = run_once(
        settings, engine, date=DAY, trigger="schedule", job=RecordingJob("no-announcement")
    )
    again = run_once(settings, engine, date=DAY, trigger="schedule", job=RecordingJob())
    assert first.outcome == "no-announcement"
    assert again.outcome == "already-done"
    assert count_runs(engine) == 1


def test_locked_day_is_skipped(engine: Engine, make_settings: Callable[..., Settings]) -> None:
    holder = DayLock(engine, lock_name(DAY))
    assert holder.acquire()
    job = RecordingJob()
    try:
        result = run_once(make_settings(), engine, date=DAY, trigger="schedule", job=job)
    finally:
        holder.release()
    assert result.outcome == "locked" and job.calls == []
    assert count_runs(engine) == 0


def test_failing_job_is_recorded_and_lock_released(
    engine: Engine, make_settings: Callable[..., Settings]
) -> None:
    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("arXiv is down")

    result = run_once(make_settings(), engine, date=DAY, trigger="schedule", job=boom)
    assert result.outcome == "failed" and "arXiv is down" in (result.message or "")
    assert DayLock(engine, lock_name(DAY)).acquire()


def test_dead_run_is_marked_abandoned_by_the_next(
    engine: Engine, make_settings: Callable[..., Settings]
) -> None:
    with session_scope(engine) as session:
        session.add(RunRow(date=DAY, trigger="schedule", outcome="running"))
    run_once(make_settings(), engine, date=DAY, trigger="schedule", job=RecordingJob())
    with session_scope(engine) as session:
        outcomes = [r.outcome for r in session.exec(select(RunRow).order_by(RunRow.id))]
    assert outcomes == ["abandoned", "ok"]


def test_stop_event_reaches_the_job(engine: Engine, make_settings: Callable[..., Settings]) -> None:
    stop = threading.Event()
    stop.set()

    def job(*_a: Any, stop: threading.Event, **_k: Any) -> str:
        return "stopped" if stop.is_set() else "ok"

    assert (
        run_once(make_settings(), engine, date=DAY, trigger="admin", job=job, stop=stop).outcome
        == "stopped"
    )


def test_day_without_date_is_today_in_the_schedule_time_zone(
    make_settings: Callable[..., Settings],
) -> None:
    late = dt.datetime(2026, 5, 4, 23, 30, tzinfo=dt.UTC)
    assert run_day(make_settings(), late) == dt.date(2026, 5, 4)
    assert run_day(make_settings(schedule={"timezone": "Asia/Tokyo"}), late) == dt.date(2026, 5, 5)


def test_two_processes_racing_run_the_day_once(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """Two OS processes fire at once; the loser meets the lock, a latecomer the sent issue."""
    with session_scope(engine) as session:
        session.add(IssueRow(date=DAY, status="built"))
    procs = {
        name: start_worker(["race", database_url, DAY.isoformat(), str(tmp_path), name])
        for name in ("a", "b")
    }
    try:
        wait_for(lambda: all((tmp_path / f"ready-{n}").exists() for n in procs), what="workers")
        (tmp_path / "go").touch()
        # The job of the winner waits for "release"; the loser must finish without running it.
        loser = wait_for(
            lambda: next((n for n, p in procs.items() if p.poll() is not None), None),
            what="one process to give up",
        )
        out, err = procs[loser].communicate(timeout=10)
        assert json.loads(out)["outcome"] == "locked", err
        (tmp_path / "release").touch()
        winner = "b" if loser == "a" else "a"
        out, err = procs[winner].communicate(timeout=20)
        assert json.loads(out)["outcome"] == "ok", err
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert (tmp_path / "executions.log").read_text().split() == [winner]
    late = start_worker(["race", database_url, DAY.isoformat(), str(tmp_path), "late"])
    out, err = late.communicate(timeout=20)
    assert json.loads(out)["outcome"] == "already-done", err
    assert (tmp_path / "executions.log").read_text().split() == [winner]
    assert count_runs(engine, outcome="ok") == 1
    with session_scope(engine) as session:
        assert session.exec(select(IssueRow.status).where(IssueRow.date == DAY)).one() == "sent"


def test_two_processes_running_the_real_pipeline_send_each_email_once(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """Two OS processes run the real digest for the same day against one database: one builds
    and sends it, the other meets the lock or the sent issue; nobody is mailed twice."""
    from newsletter.arxiv_replay import demo_server
    from newsletter.config import settings_for_tests
    from newsletter.delivery_models import Delivery
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
        statuses = session.exec(select(Delivery.status)).all()
        issue = session.exec(select(IssueRow).where(IssueRow.date == dt.date.fromisoformat(day)))
        assert sorted(statuses) == ["sent", "sent", "sent"]
        assert issue.one().status == "sent"


def test_pipeline_style_results_are_converted() -> None:
    from newsletter.runner import as_job_result

    class Result:
        outcome = "ok"
        counts = {"papers": 30, "emails_sent": 7}
        message = "done"

    converted = as_job_result(Result())
    assert (converted.outcome, converted.papers, converted.emails_sent) == ("ok", 30, 7)
    assert converted.message == "done"
