"""A SendGrid Event Webhook batch of 5,000 events (100 bounces of known readers, the rest
delivered/open): applied in one transaction against the earlier way, one commit per event.

Run: python -m benchmarks.bench_webhook [--events N] [--pg ADMIN_URL]
Both run on fresh databases on the same machine in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from newsletter.config import settings_for_tests
from newsletter.db import make_engine, upgrade
from newsletter.delivery.events import REASONS, _subscriber, event_id, handle_events
from newsletter.delivery.models import WebhookEvent
from subscribers import service

READERS = 100


def make_events(total: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {"email": f"reader{i}@example.org", "event": "bounce", "sg_event_id": f"b{i}"}
        for i in range(READERS)
    ]
    events += [
        {
            "email": f"someone{i}@example.org",
            "event": "delivered" if i % 2 else "open",
            "sg_event_id": f"e{i:07d}",
            "timestamp": 1_800_000_000 + i,
        }
        for i in range(total - READERS)
    ]
    return events


def naive(engine: Engine, events: list[dict[str, Any]]) -> None:
    """The earlier handler: a savepoint, a lookup and a commit per event."""
    with Session(engine) as session:
        for event in events:
            try:
                with session.begin_nested():
                    session.add(WebhookEvent(sg_event_id=event_id(event), event=event["event"]))
                    session.flush()
            except IntegrityError:
                continue
            reason = REASONS.get(event["event"])
            sub = _subscriber(session, event) if reason else None
            if reason and sub is not None:
                service.suppress(session, reason=reason, subscriber_id=sub.id)
            session.commit()


@contextmanager
def database(pg: str | None) -> Iterator[Engine]:
    if pg is None:
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
            upgrade(engine)
            yield engine
            engine.dispose()
        return
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(pg.rsplit("/", 1)[0] + f"/{name}")
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seed(engine: Engine) -> None:
    settings = settings_for_tests()
    with Session(engine) as session:
        for i in range(READERS):
            service.add(session, settings=settings, email=f"reader{i}@example.org", active=True)
        session.commit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--pg", default=None, help="admin URL of a PostgreSQL server")
    args = parser.parse_args()
    events = make_events(args.events)
    for label, run in (("one transaction", handle_events), ("naive, a commit per event", naive)):
        with database(args.pg) as engine:
            seed(engine)
            start = time.perf_counter()
            run(engine, events)
            elapsed = time.perf_counter() - start
        print(f"{label}: {len(events)} events in {elapsed:.2f} s ({len(events) / elapsed:,.0f}/s)")


if __name__ == "__main__":
    main()
