"""A separate OS process for the service tests (run as a script, not collected by pytest).

Modes:
  hold-lock URL NAME          take the lock, print "held", wait for stdin to close
  race-pipeline URL DAY GATE_DIR NAME ARXIV_URL OUT_DIR
                              wait for GATE_DIR/go, finish_day with the real pipeline (arXiv at
                              ARXIV_URL, file outbox in OUT_DIR), print the outcome
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
import time
from pathlib import Path

from pydantic import SecretStr

from newsletter.config import settings_for_tests
from newsletter.db import make_engine
from newsletter.runtime.locking import DayLock
from newsletter.runtime.runner import finish_day

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
    result = finish_day(
        settings, engine=engine, date=dt.date.fromisoformat(day), trigger="schedule"
    )
    print(
        json.dumps({"name": name, "outcome": result.outcome, "run_id": result.run_id}), flush=True
    )


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "hold-lock":
        hold_lock(argv[1], argv[2])
    elif mode == "race-pipeline":
        race_pipeline(argv[1], argv[2], Path(argv[3]), argv[4], argv[5], Path(argv[6]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
