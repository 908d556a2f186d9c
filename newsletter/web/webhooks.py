"""``POST /webhooks/sendgrid``: SendGrid's signed Event Webhook (bounces, complaints, unsubscribes).

The body is read as it streams in, within ``web.webhook_max_body_bytes`` (the app's body
limit); verifying and applying the batch run in a worker thread, so a large batch never stops
the event loop (``/healthz`` and every page keep answering meanwhile).

``make_router(settings, engine)`` builds the router for an app; ``router`` does the same with the
settings and engine an app keeps in ``app.state.settings`` and ``app.state.engine``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from newsletter.config import Settings
from newsletter.delivery.events import WebhookRejected, handle_events, verify

PATH = "/webhooks/sendgrid"


async def _receive(
    request: Request, settings: Settings, engine: Engine, clock: Callable[[], float]
) -> JSONResponse:
    body = await request.body()  # the raw bytes: the signature covers them exactly
    headers = dict(request.headers)
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

    @r.post(PATH, include_in_schema=False)
    async def sendgrid_events(request: Request) -> Any:
        return await _receive(request, settings, engine, clock)

    return r


router = APIRouter()


@router.post(PATH, include_in_schema=False)
async def sendgrid_events(request: Request) -> Any:
    state = request.app.state
    return await _receive(request, state.settings, state.engine, time.time)
