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

from newsletter.config import Settings
from newsletter.db import make_engine, upgrade
from newsletter.paths import templates_dir
from newsletter.web import admin, errors, redact
from newsletter.web.after_response import AfterResponse
from newsletter.web.body_limit import BodyLimit
from newsletter.web.pages import make_templates
from newsletter.web.security import (
    SecurityHeaders,
    headers_for,
    require_admin_token,
    require_secret_key,
)
from newsletter.web.webhooks import PATH as WEBHOOK_PATH

log = logging.getLogger(__name__)

# Started with the app when the scheduler is enabled; returns a stop function (or None).
BackgroundStarter = Callable[[Settings, Engine], Callable[[], None] | None]


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    routers: Sequence[APIRouter] | None = None,
    background: BackgroundStarter | None = None,
    migrate: bool = True,
) -> FastAPI:
    """Build the app. Refuses a missing or weak ``NEWSLETTER_SECRET_KEY`` and a short
    ``NEWSLETTER_ADMIN_TOKEN`` (ConfigError). Migrations run at startup (``migrate``);
    ``background`` (the scheduler) starts after them."""
    require_secret_key(settings)
    require_admin_token(settings)
    db = engine if engine is not None else make_engine(settings.database_url)
    after_response = AfterResponse()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate:
            upgrade(db)
        log_filter = redact.install()  # after uvicorn has configured its loggers
        stop = background(settings, db) if background is not None else None
        try:
            yield
        finally:
            if stop is not None:
                stop()
            after_response.close()
            redact.uninstall(log_filter)

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
    app.state.after_response = after_response
    errors.install(app)
    # The body limit sits inside the headers, so its 413 carries them too.
    app.add_middleware(
        BodyLimit,
        limit=settings.web.max_body_bytes,
        limits={
            WEBHOOK_PATH: settings.web.webhook_max_body_bytes,
            admin.IMPORT_PATH: admin.MAX_IMPORT_BYTES,
        },
        # the preferences page's profile upload: an over-large export gets the page's message
        patterns={r"/preferences/[^/]+/profile": 10 * settings.ranking.max_upload_bytes},
    )
    app.add_middleware(SecurityHeaders, headers=headers_for(settings))
    app.mount("/static", StaticFiles(directory=templates_dir() / "web" / "static"), name="static")
    if routers is None:
        from newsletter.web.routers import default_routers

        routers = default_routers()
    for router in routers:
        app.include_router(router)
    return app
