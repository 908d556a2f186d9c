"""SendGrid requests reuse one connection a thread; a closed one is replaced, a lost answer is
not guessed at (the recording server ends connections the way real servers do)."""

from __future__ import annotations

import json
import random
import select
import socket
import socketserver
import threading
import time
from collections.abc import Callable

import pytest

from newsletter.delivery.backends.sendgrid import SendGridBackend
from tests.fixtures_delivery import API_KEY, FakeSendGrid
from tests.httpserver import Response

BODY = '{"personalizations": [{"to": [{"email": "r@example.com"}]}]}'


def backend(sg: FakeSendGrid) -> SendGridBackend:
    return SendGridBackend(API_KEY, sg.url, sleep=lambda _s: None, rng=random.Random(1))


def wait_for(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_requests_from_one_thread_share_one_connection_and_threads_their_own() -> None:
    with FakeSendGrid() as sg:
        sender = backend(sg)
        outcomes = [sender.post(BODY) for _ in range(5)]
        ports = [r.client_port for r in sg.requests]
        other: list[str] = []
        t = threading.Thread(target=lambda: other.append(sender.post(BODY).status))
        t.start()
        t.join()
        sender.close()
    assert [o.status for o in outcomes] == ["sent"] * 5
    assert [o.provider_id for o in outcomes] == [f"sg-{i}" for i in range(1, 6)]
    assert len(set(ports)) == 1  # five requests, one TCP connection
    assert other == ["sent"] and sg.requests[5].client_port != ports[0]
    assert sg.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


def test_errors_keep_their_status_body_and_headers_on_a_kept_connection() -> None:
    sleeps: list[float] = []
    with FakeSendGrid() as sg:
        sg.script = [Response(429, "slow down", headers={"Retry-After": "7"})]
        sender = SendGridBackend(API_KEY, sg.url, sleep=sleeps.append)
        assert sender.post(BODY).status == "sent"
        sg.script = [Response(400, '{"errors":[{"message":"bad"}]}')]
        failed = sender.post(BODY)
        assert sender.post(BODY).status == "sent"
        assert len({r.client_port for r in sg.requests}) == 1
    assert sleeps == [7]
    assert failed.status == "failed" and failed.error == (
        'SendGrid 400: {"errors":[{"message":"bad"}]}'
    )


def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    with FakeSendGrid() as sg:
        sender = backend(sg)
        sg.script = [Response(202, headers={"X-Message-Id": "a"}, close=True)]
        first = sender.post(BODY)
        wait_for(lambda: sg.server.ended == 1)  # the server's FIN is on its way: idle timeout
        second = sender.post(BODY)
        third = sender.post(BODY)
        ports = [r.client_port for r in sg.requests]
    assert [first.status, second.status, third.status] == ["sent"] * 3
    assert len(sg.requests) == 3  # nothing sent twice
    assert ports[0] != ports[1] == ports[2]  # a new connection, kept in turn


def test_a_connection_lost_after_the_request_went_out_is_unknown_not_resent() -> None:
    with FakeSendGrid() as sg:
        sender = backend(sg)
        assert sender.post(BODY).status == "sent"
        sg.script = [Response(hang_up=True)]
        lost = sender.post(BODY)
        assert len(sg.requests) == 2  # it reached the server and was not sent again
        after = sender.post(BODY)
        ports = [r.client_port for r in sg.requests]
    assert lost.status == "unknown" and "SendGrid request" in (lost.error or "")
    assert after.status == "sent" and len(sg.requests) == 3
    assert ports[0] == ports[1] != ports[2]


def test_the_timeout_holds_on_a_kept_connection() -> None:
    with FakeSendGrid() as sg:
        sender = SendGridBackend(API_KEY, sg.url, sleep=lambda _s: None, timeout=0.2)
        assert sender.post(BODY).status == "sent"
        sg.block_at = {2}
        slow = sender.post(BODY)
        sg.release.set()
    assert slow.status == "unknown" and "Timeout" in (slow.error or "")


def test_a_large_body_goes_out_whole_with_its_length_not_chunked() -> None:
    big = json.dumps(
        {"personalizations": [{"to": [{"email": "r@example.com"}]}], "x": "é" * 200_000}
    )
    with FakeSendGrid() as sg:
        sender = backend(sg)
        assert sender.post(big).status == "sent"
        request = sg.requests[0]
        sender.close()
    sent = big.encode("utf-8")
    assert request.headers["content-length"] == str(len(sent))
    assert "transfer-encoding" not in request.headers
    assert request.body == sent and request.headers["content-type"].startswith("application/json")


class ConnectProxy:
    """A real forward proxy on 127.0.0.1 that speaks only CONNECT (as HTTPS proxies do):
    it records each tunnel's target and pipes bytes both ways."""

    def __init__(self) -> None:
        self.tunnels: list[str] = []
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = self.request.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
                if method != "CONNECT":
                    self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                    return
                proxy.tunnels.append(target)
                host, port = target.rsplit(":", 1)
                with socket.create_connection((host, int(port))) as upstream:
                    self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    _pipe(self.request, upstream)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> ConnectProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes between two sockets until either side closes."""
    while True:
        readable, _, _ = select.select([a, b], [], [], 5)
        if not readable:
            return
        for src in readable:
            data = src.recv(65536)
            if not data:
                return
            (b if src is a else a).sendall(data)


def test_the_proxy_of_the_environment_carries_the_requests_through_a_tunnel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("no_proxy", "NO_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with FakeSendGrid() as sg, ConnectProxy() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        sender = backend(sg)
        outcomes = [sender.post(BODY).status for _ in range(3)]
        sender.close()
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        direct = backend(sg)
        assert direct.post(BODY).status == "sent"
        direct.close()
    assert outcomes == ["sent"] * 3
    # One tunnel for the three requests (the connection is kept), none for the bypassed host.
    assert proxy.tunnels == [sg.url.removeprefix("http://")]
    assert len(sg.requests) == 4
