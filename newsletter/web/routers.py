"""The routers every app includes. Other parts add theirs here (one line each)."""

from __future__ import annotations

from fastapi import APIRouter


def default_routers() -> list[APIRouter]:
    from newsletter.web import archive, feeds, ops
    from newsletter.web.admin.routes import router as admin_router
    from newsletter.web.feedback_routes import router as feedback_router
    from newsletter.web.profile_routes import router as profile_router
    from newsletter.web.subscriber_routes import router as subscriber_router
    from newsletter.web.webhooks import router as webhook_router

    return [
        subscriber_router,
        archive.router,
        feeds.router,
        ops.router,
        ops.admin_router,
        webhook_router,
        admin_router,
        feedback_router,
        profile_router,
    ]
