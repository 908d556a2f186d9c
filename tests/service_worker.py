"""A separate OS process for the service tests (run as a script, not collected by pytest).

Modes:
  hold-lock URL NAME          take the lock, print "held", wait for stdin to close
  race URL DAY GATE_DIR NAME  wait for GATE_DIR/go, run_once with a gated job, print the outcome
  serve URL PORT GATE_DIR     the service (web + scheduler) with a batch job that honours stop
  race-pipeline URL DAY GATE_DIR NAME ARXIV_URL OUT_DIR
                              wait for GATE_DIR/go, run_once with the REAL pipeline (arXiv at
                              ARXIV_URL, file outbox in OUT_DIR), print the outcome
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from newsletter.config import Settings, settings_for_tests
from newsletter.db import make_engine, session_scope
from newsletter.delivery_models import Delivery
from newsletter.locking import DayLock
from newsletter.models import IssueRow
from newsletter.runner import JobResult, run_once

BATCH = 5


def wait_file(path: Path, stop: threading.Event | None = None, timeout: float = 30.0) -> bool:
    """Poll for a file (the test's go/release signal); False if ``stop`` was set first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if stop is not None and stop.is_set():
            return False
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.02)
    return True


def hold_lock(url: str, name: str) -> None:
    lock = DayLock(make_engine(url), name)
    print("held" if lock.acquire() else "busy", flush=True)
    sys.stdin.read()


def race(url: str, day: str, gate: Path, name: str) -> None:
    engine = make_engine(url)
    settings = settings_for_tests(database_url=url)

    def gated_job(
        settings: Settings, engine: Engine, *, date: Any, trigger: str, stop: threading.Event
    ) -> JobResult:
        with (gate / "executions.log").open("a") as fh:
            fh.write(name + "\n")
        wait_file(gate / "release")
        with session_scope(engine) as session:
            issue = session.execute(select(IssueRow).where(IssueRow.date == date)).scalar_one()
            issue.status = "sent"
            session.add(issue)
        return JobResult("ok", emails_sent=1)

    (gate / f"ready-{name}").touch()
    wait_file(gate / "go")
    result = run_once(
        settings, engine, date=dt.date.fromisoformat(day), trigger="schedule", job=gated_job
    )
    print(
        json.dumps({"name": name, "outcome": result.outcome, "run_id": result.run_id}), flush=True
    )


def race_pipeline(url: str, day: str, gate: Path, name: str, arxiv: str, out: Path) -> None:
    """The real digest, fired by two processes at once: the lock lets exactly one build and send."""
    settings = settings_for_tests(
        database_url=url,
        categories=["cs.LG"],
        keywords=["learning"],
        archive_dir=str(out / "archive"),
        arxiv={"rss_url": f"{arxiv}/rss/", "api_url": f"{arxiv}/api/query", "delay_seconds": 0},
        delivery={"outbox_dir": str(out / "outbox")},
    ).model_copy(update={"secret_key": SecretStr("race-Hq3Zt8Wm1Vx6Kp4Ns9Lb2Dg7Fj5Rc0")})
    engine = make_engine(url)
    (gate / f"ready-{name}").touch()
    wait_file(gate / "go")
    result = run_once(settings, engine, date=dt.date.fromisoformat(day), trigger="schedule")
    print(
        json.dumps({"name": name, "outcome": result.outcome, "run_id": result.run_id}), flush=True
    )


def batch_job(gate: Path) -> Any:
    """Sends queued deliveries in batches of BATCH; stops between batches when asked.

    With GATE_DIR/hold-3 present, batch 3 waits (state "sending") until GATE_DIR/release-3
    exists, noting GATE_DIR/stop-seen when the stop event arrives meanwhile.
    """

    def job(
        settings: Settings, engine: Engine, *, date: Any, trigger: str, stop: threading.Event
    ) -> JobResult:
        sent = 0
        number = 0
        while True:
            if stop.is_set():
                return JobResult("stopped", emails_sent=sent, message="stopped between batches")
            with session_scope(engine) as session:
                ids = list(
                    session.execute(
                        select(Delivery.id)
                        .where(Delivery.status == "queued")
                        .order_by(Delivery.id)
                        .limit(BATCH)
                    ).scalars()
                )
                if not ids:
                    return JobResult("ok", emails_sent=sent)
                session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(ids))
                    .values(status="sending", attempts=Delivery.attempts + 1)
                )
            number += 1
            if number == 3 and (gate / "hold-3").exists():
                (gate / "batch-3-sending").touch()
                while not (gate / "release-3").exists():
                    if stop.is_set() and not (gate / "stop-seen").exists():
                        (gate / "stop-seen").touch()
                    time.sleep(0.02)
            with session_scope(engine) as session:
                session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(status="sent"))
            sent += len(ids)

    return job


def serve(url: str, port: int, gate: Path) -> None:
    """``create_app`` with the service's ``background`` seam, under uvicorn, until SIGTERM."""
    import signal

    import uvicorn
    from pydantic import SecretStr

    from newsletter.service import background, launcher_for
    from newsletter.web.app import create_app

    settings = settings_for_tests(database_url=url, log_level="INFO").model_copy(
        update={
            "admin_token": SecretStr("test-admin-token-Qx7vLp2mZr9sKd4wTn8yBh3c"),
            "secret_key": SecretStr("k9Vq2mZr7Lp4Xw8Nf3Hb6Tj1Yc5Gd0Sa"),
        }
    )
    engine = make_engine(url)
    launcher_for(settings, engine, job=batch_job(gate))
    app = create_app(settings, engine=engine, background=background, migrate=False)
    # uvicorn re-raises SIGTERM to the previous handler once it has shut down; make that a no-op
    # so the process can report below (``newsletter serve`` should do the same).
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    with session_scope(engine) as session:
        left = session.execute(
            select(func.count()).select_from(Delivery).where(Delivery.status == "sending")
        ).scalar_one()
    print(json.dumps({"exited": True, "sending_left": left}), flush=True)


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "hold-lock":
        hold_lock(argv[1], argv[2])
    elif mode == "race":
        race(argv[1], argv[2], Path(argv[3]), argv[4])
    elif mode == "serve":
        serve(argv[1], int(argv[2]), Path(argv[3]))
    elif mode == "race-pipeline":
        race_pipeline(argv[1], argv[2], Path(argv[3]), argv[4], argv[5], Path(argv[6]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
