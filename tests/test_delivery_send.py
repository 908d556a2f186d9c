"""send_issue end to end on real databases: batching, outbox states, suppression, stop."""

from __future__ import annotations

import email
import email.policy
import threading
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from newsletter.delivery.backends.file import FileBackend
from newsletter.delivery.outbox import counts
from newsletter.delivery.send import send_issue
from newsletter.delivery_models import Delivery
from newsletter.models import IssueRow
from subscribers.models import Subscriber
from tests.fixtures_delivery import (
    ENV,
    FakeSendGrid,
    delivery_settings,
    recorded_view,
    seed_issue,
    seed_subscribers,
)
from tests.fixtures_email import RECORDED_DAY

DT = Delivery.__table__.c  # type: ignore[attr-defined]


def _statuses(engine: Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return {
            r.subscriber_id: r.status for r in conn.execute(select(DT.subscriber_id, DT.status))
        }


def test_sendgrid_batches_identical_bodies_and_marks_sent(
    engine: Engine, database_url: str
) -> None:
    seed_issue(engine)
    kw = ["learning", "graph", "privacy"]
    seed_subscribers(engine, 25, keywords=lambda i: [kw[i % 3]] if i % 2 else [])
    with FakeSendGrid() as sg:
        settings = delivery_settings(
            database_url, backend="sendgrid", sendgrid_host=sg.url, concurrency=2
        )
        report = send_issue(engine, settings, RECORDED_DAY, view=recorded_view(), environ=ENV)
        recipients = sg.recipients()
    assert sorted(recipients) == sorted(f"reader{i}@example.com" for i in range(25))
    assert report.sent == 25 and report.failed == 0
    # 1 default digest body + one per keyword: 4 bodies, 4 requests.
    assert report.distinct_bodies == 4
    assert report.requests == len(sg.requests) == 4
    assert set(_statuses(engine).values()) == {"sent"}
    with engine.connect() as conn:
        issue = conn.execute(select(IssueRow.__table__)).one()  # type: ignore[attr-defined]
        providers = set(conn.execute(select(DT.provider_message_id)).scalars())
    assert issue.status == "sent" and issue.sent_at is not None
    assert providers == {"sg-1", "sg-2", "sg-3", "sg-4"}


def test_rerun_sends_nobody_twice(engine: Engine, database_url: str, tmp_path: Path) -> None:
    seed_issue(engine)
    seed_subscribers(engine, 5)
    settings = delivery_settings(database_url, outbox_dir=str(tmp_path / "out"))
    first = send_issue(engine, settings, RECORDED_DAY, view=recorded_view())
    second = send_issue(engine, settings, RECORDED_DAY, view=recorded_view())
    assert first.sent == 5 and second.sent == 0 and second.recipients == 0
    assert len(list((tmp_path / "out").glob("*.eml"))) == 5


def test_unsubscribe_between_batches_is_honoured(engine: Engine, database_url: str) -> None:
    seed_issue(engine)
    ids = seed_subscribers(engine, 4, keywords=lambda i: ["graph"] if i < 2 else [])
    late = ids[3]

    class UnsubscribingBackend(FileBackend):
        def send_batch(self, batch):  # type: ignore[no-untyped-def]
            with engine.begin() as conn:
                conn.execute(
                    update(Subscriber.__table__)  # type: ignore[attr-defined]
                    .where(Subscriber.__table__.c.id == late)  # type: ignore[attr-defined]
                    .values(status="unsubscribed")
                )
            return super().send_batch(batch)

    settings = delivery_settings(database_url, concurrency=1)
    backend = UnsubscribingBackend(settings.delivery.outbox_dir)
    report = send_issue(engine, settings, RECORDED_DAY, view=recorded_view(), backend=backend)
    statuses = _statuses(engine)
    assert statuses[late] == "skipped"
    assert report.skipped == 1 and report.sent == 3


def test_stop_event_leaves_rest_queued_then_resumes(engine: Engine, database_url: str) -> None:
    seed_issue(engine)
    seed_subscribers(engine, 6, keywords=lambda i: [["graph", "learning", "model"][i % 3]])
    stop = threading.Event()
    seen: list[int] = []

    class StoppingBackend(FileBackend):
        def send_batch(self, batch):  # type: ignore[no-untyped-def]
            seen.append(len(batch.recipients))
            stop.set()  # SIGTERM arrives during the first batch
            return super().send_batch(batch)

    settings = delivery_settings(database_url, concurrency=1)
    backend = StoppingBackend(settings.delivery.outbox_dir)
    report = send_issue(
        engine, settings, RECORDED_DAY, view=recorded_view(), backend=backend, stop=stop
    )
    assert report.stopped and len(seen) == 1 and report.sent == seen[0]
    assert report.totals["queued"] == 6 - seen[0] and not report.complete
    again = send_issue(engine, settings, RECORDED_DAY, view=recorded_view())
    assert again.sent == 6 - seen[0] and again.complete
    assert counts(engine, 1) == {"sent": 6}


def test_file_backend_eml_parses_back(engine: Engine, database_url: str, tmp_path: Path) -> None:
    seed_issue(engine)
    (sid,) = seed_subscribers(engine, 1)
    settings = delivery_settings(database_url, outbox_dir=str(tmp_path / "out"))
    send_issue(engine, settings, RECORDED_DAY, view=recorded_view())
    (path,) = (tmp_path / "out").glob("*.eml")
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["To"] == "reader0@example.com"
    unsub = msg["List-Unsubscribe"]
    assert unsub.startswith("<https://digest.example.org/unsubscribe/") and unsub.endswith(">")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Id"] and msg["Message-ID"] and msg["Date"]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = unsub[1:-1]
    assert link in html and link in text and "-unsubscribe_url-" not in html + text
    assert "/preferences/" in html and "-preferences_url-" not in html
    with engine.connect() as conn:
        row = conn.execute(select(Delivery.__table__)).one()  # type: ignore[attr-defined]
    assert row.subscriber_id == sid and row.message_id == msg["Message-ID"]
    assert row.provider_message_id == path.name
