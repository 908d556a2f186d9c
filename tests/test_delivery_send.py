"""send_issue end to end on real databases: batching, outbox states, suppression, stop."""

from __future__ import annotations

import email
import email.policy
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine

from newsletter.delivery.backends.file import FileBackend
from newsletter.delivery.models import Delivery
from newsletter.delivery.outbox import counts
from newsletter.delivery.send import send_issue
from newsletter.email import tags
from newsletter.models import IssueRow
from subscribers.models import Subscriber
from tests.fixtures_delivery import (
    ENV,
    FakeSendGrid,
    delivery_settings,
    recorded_view,
    seed_issue,
    seed_subscribers,
    sendgrid_delivers,
    undated,
)
from tests.fixtures_email import RECORDED_DAY
from tests.independent_parsers import mailparser, raw_header_lines

DT = Delivery.__table__.c  # type: ignore[attr-defined]


def _statuses(engine: Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return {
            r.subscriber_id: r.status for r in conn.execute(select(DT.subscriber_id, DT.status))
        }


def _sendgrid_run(
    engine: Engine, database_url: str, sections: bool
) -> tuple[Any, list[dict[str, Any]]]:
    with FakeSendGrid() as sg:
        settings = delivery_settings(
            database_url,
            backend="sendgrid",
            sendgrid_host=sg.url,
            concurrency=2,
            sendgrid_sections=sections,
        )
        report = send_issue(engine, settings, RECORDED_DAY, view=recorded_view(), environ=ENV)
        assert sorted(sg.recipients()) == sorted(f"reader{i}@example.com" for i in range(25))
        return report, sg.bodies()


def _forget_deliveries(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(Delivery.__table__))  # type: ignore[attr-defined]


def test_different_selections_share_one_sendgrid_request_with_sections(
    engine: Engine, database_url: str
) -> None:
    seed_issue(engine)
    kw = ["learning", "graph", "privacy"]
    seed_subscribers(engine, 25, keywords=lambda i: [kw[i % 3]] if i % 2 else [])
    report, bodies = _sendgrid_run(engine, database_url, sections=True)
    assert report.sent == 25 and report.failed == 0
    # 4 different selections (the digest and one per keyword), one body, one request.
    assert report.distinct_bodies == 1 and report.requests == len(bodies) == 1
    (body,) = bodies
    assert body["sections"] and body["subject"] == "-subject-"
    # Each reader's cards hold their own feedback token; without it, 4 distinct card lists.
    cards = {
        p["substitutions"]["-cards-"].replace(p["substitutions"]["-feedback_token-"], "TOKEN")
        for p in body["personalizations"]
    }
    assert len(cards) == 4
    tokens = {p["substitutions"]["-feedback_token-"] for p in body["personalizations"]}
    assert len(tokens) == 25
    assert set(_statuses(engine).values()) == {"sent"}
    with engine.connect() as conn:
        issue = conn.execute(select(IssueRow.__table__)).one()  # type: ignore[attr-defined]
        providers = set(conn.execute(select(DT.provider_message_id)).scalars())
    assert issue.status == "sent" and issue.sent_at is not None
    assert providers == {"sg-1"}
    graph = sendgrid_delivers(body, "reader1@example.com")  # keyword "graph"
    digest = sendgrid_delivers(body, "reader0@example.com")
    assert "Why you got it: graph" in graph[2] and "Why you got it: graph" not in digest[2]
    assert graph[1] != digest[1] and not tags.keys_in(graph[1] + graph[2] + digest[1])

    # Sections off (the default): one expanded body per selection, and the same bytes delivered.
    _forget_deliveries(engine)
    off, off_bodies = _sendgrid_run(engine, database_url, sections=False)
    assert off.sent == 25 and off.distinct_bodies == 4 and off.requests == len(off_bodies) == 4
    assert all("sections" not in b for b in off_bodies)
    for i in range(25):
        to = f"reader{i}@example.com"
        (off_body,) = [
            b for b in off_bodies if any(p["to"][0]["email"] == to for p in b["personalizations"])
        ]
        # Link tokens carry their signing time (two runs): compared up to the token.
        assert [undated(x) for x in sendgrid_delivers(off_body, to)] == [
            undated(x) for x in sendgrid_delivers(body, to)
        ]


def _part(msg: Any, subtype: str) -> str:
    return undated(str(msg.get_body((subtype,)).get_content()).replace("\r\n", "\n"))


def _as_mime_part(value: str) -> str:
    """On the wire lines end in CRLF and a part ends with a line break; link tokens carry
    their signing time (two runs here), so they are compared up to the token."""
    return undated(value if value.endswith("\n") else value + "\n")


def test_file_eml_equals_what_sendgrid_delivers(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    seed_issue(engine)
    kw = [["learning", "graph"], [], ["privacy", "model"]]
    seed_subscribers(engine, 25, keywords=lambda i: kw[i % 3])
    settings = delivery_settings(database_url, outbox_dir=str(tmp_path / "out"))
    assert send_issue(engine, settings, RECORDED_DAY, view=recorded_view()).sent == 25
    emls = {}
    for path in (tmp_path / "out").glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        emls[str(msg["To"])] = msg
    _forget_deliveries(engine)
    _, bodies = _sendgrid_run(engine, database_url, sections=True)
    (body,) = bodies
    for i in (0, 1, 2, 3):
        msg = emls[f"reader{i}@example.com"]
        subject, html, text = sendgrid_delivers(body, f"reader{i}@example.com")
        assert msg["Subject"] == subject
        assert _part(msg, "html") == _as_mime_part(html)
        assert _part(msg, "plain") == _as_mime_part(text)


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
    backend.max_batch = 2  # one shared body: two batches of two
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
    backend.max_batch = 2  # one shared body: three batches of two
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
    raw = path.read_bytes()
    assert raw_header_lines(raw, "List-Unsubscribe") == [f"List-Unsubscribe: {unsub}".encode()]
    assert raw_header_lines(raw, "Message-ID") == [f"Message-ID: {msg['Message-ID']}".encode()]
    for name in ("List-Id", "List-Unsubscribe-Post", "Date"):
        assert len(raw_header_lines(raw, name)) == 1 and b"=?" not in raw_header_lines(raw, name)[0]
    assert mailparser(raw)["unsubscribe_url"] == link
