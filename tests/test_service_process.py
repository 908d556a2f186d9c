"""SIGTERM in the middle of a send: the in-flight batch finishes, nothing is lost, and the
restarted service resumes the day and sends every remaining delivery exactly once.

The job is a batch sender honouring the stop event (the real sender, ``send_issue(stop=...)``,
must be run through this same test once the e-mail branch is merged)."""

from __future__ import annotations

import datetime as dt
import json
import signal
import socket
from pathlib import Path

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from newsletter.db import session_scope
from newsletter.delivery_models import Delivery
from newsletter.models import IssueRow, RunRow
from subscribers.models import Subscriber
from tests.fixtures_service import start_worker, wait_for

RECIPIENTS = 23  # five batches of 5, the last one short


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def statuses(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        rows = session.exec(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
    return {status: int(n) for status, n in rows}


def test_sigterm_finishes_the_in_flight_batch_and_restart_resumes(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    with session_scope(engine) as session:
        issue = IssueRow(date=dt.datetime.now(dt.UTC).date(), status="built")
        session.add(issue)
        subs = [Subscriber(email=f"r{i}@example.org", status="active") for i in range(RECIPIENTS)]
        session.add_all(subs)
        session.flush()
        for sub in subs:
            session.add(
                Delivery(
                    issue_id=issue.id or 0, subscriber_id=sub.id or 0, message_id=f"<{sub.id}@test>"
                )
            )
    (tmp_path / "hold-3").touch()
    port = free_port()
    proc = start_worker(["serve", database_url, str(port), str(tmp_path)])
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _up(base), what="the service to listen")
        resp = httpx.post(
            f"{base}/admin/run",
            headers={"Authorization": "Bearer test-admin-token-Qx7vLp2mZr9sKd4wTn8yBh3c"},
        )
        assert resp.status_code == 202, resp.text
        wait_for(lambda: (tmp_path / "batch-3-sending").exists(), what="batch 3 in flight")
        assert statuses(engine) == {"sent": 10, "sending": 5, "queued": 8}
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: (tmp_path / "stop-seen").exists(), what="the job to see the stop")
        assert proc.poll() is None  # still finishing the in-flight batch
        (tmp_path / "release-3").touch()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == {"exited": True, "sending_left": 0}
    assert statuses(engine) == {"sent": 15, "queued": 8}
    with session_scope(engine) as session:
        run = session.exec(select(RunRow)).one()
    assert (run.trigger, run.outcome, run.emails_sent) == ("admin", "stopped", 15)

    (tmp_path / "hold-3").unlink()
    again = start_worker(["serve", database_url, str(free_port()), str(tmp_path)])
    try:
        wait_for(lambda: statuses(engine) == {"sent": RECIPIENTS}, what="the resumed run")
        wait_for(lambda: _outcomes(engine) == ["stopped", "ok"], what="the resumed run's record")
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=30)
    finally:
        if again.poll() is None:
            again.kill()
            again.communicate()
    with session_scope(engine) as session:
        attempts = session.exec(select(Delivery.attempts)).all()
        resumed = session.exec(select(RunRow).order_by(RunRow.id)).all()[-1]
    assert attempts == [1] * RECIPIENTS  # nobody twice
    assert (resumed.trigger, resumed.emails_sent) == ("resume", RECIPIENTS - 15)


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _outcomes(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        return [r.outcome for r in session.exec(select(RunRow).order_by(RunRow.id))]
