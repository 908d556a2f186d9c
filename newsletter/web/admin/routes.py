"""The dashboard's routes: thin, like every route here. Each one checks the operator's session
(``AdminDep``), reads its form, checks CSRF, calls a module of this package and renders a page.

Without ``NEWSLETTER_ADMIN_TOKEN`` every path answers 404, exactly like a path that does not
exist; without a valid session every path sends the browser to the sign-in form.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.models import IssueRow, daily_issue, utcnow
from newsletter.runtime.scheduler import stored_next_run
from newsletter.web.admin import (
    MAX_IMPORT_BYTES,
    actions,
    chart,
    details,
    search,
    session,
    stats,
    throttle,
)
from newsletter.web.admin.sending import SendThreads
from newsletter.web.deps import SessionDep, client_ip
from newsletter.web.pages import render
from newsletter.web.security import CSRF_FIELD, csrf_valid
from subscribers import csvio
from subscribers.errors import InvalidInput, SubscriberError
from subscribers.models import STATUSES

log = logging.getLogger(__name__)
router = APIRouter(prefix="/admin")

CsrfField = Annotated[str, Form(alias=CSRF_FIELD)]
REFRESH_SECONDS = 5


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    if not session.admin_enabled(settings):
        raise HTTPException(status_code=404)
    return settings


def require_admin(request: Request) -> Settings:
    """The settings, for a signed-in operator; 404 without a token, else off to sign in."""
    settings = _settings(request)
    if not session.valid(settings, request.cookies.get(session.COOKIE)):
        raise HTTPException(status_code=303, headers={"Location": "/admin/login"})
    return settings


AdminDep = Annotated[Settings, Depends(require_admin)]


def _check_csrf(request: Request, settings: Settings, token: str) -> None:
    if not csrf_valid(request, settings, token):
        raise InvalidInput("the form expired; reload the page and try again")


def _senders(request: Request, settings: Settings) -> SendThreads:
    senders: SendThreads | None = getattr(request.app.state, "admin_sends", None)
    if senders is None:
        senders = SendThreads(request.app.state.engine, settings)
        request.app.state.admin_sends = senders
    return senders


def _page(request: Request, name: str, context: dict[str, Any], **kw: Any) -> Response:
    return render(request, f"web/admin/{name}", {"admin": True, **context}, **kw)


# -- sign-in -------------------------------------------------------------------------------


def _login_page(request: Request, error: str | None = None, status_code: int = 200) -> Response:
    return _page(request, "login.html", {"error": error}, status_code=status_code)


@router.get("/login")
def login_page(request: Request) -> Response:
    settings = _settings(request)
    if session.valid(settings, request.cookies.get(session.COOKIE)):
        return RedirectResponse("/admin", status_code=303)
    return _login_page(request)


@router.post("/login")
def login(
    request: Request, db: SessionDep, csrf: CsrfField = "", token: Annotated[str, Form()] = ""
) -> Response:
    settings = _settings(request)
    if not csrf_valid(request, settings, csrf):
        return _login_page(request, "The form expired; please try again.", 400)
    key = throttle.client_key(client_ip(request))
    if throttle.throttled(db, key=key):
        db.commit()
        response = _login_page(
            request, "Too many failed sign-ins. Please wait a quarter of an hour.", 429
        )
        response.headers["Retry-After"] = str(throttle.retry_after_seconds())
        return response
    if not session.token_matches(settings, token[:1024]):
        throttle.record_failure(db, key=key)
        db.commit()
        log.warning("failed dashboard sign-in from %s", client_ip(request))
        return _login_page(request, "That is not the admin token.", 401)
    actions.audit(db, "sign-in", ip=client_ip(request))
    db.commit()
    response = RedirectResponse("/admin", status_code=303)
    session.issue_cookie(settings, response)
    return response


@router.post("/logout")
def logout(request: Request, db: SessionDep, settings: AdminDep, csrf: CsrfField = "") -> Response:
    _check_csrf(request, settings, csrf)
    actions.audit(db, "sign-out", ip=client_ip(request))
    db.commit()
    response = RedirectResponse("/admin/login", status_code=303)
    session.clear_cookie(settings, response)
    return response


# -- overview ------------------------------------------------------------------------------


@router.get("")
def overview(request: Request, db: SessionDep, settings: AdminDep) -> Response:
    activity = stats.daily_activity(db)
    counts = stats.subscriber_counts(db)
    running = stats.running_runs(db)
    sending = stats.sends_in_progress(db)
    return _page(
        request,
        "overview.html",
        {
            "counts": counts,
            "total": sum(counts.values()),
            "activity": activity,
            "chart": chart.line_chart(
                activity.days, activity.series, title="Subscriber events per day"
            ),
            "issues": stats.recent_issues(db),
            "running": running,
            "sending": sending,
            "refresh": REFRESH_SECONDS
            if running or any(f.count("sending") for f in sending)
            else None,
            "next_run": stored_next_run(request.app.state.engine),
            "schedule": settings.schedule,
            "warnings": stats.warnings(db, settings),
            "rates": stats.rates(db),
        },
    )


# -- subscribers ---------------------------------------------------------------------------


@router.get("/subscribers")
def subscribers(
    request: Request,
    db: SessionDep,
    settings: AdminDep,
    q: str = "",
    keyword: str = "",
    status: str = "",
    page: str = "1",
) -> Response:
    found = search.search(db, search.Query.parse(q, keyword, status, page))
    return _page(
        request, "subscribers.html", {"found": found, "statuses": STATUSES, "report": None}
    )


@router.get("/subscribers.csv")
def export_csv(request: Request, db: SessionDep, settings: AdminDep, status: str = "") -> Response:
    out = io.StringIO()
    chosen = status if status in STATUSES else None
    count = csvio.export_csv(db, out=out, status=chosen)
    actions.audit(
        db, "export", target=chosen or "all", detail=f"{count} rows", ip=client_ip(request)
    )
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="subscribers-{stamp}.csv"'},
    )


def _import(request: Request, settings: Settings, text: str, name: str) -> csvio.ImportReport:
    with session_scope(request.app.state.engine) as db:
        report = csvio.import_csv(db, settings=settings, source=io.StringIO(text, newline=""))
        actions.audit(
            db,
            "import",
            target=name[:200],
            detail=(
                f"imported {report.imported}, already present {report.existing}, "
                f"suppressed {report.suppressed}, bad rows {len(report.errors)}"
            ),
            ip=client_ip(request),
        )
    return report


@router.post("/subscribers/import")
async def import_csv(request: Request) -> Response:
    settings = require_admin(request)  # before the upload is read
    async with request.form(max_files=1, max_fields=4) as form:
        upload = form.get("file")
        if not csrf_valid(request, settings, str(form.get(CSRF_FIELD) or "")):
            raise InvalidInput("the form expired; reload the page and try again")
        error = None
        report = None
        if not isinstance(upload, UploadFile) or not upload.filename:
            error = "Choose a CSV file to import."
        else:
            data = await upload.read(MAX_IMPORT_BYTES + 1)
            try:
                if len(data) > MAX_IMPORT_BYTES:
                    raise InvalidInput("the file is larger than 20 MB; split it")
                text = data.decode("utf-8-sig")
                report = await run_in_threadpool(_import, request, settings, text, upload.filename)
            except UnicodeDecodeError as exc:
                error = f"The file is not UTF-8 text ({exc.reason})."
            except SubscriberError as exc:
                error = f"Nothing was imported: {exc.message}."
    with session_scope(request.app.state.engine) as db:
        found = search.search(db, search.Query())
    return _page(
        request,
        "subscribers.html",
        {"found": found, "statuses": STATUSES, "report": report, "import_error": error},
        status_code=400 if error else 200,
    )


def _subscriber_page(
    request: Request,
    db: Session,
    subscriber_id: int,
    *,
    message: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    detail = details.subscriber_detail(db, subscriber_id)
    return _page(
        request,
        "subscriber.html",
        {"d": detail, "sub": detail.sub, "message": message, "error": error},
        status_code=status_code,
    )


@router.get("/subscribers/{subscriber_id}")
def subscriber(
    request: Request, subscriber_id: int, db: SessionDep, settings: AdminDep
) -> Response:
    return _subscriber_page(request, db, subscriber_id)


@router.post("/subscribers/{subscriber_id}/{action}")
def subscriber_action(
    request: Request,
    subscriber_id: int,
    action: str,
    db: SessionDep,
    settings: AdminDep,
    csrf: CsrfField = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    _check_csrf(request, settings, csrf)
    if action not in actions.ACTIONS:
        raise HTTPException(status_code=404)
    if action == "erase" and confirm != "yes":
        return _subscriber_page(
            request,
            db,
            subscriber_id,
            error="Tick the box to confirm the erasure.",
            status_code=400,
        )
    try:
        done = actions.apply(
            db, settings, action=action, subscriber_id=subscriber_id, ip=client_ip(request)
        )
    except InvalidInput as exc:
        db.rollback()
        return _subscriber_page(request, db, subscriber_id, error=exc.message, status_code=400)
    db.commit()
    if action == "resend-confirmation":
        actions.send_confirmation(settings, db, subscriber_id)
    if done.erased:
        return _page(request, "erased.html", {"message": done.message, "id": subscriber_id})
    return _subscriber_page(request, db, subscriber_id, message=done.message)


# -- issues --------------------------------------------------------------------------------


@router.get("/issues")
def issues(request: Request, db: SessionDep, settings: AdminDep) -> Response:
    return _page(request, "issues.html", {"issues": stats.recent_issues(db, limit=200)})


def _day(date: str) -> dt.date:
    try:
        return dt.date.fromisoformat(date)
    except ValueError:
        raise HTTPException(status_code=404) from None


@router.get("/issues/{date}")
def issue(
    request: Request, date: str, db: SessionDep, settings: AdminDep, page: str = "1"
) -> Response:
    day = _day(date)
    number = max(1, int(page)) if page.isdigit() and len(page) < 7 else 1
    detail = details.issue_detail(db, settings, day, page=number)
    if detail is None:
        raise HTTPException(status_code=404)
    senders = _senders(request, settings)
    in_thread = senders.running(day)
    return _page(
        request,
        "issue.html",
        {
            "d": detail,
            "issue": detail.issue,
            "figures": detail.figures,
            "in_thread": in_thread,
            "result": senders.result(day),
            "refresh": REFRESH_SECONDS if in_thread or detail.figures.count("sending") else None,
        },
    )


@router.post("/issues/{date}/send")
def send(
    request: Request, date: str, db: SessionDep, settings: AdminDep, csrf: CsrfField = ""
) -> Response:
    _check_csrf(request, settings, csrf)
    day = _day(date)
    if db.exec(select(IssueRow.id).where(IssueRow.date == day, daily_issue())).first() is None:
        raise HTTPException(status_code=404)
    started = _senders(request, settings).start(day)
    actions.audit(
        db,
        "send",
        target=day.isoformat(),
        detail="started" if started else "already running",
        ip=client_ip(request),
    )
    db.commit()
    return RedirectResponse(f"/admin/issues/{day.isoformat()}", status_code=303)


@router.get("/audit")
def audit_log(request: Request, db: SessionDep, settings: AdminDep) -> Response:
    return _page(request, "audit.html", {"entries": actions.recent(db, limit=500)})
