"""Against a real ``newsletter serve`` process: bodies of any framing are bounded (peak RSS
measured while a 50 MB chunked body arrives), a signed 5,000-event webhook batch is accepted
while ``/healthz`` keeps answering, and tokens never reach the access log whole."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import create_engine, event, text
from sqlmodel import Session, select

from newsletter.config import settings_for_tests
from newsletter.db import make_engine
from newsletter.delivery.events import SIGNATURE_HEADER, TIMESTAMP_HEADER, handle_events
from newsletter.delivery.models import WebhookEvent
from subscribers import service
from subscribers.links import link
from subscribers.models import Subscriber
from tests.live_server import free_port
from tests.subscriber_helpers import SECRET, with_secret

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


@dataclass
class Server:
    base: str
    port: int
    proc: subprocess.Popen[bytes]
    db_url: str
    private: ec.EllipticCurvePrivateKey
    log: Path


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module (starting one takes seconds); the tests use distinct rows."""
    tmp_path = tmp_path_factory.mktemp("served")
    private = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    db_url = f"sqlite:///{tmp_path / 'site.db'}"
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "database_url": db_url,
                "archive_dir": str(tmp_path / "archive"),
                "delivery": {"outbox_dir": str(tmp_path / "outbox"), "webhook_public_key": public},
            }
        )
    )
    port = free_port()
    env = {**os.environ, "NEWSLETTER_SECRET_KEY": SECRET, "PYTHONPATH": str(ROOT)}
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "serve", "--no-scheduler", "--port", str(port)]
            + ["--config", str(config)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not _up(base):
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield Server(base, port, proc, db_url, private, log)
    proc.terminate()
    proc.wait(30)


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _chunked_post(
    port: int, path: str, total: int, content_type: str, *, forge: bool = True
) -> bytes:
    """POST ``total`` bytes with Transfer-Encoding: chunked (and a fresh but forged webhook
    signature, so the body is read); returns the answer's bytes."""
    chunk = b"a" * (64 * 1024)
    forged = f"{SIGNATURE_HEADER}: c2lnbmF0dXJl\r\n{TIMESTAMP_HEADER}: {int(time.time())}\r\n"
    if not forge:
        forged = ""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n{forged}"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        sent = 0
        try:
            while sent < total:
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: fine, the answer is read below
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                data = s.recv(65536)
                if not data:
                    break
                answer += data
        except ConnectionResetError:
            pass
    return answer


def test_a_50_mb_chunked_body_is_refused_with_memory_bounded(server: Server) -> None:
    pid = server.proc.pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak (VmHWM) to now
    before = _status_kb(pid, "VmRSS")
    answers = {
        path: _chunked_post(server.port, path, 50 * MB, kind)
        for path, kind in (
            ("/webhooks/sendgrid", "application/json"),
            ("/subscribe", "application/x-www-form-urlencoded"),
        )
    }
    unsigned = _chunked_post(server.port, "/webhooks/sendgrid", 50 * MB, "x/y", forge=False)
    assert unsigned.startswith(b"HTTP/1.1 403")  # refused on its headers, body never read
    peak = _status_kb(pid, "VmHWM")
    for path, answer in answers.items():
        assert answer.startswith(b"HTTP/1.1 413"), (path, answer[:200])
        assert b"x-content-type-options: nosniff" in answer.lower(), path
    grown_mb = (peak - before) / 1024
    print(f"peak RSS grew by {grown_mb:.1f} MB while 3 x 50 MB chunked bodies arrived")
    # The webhook path may hold up to its 8 MB limit; a body read whole would add 50 MB.
    assert grown_mb < 30, grown_mb
    assert _up(server.base)


def _signed(private: ec.EllipticCurvePrivateKey, body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    sig = private.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        SIGNATURE_HEADER: base64.b64encode(sig).decode(),
        TIMESTAMP_HEADER: ts,
        "Content-Type": "application/json",
    }


def _batch(readers: int, total: int) -> bytes:
    events = [
        {
            "email": f"reader{i}@example.org",
            "event": "bounce",
            "type": "bounce",
            "sg_event_id": f"bounce-{i}",
            "timestamp": 1_800_000_000,
            "reason": "550 5.1.1 mailbox unavailable",
        }
        for i in range(readers)
    ]
    events += [
        {
            "email": f"someone{i}@example.org",
            "event": "delivered" if i % 2 else "open",
            "sg_event_id": f"ev-{i:06d}-{'x' * 22}",
            "sg_message_id": f"msg-{i}.filter0001.16648.5515E0B88.0",
            "timestamp": 1_800_000_000 + i,
            "smtp-id": f"<{i}@example.org>",
            "category": ["digest"],
        }
        for i in range(total - readers)
    ]
    return json.dumps(events).encode()


def test_a_signed_5000_event_batch_is_accepted_while_healthz_answers(server: Server) -> None:
    settings = settings_for_tests(database_url=server.db_url)
    engine = make_engine(server.db_url)
    with Session(engine) as s:
        for i in range(50):
            service.add(s, settings=settings, email=f"reader{i}@example.org", active=True)
        s.commit()
    body = _batch(50, 5000)
    assert len(body) > 1 * MB  # well past the old 64 KB limit
    # Hold the database's write lock: the batch waits for it in a worker thread, and the
    # server must go on answering meanwhile (it could not if the batch ran on the event loop).
    blocker = create_engine(server.db_url)
    conn = blocker.raw_connection()
    conn.execute("BEGIN IMMEDIATE")
    result: dict[str, httpx.Response] = {}

    def post() -> None:
        result["r"] = httpx.post(
            f"{server.base}/webhooks/sendgrid",
            content=body,
            headers=_signed(server.private, body),
            timeout=60,
        )

    sender = threading.Thread(target=post)
    sender.start()
    try:
        answered = 0
        deadline = time.monotonic() + 30
        while answered < 5:
            assert time.monotonic() < deadline
            assert httpx.get(f"{server.base}/healthz", timeout=5).status_code == 200
            answered += 1
        time.sleep(0.2)  # time for the batch to arrive; it must still be waiting for the lock
        assert sender.is_alive() and "r" not in result
        assert httpx.get(f"{server.base}/healthz", timeout=5).status_code == 200
    finally:
        conn.rollback()
        conn.close()
        blocker.dispose()
    sender.join(60)
    r = result["r"]
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 5000, "duplicates": 0, "suppressed": 50, "ignored": 4950}
    with Session(engine) as s:
        statuses = set(s.exec(select(Subscriber.status)).all())
        count = s.execute(text("SELECT count(*) FROM webhook_events")).scalar()
    assert statuses == {"bounced"} and count == 5000
    engine.dispose()


