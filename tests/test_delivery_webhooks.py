"""The signed SendGrid Event Webhook, with a real ECDSA key pair and a real app."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from newsletter.delivery.events import SIGNATURE_HEADER, TIMESTAMP_HEADER
from newsletter.delivery.models import WebhookEvent
from newsletter.delivery.outbox import NewDelivery, enqueue
from newsletter.delivery.suppression import email_hash
from newsletter.web.webhooks import make_router
from subscribers.models import Subscriber, Suppression
from tests.fixtures_delivery import delivery_settings, seed_issue, seed_subscribers

NOW = 1_800_000_000


@pytest.fixture(scope="module")
def key_pair() -> tuple[ec.EllipticCurvePrivateKey, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(der).decode()


def signed(private: ec.EllipticCurvePrivateKey, body: bytes, ts: int = NOW) -> dict[str, str]:
    sig = private.sign(str(ts).encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        SIGNATURE_HEADER: base64.b64encode(sig).decode(),
        TIMESTAMP_HEADER: str(ts),
        "Content-Type": "application/json",
    }


def client(engine: Engine, database_url: str, public_key: str | None) -> TestClient:
    settings = delivery_settings(
        database_url, webhook_public_key=public_key, webhook_max_age_seconds=300
    )
    app = FastAPI()
    app.include_router(make_router(settings, engine, clock=lambda: float(NOW)))
    return TestClient(app)


def _statuses(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(select(Subscriber.__table__.c.email, Subscriber.__table__.c.status))  # type: ignore[attr-defined]
        return dict(rows.all())


def _hashes(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        t = Suppression.__table__.c  # type: ignore[attr-defined]
        return dict(conn.execute(select(t.email_hash, t.reason)).all())


def events(*items: dict[str, Any]) -> bytes:
    # Odd spacing on purpose: the signature covers these exact bytes, not a re-serialisation.
    return json.dumps(list(items), indent=1).encode()


def test_events_suppress_by_our_message_id_and_dedupe(
    engine: Engine, database_url: str, key_pair: tuple[ec.EllipticCurvePrivateKey, str]
) -> None:
    private, public = key_pair
    issue = seed_issue(engine)
    ids = seed_subscribers(engine, 5)
    enqueue(engine, issue, [NewDelivery(sid, f"<m{sid}@x>") for sid in ids])
    body = events(
        {
            "event": "bounce",
            "type": "bounce",
            "sg_event_id": "e1",
            "message_id": f"<m{ids[0]}@x>",
            "email": "someone-else@example.com",
            "timestamp": NOW,
        },
        {"event": "spamreport", "sg_event_id": "e2", "email": "READER1@example.com"},
        {"event": "group_unsubscribe", "sg_event_id": "e3", "message_id": f"<m{ids[2]}@x>"},
        {"event": "bounce", "type": "blocked", "sg_event_id": "e4", "message_id": f"<m{ids[3]}@x>"},
        {"event": "delivered", "sg_event_id": "e5", "message_id": f"<m{ids[4]}@x>"},
    )
    http = client(engine, database_url, public)
    first = http.post("/webhooks/sendgrid", content=body, headers=signed(private, body))
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 5, "duplicates": 0, "suppressed": 3, "ignored": 2}
    statuses = _statuses(engine)
    assert statuses["reader0@example.com"] == "bounced"
    assert statuses["reader1@example.com"] == "complained"
    assert statuses["reader2@example.com"] == "unsubscribed"
    assert statuses["reader3@example.com"] == statuses["reader4@example.com"] == "active"
    assert _hashes(engine) == {
        email_hash("reader0@example.com"): "bounced",
        email_hash("reader1@example.com"): "complained",
        email_hash("reader2@example.com"): "unsubscribed",
    }
    again = http.post("/webhooks/sendgrid", content=body, headers=signed(private, body))
    assert again.json() == {"received": 5, "duplicates": 5, "suppressed": 0, "ignored": 0}
    with engine.connect() as conn:
        assert len(conn.execute(select(WebhookEvent.__table__)).all()) == 5  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "case", ["unsigned", "no-timestamp", "tampered", "other-key", "stale", "future", "garbage-sig"]
)
def test_bad_requests_are_refused_and_change_nothing(
    engine: Engine, database_url: str, key_pair: tuple[ec.EllipticCurvePrivateKey, str], case: str
) -> None:
    private, public = key_pair
    seed_subscribers(engine, 1)
    body = events({"event": "spamreport", "sg_event_id": "x", "email": "reader0@example.com"})
    headers = signed(private, body)
    if case == "unsigned":
        headers.pop(SIGNATURE_HEADER)
    elif case == "no-timestamp":
        headers.pop(TIMESTAMP_HEADER)
    elif case == "tampered":
        body = body.replace(b"spamreport", b"unsubscribe")
    elif case == "other-key":
        headers = signed(ec.generate_private_key(ec.SECP256R1()), body)
    elif case == "stale":
        headers = signed(private, body, ts=NOW - 301)
    elif case == "future":
        headers = signed(private, body, ts=NOW + 301)
    else:
        headers[SIGNATURE_HEADER] = "not base64!!"
    resp = client(engine, database_url, public).post(
        "/webhooks/sendgrid", content=body, headers=headers
    )
    assert resp.status_code == 403
    assert _statuses(engine) == {"reader0@example.com": "active"} and _hashes(engine) == {}


def test_signed_but_not_json_is_400_and_unconfigured_is_503(
    engine: Engine, database_url: str, key_pair: tuple[ec.EllipticCurvePrivateKey, str]
) -> None:
    private, public = key_pair
    body = b"{not json"
    resp = client(engine, database_url, public).post(
        "/webhooks/sendgrid", content=body, headers=signed(private, body)
    )
    assert resp.status_code == 400
    resp = client(engine, database_url, None).post(
        "/webhooks/sendgrid", content=b"[]", headers=signed(private, b"[]")
    )
    assert resp.status_code == 503


def test_the_served_app_takes_signed_events_and_refuses_unsigned(
    engine: Engine, database_url: str, key_pair: tuple[ec.EllipticCurvePrivateKey, str]
) -> None:
    from newsletter.web.app import create_app

    private, public = key_pair
    seed_subscribers(engine, 2)
    app = create_app(delivery_settings(database_url, webhook_public_key=public), engine=engine)
    body = events({"event": "spamreport", "sg_event_id": "s1", "email": "reader0@example.com"})
    forged = events({"event": "spamreport", "sg_event_id": "s2", "email": "reader1@example.com"})
    with TestClient(app) as http:
        ok = http.post(
            "/webhooks/sendgrid", content=body, headers=signed(private, body, int(time.time()))
        )
        refused = http.post(
            "/webhooks/sendgrid", content=forged, headers={"Content-Type": "application/json"}
        )
    assert ok.status_code == 200, ok.text
    assert refused.status_code in (400, 403)
    statuses = _statuses(engine)
    assert statuses == {"reader0@example.com": "complained", "reader1@example.com": "active"}
