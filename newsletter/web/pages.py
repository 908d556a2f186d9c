"""The shared Jinja environment (autoescaped) and ``render``: every router's pages use these,
so they share ``web/base.html``, the stylesheet, the security headers and the CSRF field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from newsletter.config import Settings
from newsletter.paths import templates_dir
from newsletter.web.security import CSRF_FIELD, csrf_token, set_csrf_cookie


def make_templates() -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        autoescape=select_autoescape(enabled_extensions=("html", "xml"), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=env)


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    with_csrf: bool = True,
) -> HTMLResponse:
    """Render ``name`` (e.g. ``web/index.html``) with the site's common context. Pages that
    hold a form get ``csrf_field``; the browser's CSRF cookie is set when it has none."""
    settings: Settings = request.app.state.settings
    ctx: dict[str, Any] = {
        "site_name": settings.site_name,
        "base_url": settings.base_url,
        "postal_address": settings.email.postal_address,
        "csrf_field_name": CSRF_FIELD,
    }
    if with_csrf:
        ctx["csrf_token"] = csrf_token(request, settings)
    ctx.update(context or {})
    templates: Jinja2Templates = request.app.state.templates
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    if with_csrf:
        set_csrf_cookie(request, response, settings)
    return response
