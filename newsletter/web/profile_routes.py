"""The profile part of the preferences page: interests, example papers (typed, or taken from
an uploaded BibTeX or Zotero CSV export), favourite authors, and removing an example.

The preferences page itself is ``subscriber_routes``; it shows ``profile_context``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from newsletter.config import Settings
from newsletter.relevance.parsing import ids_in_export, split_items
from newsletter.relevance.profiles import arxiv_fetch, profile_of, remove_example, set_profile
from newsletter.web.deps import SessionDep, SettingsDep
from newsletter.web.security import CSRF_FIELD, csrf_valid
from subscribers import access
from subscribers.errors import CsrfFailed, InvalidInput
from subscribers.models import Subscriber

router = APIRouter()
CsrfField = Annotated[str, Form(alias=CSRF_FIELD)]
TextField = Annotated[str, Form()]


def profile_context(sub: Subscriber, token: str) -> dict[str, Any]:
    """What the preferences page shows of the reader's profile."""
    session = Session.object_session(sub)
    profile = profile_of(session, sub.id or 0) if isinstance(session, Session) else None
    return {
        "interests": profile.interests if profile else "",
        "papers": "\n".join(profile.papers) if profile else "",
        "authors": "\n".join(profile.authors) if profile else "",
        "examples": profile.examples if profile else (),
        "profile_url": f"/preferences/{token}/profile",
        "remove_url": f"/preferences/{token}/examples/remove",
    }


def _check(request: Request, settings: Settings, csrf: str) -> None:
    if not csrf_valid(request, settings, csrf):
        raise CsrfFailed("This form has expired; please reload the page and try again.")


async def _uploaded_ids(upload: UploadFile | None, settings: Settings) -> list[str]:
    """arXiv ids in an uploaded BibTeX or Zotero CSV file (none when no file was chosen)."""
    if upload is None or not upload.filename:
        return []
    limit = settings.ranking.max_upload_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise InvalidInput(
            f"the file {upload.filename!r} is larger than {limit // 1000} kB; export only the "
            "papers you want as examples",
            "upload",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the file {upload.filename!r} is not UTF-8 text", "upload") from exc
    ids = ids_in_export(text)
    if not ids:
        raise InvalidInput(
            f"no arXiv identifiers found in {upload.filename!r} (BibTeX eprint fields, "
            "arxiv.org URLs or 'arXiv:' ids are recognised)",
            "upload",
        )
    return ids


@router.post("/preferences/{token}/profile")
async def save_profile(
    request: Request,
    token: str,
    session: SessionDep,
    settings: SettingsDep,
    csrf: CsrfField = "",
    interests: TextField = "",
    papers: TextField = "",
    authors: TextField = "",
    upload: UploadFile | None = None,
) -> Response:
    from newsletter.web.subscriber_routes import preferences_page_with_error

    _check(request, settings, csrf)
    sub, _ = access.subscriber_for(session, settings, "preferences", token)
    try:
        extra = await _uploaded_ids(upload, settings)
        set_profile(
            session,
            settings=settings,
            subscriber_id=sub.id or 0,
            interests=interests,
            papers=[*split_items(papers), *extra],
            authors=authors,
            fetch=arxiv_fetch(settings),
        )
    except InvalidInput as exc:
        session.rollback()
        return preferences_page_with_error(request, settings, token, sub, exc.message)
    session.commit()
    return RedirectResponse(f"/preferences/{token}?saved=1#profile", status_code=303)


@router.post("/preferences/{token}/examples/remove")
def remove(
    request: Request,
    token: str,
    session: SessionDep,
    settings: SettingsDep,
    csrf: CsrfField = "",
    arxiv_id: TextField = "",
) -> Response:
    _check(request, settings, csrf)
    sub, _ = access.subscriber_for(session, settings, "preferences", token)
    remove_example(session, subscriber_id=sub.id or 0, arxiv_id=arxiv_id.strip())
    session.commit()
    return RedirectResponse(f"/preferences/{token}?saved=1#profile", status_code=303)
