"""Crash and resume: SIGKILL the sending process mid-send, restart it, count every recipient."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from newsletter.delivery.models import Delivery
from tests.fixtures_delivery import FakeSendGrid, seed_issue, seed_subscribers, sigkill_while_held
from tests.fixtures_service import wait_for

ROOT = Path(__file__).resolve().parent.parent
N = 12
PER_BATCH = 3  # 12 default-digest readers: 4 requests of 3


def _start(
    url: str, sg: FakeSendGrid, policy: str, concurrency: int, *flags: str
) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.delivery_worker",
            url,
            sg.url,
            policy,
            str(concurrency),
            str(PER_BATCH),
            *flags,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_at(
    url: str,
    sg: FakeSendGrid,
    policy: str,
    concurrency: int,
    nth: int,
    *flags: str,
    before_kill: Callable[[int], None] = lambda _pid: None,
) -> set[str]:
    """Run until the server holds request ``nth``, SIGKILL; return that request's recipients.
    With concurrency > 1 the other in-flight requests arrive too (they are not held)."""
    proc = _start(url, sg, policy, concurrency, *flags)
    sigkill_while_held(proc, sg, nth, before_kill=before_kill)
    bodies = sg.bodies()
    return {p["to"][0]["email"] for p in bodies[nth - 1]["personalizations"]}


def _finish(url: str, sg: FakeSendGrid, policy: str) -> dict:  # type: ignore[type-arg]
    sg.block_at = set()
    proc = _start(url, sg, policy, 1)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _statuses(engine: Engine) -> Counter[str]:
    t = Delivery.__table__.c  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return Counter(conn.execute(select(t.status)).scalars())


def test_sigkill_at_several_points_sends_everyone_once(engine: Engine, database_url: str) -> None:
    seed_issue(engine)
    seed_subscribers(engine, N)
    with FakeSendGrid() as sg:
        window = _kill_at(database_url, sg, "skip", 1, 1)  # first request in flight
        window |= _kill_at(database_url, sg, "skip", 1, sg.count + 2)  # after one more batch
        final = _finish(database_url, sg, "skip")
        counted = Counter(sg.recipients())
    everyone = {f"reader{i}@example.com" for i in range(N)}
    assert set(counted) == everyone
    assert all(n == 1 for n in counted.values()), counted  # nobody twice
    assert len(window) == 2 * PER_BATCH
    # The two in-flight batches were listed and, under "skip", never sent again.
    assert len(final["in_flight"]) == PER_BATCH
    assert _statuses(engine) == Counter({"sent": N - 2 * PER_BATCH, "unknown": 2 * PER_BATCH})


def test_resend_policy_sends_the_window_again(engine: Engine, database_url: str) -> None:
    seed_issue(engine)
    ids = seed_subscribers(engine, N)
    email_of = {sid: f"reader{i}@example.com" for i, sid in enumerate(ids)}
    with FakeSendGrid() as sg:
        window = _kill_at(database_url, sg, "resend", 2, 2)
        final = _finish(database_url, sg, "resend")
        counted = Counter(sg.recipients())
    assert set(counted) == {f"reader{i}@example.com" for i in range(N)}
    twice = {r for r, n in counted.items() if n == 2}
    assert window <= twice and all(n <= 2 for n in counted.values())
    # Only listed in-flight rows may be duplicated (some never reached the server before the
    # kill); everyone outside the window got exactly one.
    listed = {email_of[sid] for sid in final["in_flight"]}
    assert window <= twice <= listed
    assert _statuses(engine) == Counter({"sent": N})


def _children(pid: int) -> set[int]:
    """The processes whose parent is ``pid``, read from /proc (not through any library)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _ended(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")  # a zombie has ended; reaping it is its new parent's business


def test_a_killed_sender_leaves_no_preparing_process_behind(
    engine: Engine, database_url: str
) -> None:
    """SIGKILL gives the sender no chance to stop its preparing process: the preparer ends by
    itself (it watches its parent), and a rerun sends everyone once."""
    seed_issue(engine)
    seed_subscribers(engine, N)
    children: set[int] = set()
    with FakeSendGrid() as sg:
        window = _kill_at(
            database_url,
            sg,
            "skip",
            1,
            1,
            "prepare",
            before_kill=lambda pid: children.update(_children(pid)),
        )
        assert children, "the sender started no preparing process"
        wait_for(lambda: all(_ended(pid) for pid in children), 30, "the preparer to end")
        final = _finish(database_url, sg, "skip")
        counted = Counter(sg.recipients())
    assert set(counted) == {f"reader{i}@example.com" for i in range(N)}
    assert all(n == 1 for n in counted.values()), counted
    assert len(final["in_flight"]) == len(window) == PER_BATCH
