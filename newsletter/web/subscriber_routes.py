"""Signup, confirmation, preferences, unsubscribe (incl. RFC 8058 one-click), export, erase.

Routes are thin: read the form, check CSRF, call ``subscribers.service``, render a page.
Errors from the service are turned into pages by ``newsletter.web.errors``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine

from newsletter.config import Settings, weekday_name
from newsletter.db import session_scope
from newsletter.delivery.transactional import send_message
from newsletter.web.deps import EngineDep, SessionDep, SettingsDep, client_ip
from newsletter.web.home import latest_headline
from newsletter.web.pages import render
from newsletter.web.profile_routes import profile_context
from newsletter.web.security import CSRF_FIELD, csrf_valid
from subscribers import access, ratelimit, service
from subscribers.emails import already_subscribed_message, confirmation_message
from subscribers.errors import CsrfFailed, InvalidInput, InvalidLink, RateLimited
from subscribers.links import link, preferences_url, unsubscribe_url
from subscribers.models import Subscriber
from subscribers.validation import MAX_PAPERS_LIMIT, email_hash, make_preferences, normalise_email

log = logging.getLogger(__name__)
router = APIRouter()

CsrfField = Annotated[str, Form(alias=CSRF_FIELD)]
TextField = Annotated[str, Form()]
ListField = Annotated[list[str], Form()]


def _origin(request: Request, form: str) -> service.Origin:
    return service.Origin(
        ip=client_ip(request), user_agent=request.headers.get("user-agent"), form=form
    )


def _check_csrf(request: Request, settings: Settings, token: str) -> None:
    if not csrf_valid(request, settings, token):
        raise CsrfFailed(
            "For your safety this form could not be accepted (it may have expired, or cookies "
            "are blocked). Please reload the page and try again."
        )


@router.get("/")
def home(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    return _home(request, session, settings)


def _home(
    request: Request,
    session: Any,
    settings: Settings,
    *,
    error: str | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "web/index.html",
        {
            "categories": settings.categories,
            "latest": latest_headline(session),
            "error": error,
            "form": form or {},
        },
        status_code=status_code,
    )


def process_signup(
    engine: Engine,
    settings: Settings,
    *,
    email: str,
    keywords: str,
    categories: list[str],
    origin: service.Origin,
) -> None:
    """The part of a signup whose work depends on whether the address is known. It runs in
    the app's ``after_response`` worker, beside the server, so neither the answer nor the next
    request on the same connection can tell from content or timing."""
    try:
        with session_scope(engine) as session:
            outcome = service.subscribe(
                session,
                settings=settings,
                email=email,
                keywords=keywords,
                categories=categories,
                origin=origin,
            )
        if outcome.action == "confirm" and outcome.subscriber_id is not None:
            url = link(settings, "confirm", outcome.subscriber_id, outcome.link_key, outcome.nonce)
            send_message(
                settings, confirmation_message(settings, to=outcome.email, confirm_url=url)
            )
        elif outcome.action == "already-active" and outcome.subscriber_id is not None:
            url = preferences_url(settings, outcome.subscriber_id, outcome.link_key)
            send_message(
                settings,
                already_subscribed_message(settings, to=outcome.email, preferences_url=url),
            )
        log.info("signup processed: %s (subscriber %s)", outcome.action, outcome.subscriber_id)
    except Exception:
        log.exception("signup could not be processed")


@router.post("/subscribe")
def subscribe(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    engine: EngineDep,
    csrf: CsrfField = "",
    email: TextField = "",
    keywords: TextField = "",
    categories: ListField = [],  # noqa: B006 - FastAPI copies defaults
    website: TextField = "",
) -> Response:
    _check_csrf(request, settings, csrf)
    form = {"email": email[:254], "keywords": keywords[:4000], "categories": categories}
    try:
        address = normalise_email(email)
        make_preferences(
            keywords=keywords, categories=categories, allowed_categories=settings.categories
        )
    except InvalidInput as exc:
        return _home(request, session, settings, error=exc.message, form=form, status_code=400)
    now = dt.datetime.now(dt.UTC)
    # Both keys are counted whatever happens, so the work done does not depend on which is
    # spent. The per-IP limit refuses (429); the per-address quota only stops the e-mails: a
    # stranger who spends it cannot make the owner's own signups fail, nor flood their inbox.
    ip_ok = ratelimit.hit(
        session,
        key=f"signup-ip:{ratelimit.ip_bucket(client_ip(request))}",
        limit=settings.web.signup_limit_per_ip_per_hour,
        window=dt.timedelta(hours=1),
        now=now,
    )
    address_ok = ratelimit.hit(
        session,
        key=f"signup-addr:{email_hash(address)[:32]}",
        limit=settings.web.signup_limit_per_address_per_day,
        window=dt.timedelta(days=1),
        now=now,
    )
    session.commit()
    if not ip_ok:
        raise RateLimited(
            "You have tried to sign up too many times. Please wait a while and try again."
        )
    if not website and address_ok:  # a filled honeypot gets the same answer and nothing else
        request.app.state.after_response.submit(
            process_signup,
            engine,
            settings,
            email=address,
            keywords=keywords,
            categories=categories,
            origin=_origin(request, "signup"),
        )
    return render(
        request,
        "web/message.html",
        {
            "heading": "Check your inbox",
            "lines": [
                "If this address can receive our newsletter, a message with a confirmation link "
                "is on its way. Open it and press the button to start receiving the digest.",
                "Nothing will arrive until you confirm. The link is valid for "
                f"{settings.web.confirm_token_days} days.",
            ],
        },
        with_csrf=False,
    )


@router.get("/confirm/{token}")
def confirm_page(
    request: Request, token: str, session: SessionDep, settings: SettingsDep
) -> Response:
    sub, data = access.subscriber_for(session, settings, "confirm", token)
    state = service.confirmation_state(session, sub, data.nonce)
    if state == "already":
        return _confirmed(request, settings, sub, already=True)
    if state == "used":
        raise InvalidLink("this confirmation link has already been used")
    return render(
        request,
        "web/message.html",
        {
            "heading": "Confirm your subscription",
            "lines": [f"Press the button to start receiving {settings.site_name} at {sub.email}."],
            "action_url": f"/confirm/{token}",
            "button": "Yes, subscribe me",
        },
    )


def _confirmed(request: Request, settings: Settings, sub: Subscriber, *, already: bool) -> Response:
    """After a confirmation. A used confirmation link gives no links: it is not a credential,
    the links in every digest (and the preferences e-mail of a new signup) are."""
    if already:
        return render(
            request,
            "web/message.html",
            {
                "heading": "You are already subscribed",
                "lines": [
                    "This confirmation link has been used already: your subscription is active.",
                    "To change what you receive or to unsubscribe, use the links at the bottom "
                    "of your latest digest.",
                ],
            },
            with_csrf=False,
        )
    sub_id, key = sub.id or 0, sub.link_key
    return render(
        request,
        "web/message.html",
        {
            "heading": "You are subscribed",
            "lines": [
                "Your first digest arrives with the next arXiv announcement.",
                "You can choose keywords, categories and how many papers you get at any time.",
            ],
            "links": [
                ("Choose your preferences", preferences_url(settings, sub_id, key)),
                ("Unsubscribe", unsubscribe_url(settings, sub_id, key)),
            ],
        },
        with_csrf=False,
    )


@router.post("/confirm/{token}")
def confirm(
    request: Request,
    token: str,
    session: SessionDep,
    settings: SettingsDep,
    csrf: CsrfField = "",
) -> Response:
    _check_csrf(request, settings, csrf)
    sub, data = access.subscriber_for(session, settings, "confirm", token)
    already = sub.status == "active"
    sub = service.confirm(
        session, subscriber_id=sub.id or 0, nonce=data.nonce, origin=_origin(request, "confirm")
    )
    session.commit()
    return _confirmed(request, settings, sub, already=already)


def _preferences_page(
    request: Request,
    settings: Settings,
    token: str,
    sub: Any,
    *,
    saved: bool = False,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    sub_id, key = sub.id or 0, sub.link_key
    return render(
        request,
        "web/preferences.html",
        {
            "email": sub.email,
            "status": sub.status,
            "keywords": ", ".join(sub.keywords),
            "categories": sub.categories,
            "all_categories": settings.categories,
            "max_papers": sub.max_papers,
            "papers_limit": min(settings.max_papers, MAX_PAPERS_LIMIT),
            "default_papers": settings.max_papers,
            "include_summaries": sub.include_summaries,
            "cadence": sub.cadence,
            "language": sub.language or settings.ai_summary.language,
            "languages": settings.ai_summary.offered_languages,
            "weekly_weekday": weekday_name(settings.delivery.weekly_weekday),
            "saved": saved,
            "error": error,
            "action_url": f"/preferences/{token}",
            "unsubscribe_url": unsubscribe_url(settings, sub_id, key),
            "export_url": link(settings, "export", sub_id, key),
            "erase_url": link(settings, "erase", sub_id, key),
            "profile": profile_context(sub, token),
        },
        status_code=status_code,
    )


def preferences_page_with_error(
    request: Request, settings: Settings, token: str, sub: Any, error: str
) -> Response:
    """The preferences page again, with the message of a form of it that was refused."""
    return _preferences_page(request, settings, token, sub, error=error, status_code=400)


@router.get("/preferences/{token}")
def preferences_page(
    request: Request, token: str, session: SessionDep, settings: SettingsDep
) -> Response:
    sub, _ = access.subscriber_for(session, settings, "preferences", token)
    return _preferences_page(
        request, settings, token, sub, saved=request.query_params.get("saved") == "1"
    )


@router.post("/preferences/{token}")
def save_preferences(
    request: Request,
    token: str,
    session: SessionDep,
    settings: SettingsDep,
    csrf: CsrfField = "",
    keywords: TextField = "",
    categories: ListField = [],  # noqa: B006
    max_papers: TextField = "",
    include_summaries: TextField = "",
    cadence: TextField = "daily",
    language: TextField = "",
) -> Response:
    _check_csrf(request, settings, csrf)
    sub, _ = access.subscriber_for(session, settings, "preferences", token)
    try:
        service.update_preferences(
            session,
            settings=settings,
            subscriber_id=sub.id or 0,
            keywords=keywords,
            categories=categories,
            max_papers=max_papers,
            include_summaries=bool(include_summaries),
            cadence=cadence,
            language=language,
            origin=_origin(request, "preferences"),
        )
    except InvalidInput as exc:
        session.rollback()
        return _preferences_page(request, settings, token, sub, error=exc.message, status_code=400)
    session.commit()
    return RedirectResponse(f"/preferences/{token}?saved=1", status_code=303)


def _unsubscribed_page(
    request: Request, settings: Settings, token: str, *, can_resubscribe: bool = True
) -> Response:
    if not can_resubscribe:
        return render(
            request,
            "web/message.html",
            {"heading": "You are unsubscribed", "lines": ["You will not receive more digests."]},
            with_csrf=False,
        )
    return render(
        request,
        "web/message.html",
        {
            "heading": "You are unsubscribed",
            "lines": [
                "You will not receive any more digests. Changed your mind? You can come back "
                "with one click."
            ],
            "action_url": f"/unsubscribe/{token}",
            "action_name": "resubscribe",
            "button": "Re-subscribe",
            "button_class": "secondary",
        },
    )


@router.get("/unsubscribe/{token}")
def unsubscribe_page(
    request: Request, token: str, session: SessionDep, settings: SettingsDep
) -> Response:
    sub, data = access.subscriber_for(session, settings, "unsubscribe", token)
    legacy = not data.key  # a link from before link keys: it can unsubscribe, nothing more
    if sub.status != "active" and sub.status != "pending":
        return _unsubscribed_page(request, settings, token, can_resubscribe=not legacy)
    links = (
        []
        if legacy
        else [
            (
                "Change what you receive instead",
                preferences_url(settings, sub.id or 0, sub.link_key),
            )
        ]
    )
    return render(
        request,
        "web/message.html",
        {
            "heading": "Unsubscribe",
            "lines": [f"Stop sending {settings.site_name} to {sub.email}?"],
            "action_url": f"/unsubscribe/{token}",
            "button": "Unsubscribe",
            "links": links,
        },
    )


@router.post("/unsubscribe/{token}")
def unsubscribe(
    request: Request,
    token: str,
    session: SessionDep,
    settings: SettingsDep,
    csrf: CsrfField = "",
    action: TextField = "",
    one_click: Annotated[str, Form(alias="List-Unsubscribe")] = "",
) -> Response:
    sub, data = access.subscriber_for(session, settings, "unsubscribe", token)
    legacy = not data.key
    if one_click == "One-Click":  # RFC 8058: no cookie, no CSRF token, 200 without redirect
        service.unsubscribe(
            session, subscriber_id=sub.id or 0, origin=_origin(request, "one-click")
        )
        session.commit()
        return _unsubscribed_page(request, settings, token, can_resubscribe=False)
    _check_csrf(request, settings, csrf)
    if action == "resubscribe":
        if legacy:
            raise InvalidLink("this older link can only unsubscribe")
        sub = service.resubscribe(
            session, subscriber_id=sub.id or 0, origin=_origin(request, "resubscribe")
        )
        session.commit()
        return _confirmed(request, settings, sub, already=False)
    service.unsubscribe(session, subscriber_id=sub.id or 0, origin=_origin(request, "unsubscribe"))
    session.commit()
    return _unsubscribed_page(request, settings, token, can_resubscribe=not legacy)


@router.get("/export/{token}")
def export(token: str, session: SessionDep, settings: SettingsDep) -> Response:
    sub, _ = access.subscriber_for(session, settings, "export", token)
    data = service.export(session, subscriber_id=sub.id or 0)
    return JSONResponse(
        data, headers={"Content-Disposition": 'attachment; filename="my-subscription.json"'}
    )


@router.get("/erase/{token}")
def erase_page(
    request: Request, token: str, session: SessionDep, settings: SettingsDep
) -> Response:
    sub, _ = access.subscriber_for(session, settings, "erase", token)
    return render(
        request,
        "web/message.html",
        {
            "heading": "Erase your data",
            "lines": [
                f"This deletes everything we store about {sub.email}: your preferences and the "
                "record of your consent. We keep only a one-way hash of the address so that we "
                "never e-mail it again by mistake. This cannot be undone."
            ],
            "action_url": f"/erase/{token}",
            "button": "Erase my data",
            "button_class": "danger",
        },
    )


@router.post("/erase/{token}")
def erase(
    request: Request, token: str, session: SessionDep, settings: SettingsDep, csrf: CsrfField = ""
) -> Response:
    _check_csrf(request, settings, csrf)
    sub, _ = access.subscriber_for(session, settings, "erase", token)
    service.erase(session, subscriber_id=sub.id or 0)
    session.commit()
    return render(
        request,
        "web/message.html",
        {
            "heading": "Your data is erased",
            "lines": ["We deleted your subscription. You will not hear from us again."],
        },
        with_csrf=False,
    )
