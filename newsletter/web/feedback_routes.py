""" "More like this" / "Fewer like this": the links on every card of a reader's digest.

``/feedback/{token}/{arxiv_id}/more`` (or ``/fewer``): a GET, which is what a link scanner or
a mail client's preview fetches, only shows the paper and one button; the POST of that button
(with the CSRF field) records the paper as a positive or negative example. Without the last
part (the text e-mail's one link per card) the page offers both buttons.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlmodel import Session

from newsletter.config import Settings
from newsletter.models import PaperRow
from newsletter.relevance.parsing import ParseError
from newsletter.relevance.parsing import arxiv_id as parse_arxiv_id
from newsletter.relevance.profiles import record_feedback
from newsletter.web.deps import SessionDep, SettingsDep
from newsletter.web.pages import render
from newsletter.web.security import CSRF_FIELD, csrf_valid
from subscribers.access import subscriber_for_short
from subscribers.errors import CsrfFailed, InvalidInput, InvalidLink, NotFound
from subscribers.links import feedback_url, preferences_url
from subscribers.models import Subscriber

router = APIRouter()
SIGN: dict[str, int] = {"more": 1, "fewer": -1}
LABEL: dict[str, str] = {"more": "More like this", "fewer": "Fewer like this"}


def _reader(session: Session, settings: Settings, token: str) -> Subscriber:
    return subscriber_for_short(session, settings, "feedback", token)


def feedback_base(session: Session, settings: Settings, token: str) -> str | None:
    """``/feedback/{token}`` when the token names a reader, else None (for the web issue)."""
    try:
        _reader(session, settings, token)
    except InvalidLink:
        return None
    return f"/feedback/{quote(token, safe='').replace('-', '%2D')}"


def _target(session: Session, rest: str) -> tuple[PaperRow, str | None]:
    """The paper and the direction named by the rest of the path (old ids hold a slash)."""
    ident, _, last = rest.rpartition("/")
    direction: str | None = last if last in SIGN else None
    if direction is None:
        ident = rest
    try:
        paper = session.get(PaperRow, parse_arxiv_id(ident))
    except ParseError:
        paper = None
    if paper is None:
        raise NotFound("there is no such paper")
    return paper, direction


def _page(
    request: Request,
    settings: Settings,
    sub: Subscriber,
    paper: PaperRow,
    direction: str | None,
    *,
    done: bool = False,
) -> Response:
    sid = sub.id or 0
    choices = [direction] if direction else list(SIGN)
    return render(
        request,
        "web/feedback.html",
        {
            "paper": paper,
            "authors": ", ".join(paper.authors[:4]) + (" et al." if len(paper.authors) > 4 else ""),
            "done": done,
            "direction": direction,
            "label": LABEL,
            "forms": [
                (
                    feedback_url(settings, sid, sub.link_key, paper.arxiv_id, d).removeprefix(
                        settings.base_url
                    ),
                    d,
                )
                for d in choices
            ],
            "preferences_url": preferences_url(settings, sid, sub.link_key),
        },
        with_csrf=not done,
    )


@router.get("/feedback/{token}/{rest:path}")
def feedback_page(
    request: Request, token: str, rest: str, session: SessionDep, settings: SettingsDep
) -> Response:
    sub = _reader(session, settings, token)
    paper, direction = _target(session, rest)
    return _page(request, settings, sub, paper, direction)


@router.post("/feedback/{token}/{rest:path}")
def feedback(
    request: Request,
    token: str,
    rest: str,
    session: SessionDep,
    settings: SettingsDep,
    csrf: Annotated[str, Form(alias=CSRF_FIELD)] = "",
) -> Response:
    if not csrf_valid(request, settings, csrf):
        raise CsrfFailed("This form has expired; please open the link from your e-mail again.")
    sub = _reader(session, settings, token)
    paper, direction = _target(session, rest)
    if direction is None:
        raise InvalidInput("say whether you want more or fewer papers like this one")
    record_feedback(
        session, subscriber_id=sub.id or 0, arxiv_id=paper.arxiv_id, sign=SIGN[direction]
    )
    session.commit()
    return _page(request, settings, sub, paper, direction, done=True)
