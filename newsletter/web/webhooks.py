"""``POST /webhooks/sendgrid``: SendGrid's signed Event Webhook (bounces, complaints, unsubscribes).

The headers are checked first (configured, signed, fresh), so an unsigned request is refused
without reading its body. The body is read as it streams in, within
``web.webhook_max_body_bytes`` (the app's body limit), by at most ``READERS`` requests at once
(others get 503 and SendGrid retries), so memory stays bounded however many arrive together.
Verifying and applying the batch run in a worker thread, so a large batch never stops the event
loop (``/healthz`` and every page keep answering meanwhile).

``make_router(settings, engine)`` builds the router for an app; ``router`` does the same with the
settings and engine an app keeps in ``app.state.settings`` and ``app.state.engine``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from newsletter.config import Settings
from newsletter.delivery.events import WebhookRejected, check_headers, handle_events, verify

PATH = "/webhooks/sendgrid"
READERS = 4  # webhook bodies read at once (each at most web.webhook_max_body_bytes)


async def _receive(
    request: Request,
    settings: Settings,
    engine: Engine,
    clock: Callable[[], float],
    readers: asyncio.Semaphore,
) -> JSONResponse:
    headers = dict(request.headers)
    try:
        check_headers(
            settings.delivery.webhook_public_key,
            headers,
            now=clock(),
            max_age_seconds=settings.delivery.webhook_max_age_seconds,
        )
    except WebhookRejected as exc:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)
    if readers.locked():
        return JSONResponse(
            {"detail": "busy, retry later"}, status_code=503, headers={"Retry-After": "10"}
        )
    async with readers:
        body = await request.body()  # the raw bytes: the signature covers them exactly
    return await run_in_threadpool(_process, settings, engine, body, headers, clock())


def _process(
    settings: Settings, engine: Engine, body: bytes, headers: dict[str, str], now: float
) -> JSONResponse:
    try:
        events = verify(
            settings.delivery.webhook_public_key,
            body,
            headers,
            now=now,
            max_age_seconds=settings.delivery.webhook_max_age_seconds,
        )
    except WebhookRejected as exc:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)
    result = handle_events(engine, events)
    return JSONResponse(result.__dict__)


def make_router(
    settings: Settings, engine: Engine, *, clock: Callable[[], float] = time.time
) -> APIRouter:
    r = APIRouter()
    readers = asyncio.Semaphore(READERS)

    @r.post(PATH, include_in_schema=False)
    async def sendgrid_events(request: Request) -> Any:
        return await _receive(request, settings, engine, clock, readers)

    return r


router = APIRouter()


@router.post(PATH, include_in_schema=False)
async def sendgrid_events(request: Request) -> Any:
    state = request.app.state
    readers = getattr(state, "webhook_readers", None)
    if readers is None:
        readers = state.webhook_readers = asyncio.Semaphore(READERS)
    return await _receive(request, state.settings, state.engine, time.time, readers)
