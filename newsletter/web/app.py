"""``create_app(settings)``: the FastAPI app, built on demand (no import-time globals).

Other parts add pages by listing their routers in ``newsletter.web.routers.default_routers``
(or by passing ``routers=``); they render with ``newsletter.web.pages.render`` so every page
shares ``templates/web/base.html``, the stylesheet, the headers and the error pages.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from sqlalchemy.engine import Engine
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from newsletter.config import Settings
from newsletter.db import make_engine, upgrade
from newsletter.paths import templates_dir
from newsletter.web import errors
from newsletter.web.pages import make_templates
from newsletter.web.security import SecurityHeaders, require_secret_key

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024

# Started with the app when the scheduler is enabled; returns a stop function (or None).
BackgroundStarter = Callable[[Settings, Engine], Callable[[], None] | None]


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes (forms here are tiny) before parsing; the
    preferences page's file upload (``/preferences/…/profile``) may send ``upload_limit``, so
    that an over-large export gets the page's own clear message, not a bare 413."""

    def __init__(
        self, app: ASGIApp, limit: int = MAX_BODY_BYTES, upload_limit: int = MAX_BODY_BYTES
    ) -> None:
        self.app = app
        self.limit = limit
        self.upload_limit = max(limit, upload_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = str(scope.get("path", ""))
            upload = path.startswith("/preferences/") and path.endswith("/profile")
            limit = self.upload_limit if upload else self.limit
            for name, value in scope.get("headers", []):
                if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 413,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                        }
                    )
                    await send({"type": "http.response.body", "body": b"Request too large\n"})
                    return
        await self.app(scope, receive, send)


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    routers: Sequence[APIRouter] | None = None,
    background: BackgroundStarter | None = None,
    migrate: bool = True,
) -> FastAPI:
    """Build the app. Refuses a missing or weak ``NEWSLETTER_SECRET_KEY`` (ConfigError).
    Migrations run at startup (``migrate``); ``background`` (the scheduler) starts after them."""
    require_secret_key(settings)
    db = engine if engine is not None else make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate:
            upgrade(db)
        stop = background(settings, db) if background is not None else None
        try:
            yield
        finally:
            if stop is not None:
                stop()

    app = FastAPI(
        title=settings.site_name,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        debug=False,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = db
    app.state.templates = make_templates()
    errors.install(app)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, upload_limit=10 * settings.ranking.max_upload_bytes)
    app.mount("/static", StaticFiles(directory=templates_dir() / "web" / "static"), name="static")
    if routers is None:
        from newsletter.web.routers import default_routers

        routers = default_routers()
    for router in routers:
        app.include_router(router)
    return app