def test_a_batch_is_one_transaction(tmp_path: Path) -> None:
    from newsletter.db import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'one.db'}")
    upgrade(engine)
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    events = json.loads(_batch(0, 2000))
    result = handle_events(engine, events)
    assert (result.received, result.ignored, len(commits)) == (2000, 2000, 1)
    again = handle_events(engine, events + [{"event": "open", "sg_event_id": "new"}])
    assert (again.duplicates, again.ignored, len(commits)) == (2000, 1, 2)
    with Session(engine) as s:
        assert len(s.exec(select(WebhookEvent)).all()) == 2001
    engine.dispose()


def test_tokens_never_reach_the_access_log(server: Server) -> None:
    settings = with_secret(settings_for_tests(database_url=server.db_url))
    engine = make_engine(server.db_url)
    with Session(engine) as s:
        sub = service.add(s, settings=settings, email="reader@example.org", active=True).subscriber
        s.commit()
        url = link(settings, "unsubscribe", sub.id or 0, sub.link_key)
    engine.dispose()
    token = url.rsplit("/", 1)[1]
    assert httpx.get(f"{server.base}/unsubscribe/{token}").status_code == 200
    assert httpx.get(f"{server.base}/preferences/{token}").status_code == 404
    deadline = time.monotonic() + 10
    while "/preferences/[token]" not in server.log.read_text():
        assert time.monotonic() < deadline, server.log.read_text()
        time.sleep(0.05)
    logged = server.log.read_text()
    assert "/unsubscribe/[token]" in logged and token not in logged
