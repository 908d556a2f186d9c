"""A small real HTTP server on 127.0.0.1 for tests: routes are plain functions, requests recorded.

Every fake service in the tests (arXiv, OpenAI, SendGrid) is built on this one helper.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    client_port: int = 0  # the same port on two requests: they came over one connection


@dataclass
class Response:
    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/plain; charset=utf-8"
    # Keep-alive tests: ``close`` ends the connection after answering without saying so (as a
    # server's idle timeout does); ``hang_up`` ends it instead of answering (outcome unknown).
    close: bool = False
    hang_up: bool = False


Handler = Callable[[Request], Response]


class _Server(ThreadingHTTPServer):
    """A real server's listen backlog (the standard library's is 5: a sender that opens its 64
    connections at once would see some of them reset, which no provider does)."""

    request_queue_size = 128
    daemon_threads = True


class TestServer:
    """Serves ``routes[(method, path)]``; records every request in ``requests``."""

    __test__ = False  # not a pytest test class

    def __init__(self, *, record: bool = True) -> None:
        """``record=False`` keeps no requests (benchmarks: bodies would fill the memory)."""
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[Request] = []
        self.record = record
        self.ended = 0  # connections ended by ``close`` or ``hang_up`` (their FIN is sent)
        self._lock = threading.Lock()
        outer = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms stalls

            def log_message(self, *_args: object) -> None:
                pass

            def _end(self) -> None:
                self.close_connection = True
                with contextlib.suppress(OSError):  # the client may have gone already
                    self.connection.shutdown(socket.SHUT_RDWR)
                with outer._lock:
                    outer.ended += 1

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if len(body) < length:  # the client died mid-request (SIGKILL): not a request
                    self.close_connection = True
                    return
                parts = urlsplit(self.path)
                req = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    client_port=self.client_address[1],
                )
                if outer.record:
                    with outer._lock:
                        outer.requests.append(req)
                handler = outer.routes.get((self.command, parts.path)) or outer.routes.get(
                    (self.command, "*")
                )
                resp = handler(req) if handler else Response(404, b"not found")
                if resp.hang_up:
                    self._end()
                    return
                payload = resp.body.encode() if isinstance(resp.body, str) else resp.body
                try:
                    self.send_response(resp.status)
                    self.send_header("Content-Type", resp.content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in resp.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                if resp.close:
                    self._end()

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = _Server(("127.0.0.1", 0), _H)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.routes[(method, path)] = fn
            return fn

        return deco

    def __enter__(self) -> TestServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
