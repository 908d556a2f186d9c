"""A reader's profile in the database: interests, favourite authors, example papers.

Every change is validated in full before anything is written: unknown or malformed arXiv ids,
an over-long text or too many examples raise ``InvalidInput`` and the caller's transaction
stores nothing. Example papers not in the database are fetched through the arXiv client
(``fetch``, an ``id_list`` lookup with the client's rate limit) and saved as papers first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import delete
from sqlmodel import Session, col, select

from newsletter.arxiv.client import ArxivClient, ArxivError
from newsletter.config import Settings
from newsletter.domain import Paper
from newsletter.issue_store import save_papers
from newsletter.models import PaperRow, utcnow
from newsletter.relevance.models import SubscriberExample, SubscriberProfile
from newsletter.relevance.parsing import ParseError, parse_ids, split_items
from subscribers.errors import InvalidInput

Fetch = Callable[[Sequence[str]], Mapping[str, Paper]]
MAX_INTERESTS_CHARS = 2000
MAX_AUTHORS = 50
MAX_AUTHOR_CHARS = 200
GIVEN = ("profile", "upload")  # examples the reader listed (feedback ones are kept apart)


@dataclass(frozen=True, slots=True)
class Example:
    arxiv_id: str
    title: str
    sign: int
    source: str


@dataclass(frozen=True, slots=True)
class ProfileView:
    """What the preferences page, the CLI and the CSV export show of a profile."""

    interests: str
    authors: tuple[str, ...]
    examples: tuple[Example, ...]

    @property
    def papers(self) -> tuple[str, ...]:
        """The positive examples the reader gave (the ``papers`` column and field)."""
        return tuple(e.arxiv_id for e in self.examples if e.sign > 0 and e.source in GIVEN)

    @property
    def is_empty(self) -> bool:
        return not (self.interests or self.authors or self.examples)


def check_interests(text: str | None, *, explicit: bool = False) -> str:
    """Free text on one paragraph. ``explicit``: the reader passed it on purpose, so blank is
    a mistake (on the preferences page a blank field just means "no interests")."""
    value = " ".join((text or "").split())
    if explicit and not value:
        raise InvalidInput("interests are empty: write a sentence about what you read", "interests")
    if len(value) > MAX_INTERESTS_CHARS:
        raise InvalidInput(
            f"interests are {len(value)} characters; at most {MAX_INTERESTS_CHARS}", "interests"
        )
    if any(ord(ch) < 32 for ch in value):
        raise InvalidInput("interests must not contain control characters", "interests")
    return value


def check_authors(raw: str | Sequence[str] | None) -> list[str]:
    names = [" ".join(n.split()) for n in split_items(raw)]
    if len(names) > MAX_AUTHORS:
        raise InvalidInput(f"{len(names)} favourite authors; at most {MAX_AUTHORS}", "authors")
    for name in names:
        if len(name) > MAX_AUTHOR_CHARS or any(ord(ch) < 32 for ch in name):
            raise InvalidInput(f"author name {name[:40]!r}… is not a name", "authors")
    return list(dict.fromkeys(names))


def check_papers(raw: str | Sequence[str] | None, settings: Settings) -> list[str]:
    try:
        ids = parse_ids(raw)
    except ParseError as exc:
        raise InvalidInput(str(exc), "papers") from exc
    if len(ids) > settings.ranking.max_examples:
        raise InvalidInput(
            f"{len(ids)} example papers; at most {settings.ranking.max_examples}", "papers"
        )
    return ids


def resolve_papers(session: Session, ids: Sequence[str], fetch: Fetch | None) -> list[str]:
    """Save the papers of ``ids`` missing from the database (one arXiv lookup for them all);
    returns the ids arXiv does not know either."""
    if not ids:
        return []
    known = set(session.exec(select(PaperRow.arxiv_id).where(col(PaperRow.arxiv_id).in_(ids))))
    missing = [i for i in dict.fromkeys(ids) if i not in known]
    if not missing:
        return []
    try:
        found: Mapping[str, Paper] = fetch(missing) if fetch is not None else {}
    except ArxivError as exc:
        raise InvalidInput(
            f"could not look the papers up on arXiv ({exc}); try again later"
        ) from exc
    save_papers(session, [found[i] for i in missing if i in found])
    return [i for i in missing if i not in found]


def ensure_papers(session: Session, ids: Sequence[str], fetch: Fetch | None) -> None:
    """Every id is a paper row afterwards, or ``InvalidInput`` names the unknown ones (the
    caller's transaction is then rolled back, so nothing is stored)."""
    unknown = resolve_papers(session, ids, fetch)
    if unknown:
        raise InvalidInput(
            "unknown arXiv paper(s): " + ", ".join(unknown[:10]) + " (not found on arXiv)",
            "papers",
        )


def _profile_row(session: Session, subscriber_id: int) -> SubscriberProfile | None:
    return session.get(SubscriberProfile, subscriber_id)


def set_profile(
    session: Session,
    *,
    settings: Settings,
    subscriber_id: int,
    interests: str | None = None,
    papers: str | Sequence[str] | None = None,
    authors: str | Sequence[str] | None = None,
    fetch: Fetch | None = None,
    source: str = "profile",
    now: dt.datetime | None = None,
) -> ProfileView:
    """Replace the parts given (``None`` leaves a part as it is). The listed papers replace
    the reader's given examples; "more/fewer like this" feedback stays unless listed again."""
    now = now or utcnow()
    text = check_interests(interests) if interests is not None else None
    names = check_authors(authors) if authors is not None else None
    ids = check_papers(papers, settings) if papers is not None else None
    if ids:
        ensure_papers(session, ids, fetch)
    row = _profile_row(session, subscriber_id) or SubscriberProfile(subscriber_id=subscriber_id)
    if text is not None and text != row.interests:
        row.interests, row.vector, row.vector_model = text, None, None
    if names is not None:
        row.authors = names
    row.updated_at = now
    session.add(row)
    if ids is not None:
        session.execute(
            delete(SubscriberExample).where(
                col(SubscriberExample.subscriber_id) == subscriber_id,
                col(SubscriberExample.source).in_(GIVEN) | col(SubscriberExample.arxiv_id).in_(ids),
            )
        )
        for arxiv_id in ids:
            session.add(
                SubscriberExample(
                    subscriber_id=subscriber_id,
                    arxiv_id=arxiv_id,
                    sign=1,
                    source=source,
                    created_at=now,
                )
            )
    session.flush()
    return profile_of(session, subscriber_id)


def record_feedback(
    session: Session,
    *,
    subscriber_id: int,
    arxiv_id: str,
    sign: int,
    now: dt.datetime | None = None,
) -> None:
    """ "More like this" (+1) or "fewer like this" (-1): the paper joins those examples (a
    later click on the same paper replaces the earlier one)."""
    if sign not in (1, -1):
        raise InvalidInput("feedback is +1 or -1")
    if session.get(PaperRow, arxiv_id) is None:
        raise InvalidInput(f"unknown paper {arxiv_id}")
    row = session.exec(
        select(SubscriberExample).where(
            SubscriberExample.subscriber_id == subscriber_id,
            SubscriberExample.arxiv_id == arxiv_id,
        )
    ).first()
    if row is None:
        row = SubscriberExample(subscriber_id=subscriber_id, arxiv_id=arxiv_id)
    row.sign, row.source, row.created_at = sign, "feedback", now or utcnow()
    session.add(row)
    if session.get(SubscriberProfile, subscriber_id) is None:
        session.add(SubscriberProfile(subscriber_id=subscriber_id))
    session.flush()


def remove_example(session: Session, *, subscriber_id: int, arxiv_id: str) -> bool:
    result = session.execute(
        delete(SubscriberExample).where(
            col(SubscriberExample.subscriber_id) == subscriber_id,
            col(SubscriberExample.arxiv_id) == arxiv_id,
        )
    )
    session.flush()
    return bool(getattr(result, "rowcount", 0))


def profile_of(session: Session, subscriber_id: int) -> ProfileView:
    row = _profile_row(session, subscriber_id)
    examples = session.exec(
        select(SubscriberExample, PaperRow.title)
        .join(PaperRow, col(PaperRow.arxiv_id) == col(SubscriberExample.arxiv_id))
        .where(SubscriberExample.subscriber_id == subscriber_id)
        .order_by(col(SubscriberExample.id))
    ).all()
    return ProfileView(
        interests=row.interests if row else "",
        authors=tuple(row.authors) if row else (),
        examples=tuple(Example(e.arxiv_id, title, e.sign, e.source) for e, title in examples),
    )


def profiles_of(session: Session, ids: Sequence[int]) -> dict[int, ProfileView]:
    """Profiles of many readers (for the CSV export), two queries in all."""
    rows = {
        r.subscriber_id: r
        for r in session.exec(
            select(SubscriberProfile).where(col(SubscriberProfile.subscriber_id).in_(ids))
        )
    }
    examples: dict[int, list[Example]] = {}
    for e in session.exec(
        select(SubscriberExample)
        .where(col(SubscriberExample.subscriber_id).in_(ids))
        .order_by(col(SubscriberExample.id))
    ):
        examples.setdefault(e.subscriber_id, []).append(Example(e.arxiv_id, "", e.sign, e.source))
    out: dict[int, ProfileView] = {}
    for sid in set(rows) | set(examples):
        r = rows.get(sid)
        out[sid] = ProfileView(
            interests=r.interests if r else "",
            authors=tuple(r.authors) if r else (),
            examples=tuple(examples.get(sid, ())),
        )
    return out


def arxiv_fetch(settings: Settings) -> Fetch:
    """The real lookup: the arXiv client's ``fetch_metadata`` (id_list batches, rate limit)."""

    def fetch(ids: Sequence[str]) -> Mapping[str, Paper]:
        with ArxivClient(settings.arxiv) as client:
            return client.fetch_metadata(ids)

    return fetch
