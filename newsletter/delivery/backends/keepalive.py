"""One kept-alive HTTP connection per sending thread, through httpx's public API.

Why: a new TCP (and TLS) connection for every request costs CPU the sender does not have (it is
CPU-bound). Each sending thread gets its own ``httpx.Client``, whose pool keeps that thread's
connection to the provider open and reuses it; ``close`` ends them all. httpx itself replaces a
connection the server closed while it was idle before sending on it, and never sends a request
twice, so callers can tell "never sent" (``httpx.ConnectError``, ``httpx.ConnectTimeout``) from
"sent, outcome unknown" (any other ``httpx.TransportError``). Nothing is logged here (headers carry
the API key, bodies carry addresses).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping

import httpx


def _close_all(clients: list[httpx.Client], lock: threading.Lock) -> None:
    with lock:
        for client in clients:
            client.close()
        clients.clear()


class ThreadClients:
    """An ``httpx.Client`` per thread, all with the same base URL, headers and timeout, and one
    TLS context between them (a context per client would load the CA store 32 times: ~1 MB each)."""

    def __init__(self, base_url: str, *, headers: Mapping[str, str], timeout: float) -> None:
        self.base_url, self.headers, self.timeout = base_url, dict(headers), timeout
        self._tls = httpx.create_ssl_context()
        self._local = threading.local()
        self._all: list[httpx.Client] = []
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _close_all, self._all, self._lock)

    def get(self) -> httpx.Client:
        """This thread's client (made on first use)."""
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(
                base_url=self.base_url, headers=self.headers, timeout=self.timeout, verify=self._tls
            )
            self._local.client = client
            with self._lock:
                self._all.append(client)
        return client

    def close(self) -> None:
        """Close every thread's connection (a thread that sends again gets a new client)."""
        _close_all(self._all, self._lock)
        self._local = threading.local()
