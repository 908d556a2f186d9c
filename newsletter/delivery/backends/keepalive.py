"""One kept-alive HTTP connection per sending thread, on the standard library's ``http.client``.

Why: the sender is CPU-bound, and a request through a general-purpose client (httpx: pool,
event model, tracing) cost about three times the CPU of the same request on ``http.client``
(0.44 ms against 0.16 ms, see docs/email-delivery.md). One endpoint, one connection per thread
and a fully read answer need none of that machinery.

Each sending thread gets its own connection and reuses it. Before a kept connection is used
again it is checked: if the server has closed it (or sent anything) while it was idle, it is
replaced first, so a request is never written into a dead connection. Callers can tell
"never sent" (``NotSent``: no connection could be made) from "sent, outcome unknown" (any other
``TransportError``: a timeout, reset or malformed answer after the request went out); nothing
is ever sent twice here. ``timeout`` bounds each blocking step (connect, each write, each read).
``HTTPS_PROXY`` / ``NO_PROXY`` are honoured through a CONNECT tunnel, as other HTTP clients do.
Nothing is logged here (headers carry the API key, bodies carry addresses).
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import urllib.request
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit


class TransportError(Exception):
    """The request may have reached the server, but no complete answer came back."""


class NotSent(TransportError):
    """No connection could be made: nothing was sent, so trying again is safe."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete HTTP answer (its body read to the end, so the connection can be reused)."""

    status: int
    headers: Mapping[str, str]  # lower-case names
    content: bytes


def _idle_closed(sock: socket.socket | None) -> bool:
    """True when a kept connection has become readable while idle: the server closed it (or
    broke the protocol); either way it must not carry the next request."""
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _close_all(conns: list[http.client.HTTPConnection], lock: threading.Lock) -> None:
    with lock:
        for conn in conns:
            conn.close()
        conns.clear()


class ThreadClients:
    """A connection per thread to one origin, with the same headers and timeout for all, and
    one TLS context between them (a context each would load the CA store once per thread)."""

    def __init__(self, base_url: str, *, headers: Mapping[str, str], timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.headers = {"Host": parts.netloc, **headers}
        self.timeout = timeout
        self._tls = ssl.create_default_context() if self.https else None
        self._proxy = self._proxy_for(base_url)
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _close_all, self._all, self._lock)

    @staticmethod
    def _proxy_for(url: str) -> tuple[str, int] | None:
        parts = urlsplit(url)
        if urllib.request.proxy_bypass(parts.netloc):
            return None
        proxy = urllib.request.getproxies().get(parts.scheme)
        if not proxy:
            return None
        where = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        return (where.hostname or "", where.port or 80)

    def _new(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        host, port = self._proxy or (self.host, self.port)
        if self._tls is not None:
            conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._tls)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        if self._proxy is not None:
            conn.set_tunnel(self.host, self.port)
        return conn

    def _connection(self) -> http.client.HTTPConnection:
        """This thread's connection, open and idle, or a new one (``NotSent`` if none can be
        made)."""
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and _idle_closed(conn.sock):
            conn.close()
        if conn is None:
            conn = self._local.conn = self._new()
            with self._lock:
                self._all.append(conn)
        if conn.sock is None:
            try:
                conn.connect()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise NotSent(f"{type(exc).__name__}: {exc}") from exc
        return conn

    def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """POST ``body`` (sent whole, with its ``Content-Length``) and read the whole answer."""
        conn = self._connection()
        try:
            conn.request("POST", self.prefix + path, body=body, headers={**self.headers, **headers})
            response = conn.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()  # its state is unknown: the next request gets a new connection
            name = "Timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            raise TransportError(f"{name}: {exc}") from exc
        if response.will_close:
            conn.close()
        answer_headers = {k.lower(): v for k, v in response.getheaders()}
        return Answer(response.status, answer_headers, content)

    def close(self) -> None:
        """Close every thread's connection (a thread that sends again gets a new one)."""
        _close_all(self._all, self._lock)
        self._local = threading.local()
