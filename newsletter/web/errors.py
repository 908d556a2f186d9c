"""Every error becomes a friendly page here, in one place; no stack trace ever reaches a page."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from newsletter.web.pages import render
from newsletter.web.redact import redact_path
from newsletter.web.security import apply_security_headers
from subscribers.errors import SubscriberError

log = logging.getLogger(__name__)

_HTTP_TITLES = {
    404: ("Page not found", "There is no page at this address."),
    405: ("Not allowed", "This page cannot be used that way."),
    413: ("Too large", "That request was too large."),
}


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    try:
        response: Response = render(
            request,
            "web/error.html",
            {"title": title, "message": message},
            status_code=status,
            with_csrf=False,
        )
    except Exception:  # the template itself failed: fall back to plain text
        log.exception("error page could not be rendered")
        response = PlainTextResponse(f"{title}\n\n{message}\n", status_code=status)
    return response


async def _subscriber_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, SubscriberError):
        raise exc
    response = error_page(request, exc.status_code, exc.title, exc.message)
    if exc.status_code == 429:
        response.headers["Retry-After"] = "3600"
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):
        raise exc
    title, message = _HTTP_TITLES.get(
        exc.status_code, ("Something went wrong", "Please try again.")
    )
    response = error_page(request, exc.status_code, title, message)
    for k, v in (exc.headers or {}).items():
        response.headers[k] = v
    return response


async def _validation_error(request: Request, exc: Exception) -> Response:
    return error_page(request, 400, "Please check the form", "Some fields were missing or invalid.")


async def _server_error(request: Request, exc: Exception) -> Response:
    path = redact_path(request.url.path)
    log.exception("unhandled error on %s %s", request.method, path, exc_info=exc)
    response = HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Error</title>"
        '<link rel=stylesheet href="/static/site.css"></head><body><main><section class=card>'
        "<h1>Something went wrong</h1><p>The error has been logged. Please try again later.</p>"
        '<p><a href="/">Back to the home page</a></p></section></main></body></html>',
        status_code=500,
    )
    return apply_security_headers(response, getattr(request.app.state, "settings", None))


def install(app: FastAPI) -> None:
    app.add_exception_handler(SubscriberError, _subscriber_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _server_error)
