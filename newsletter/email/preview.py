"""One subscriber's digest as they would receive it, from the database (``newsletter preview``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session

from newsletter.config import Settings
from newsletter.domain import IssueView
from newsletter.email.loading import find_subscriber, issue_summaries, prefs_of, selections_in
from newsletter.email.render import (
    DigestRenderer,
    RenderedEmail,
    link_substitutions,
    personalise,
)
from newsletter.email.selection import Selection
from newsletter.email.shared import with_feedback
from newsletter.issue_store import latest_issue, load_issue
from subscribers import links
from subscribers.rhythm import effective_language


class PreviewError(Exception):
    """Nothing to preview: unknown address, no issue, or no secret key for the links."""


@dataclass(frozen=True, slots=True)
class Preview:
    rendered: RenderedEmail
    issue_date: dt.date
    status: str  # the subscriber's status: only "active" ones are mailed
    matched: bool  # False: nothing matched; they get no e-mail unless send_empty_note


def load_view(session: Session, date: dt.date | None) -> IssueView:
    view = latest_issue(session) if date is None else load_issue(session, date)
    if view is None:
        where = "in the database" if date is None else f"for {date.isoformat()}"
        raise PreviewError(f"no issue {where}; build one first with `newsletter run`")
    return view


def preview_email(
    session: Session, settings: Settings, address: str, date: dt.date | None = None
) -> Preview:
    """Render ``address``'s digest of ``date`` (default: the latest issue), links personalised."""
    row = find_subscriber(session, address)
    if row is None:
        raise PreviewError(f"no subscriber with the address {address.strip()!r}")
    prefs = prefs_of(row)
    try:
        personal = link_substitutions(
            {
                "unsubscribe_url": links.unsubscribe_url(settings, prefs.id, row.link_key),
                "preferences_url": links.preferences_url(settings, prefs.id, row.link_key),
            }
        )
    except ValueError as exc:
        raise PreviewError(
            f"{exc}: the e-mail's unsubscribe and preferences links are signed with it"
        ) from exc
    view = load_view(session, date)
    # Always show something: the empty note is what they would get with send_empty_note.
    empty_ok = settings.model_copy(
        update={"delivery": settings.delivery.model_copy(update={"send_empty_note": True})}
    )
    chosen = selections_in(session, view, [prefs], empty_ok)
    selection = chosen.get(prefs.id) or Selection(entries=())
    ids = [e.paper.arxiv_id for e in selection.entries]
    language = effective_language(prefs.language, settings)
    summaries = (
        issue_summaries(session, view, settings, ids, language) if prefs.include_summaries else {}
    )
    # The shared body plus this subscriber's substitutions, exactly as the backends build it.
    rendered = DigestRenderer(settings).render(view, selection, summaries, language)
    return Preview(
        rendered=personalise(
            rendered,
            with_feedback(personal, links.feedback_token(settings, prefs.id, row.link_key)),
        ),
        issue_date=view.date,
        status=row.status,
        matched=not selection.is_empty,
    )
