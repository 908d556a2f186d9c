"""One limit on request bodies, whatever their framing: declared (``Content-Length``) or not
(``Transfer-Encoding: chunked``), every body is counted as it streams in and refused with 413
the moment it passes the limit of its path, so no request can make the app hold more."""

from __future__ import annotations

import re
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_LIMIT = 64 * 1024


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when the body passes its limit; the app's error handler turns
    it into the 413 page (routes never catch it: FastAPI re-raises HTTP exceptions)."""

    def __init__(self) -> None:
        super().__init__(status_code=413)


class BodyLimit:
    """``limit`` bytes for every path, except those in ``limits`` (path -> bytes) and those a
    regular expression of ``patterns`` matches whole (paths with a token in them)."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int = DEFAULT_LIMIT,
        limits: Mapping[str, int] | None = None,
        patterns: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.limits = dict(limits or {})
        self.patterns = [(re.compile(p), n) for p, n in (patterns or {}).items()]

    def limit_for(self, path: str) -> int:
        if path in self.limits:
            return self.limits[path]
        for pattern, n in self.patterns:
            if pattern.fullmatch(path):
                return n
        return self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(str(scope.get("path", "")))
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                await _refuse(send)
                return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            await _refuse(send)


async def _refuse(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"Request too large\n"})
