"""Each profiled reader's papers of the day: profiles and vectors read (and cached) from the
database, then scored in bulk by ``score.rank_readers``. Readers without a profile are not
here at all: the keyword selection serves them exactly as before. numpy, scipy and the text
models are imported only when someone has a profile, so a list without any pays nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from newsletter.config import Settings
from newsletter.domain import IssueView
from newsletter.email.selection import (
    TEXT_POINTS,
    TITLE_POINTS,
    SubscriberPrefs,
    compute_hits,
    select_all,
)
from newsletter.models import PaperRow
from newsletter.relevance.models import SubscriberExample, SubscriberProfile
from newsletter.relevance.parsing import author_keys, authors_match

if TYPE_CHECKING:
    from newsletter.relevance.embed import Matrix
    from newsletter.relevance.score import Pick

CHUNK = 900  # ids per IN (...) query


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]


def _load(
    session: Session, ids: Sequence[int]
) -> tuple[dict[int, SubscriberProfile], dict[int, list[tuple[str, int]]]]:
    profiles: dict[int, SubscriberProfile] = {}
    examples: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for chunk in _chunks(ids):
        for row in session.exec(
            select(SubscriberProfile).where(col(SubscriberProfile.subscriber_id).in_(chunk))
        ):
            profiles[row.subscriber_id] = row
        for sid, arxiv_id, sign in session.exec(
            select(
                SubscriberExample.subscriber_id, SubscriberExample.arxiv_id, SubscriberExample.sign
            )
            .where(col(SubscriberExample.subscriber_id).in_(chunk))
            .order_by(col(SubscriberExample.id))
        ):
            examples[sid].append((arxiv_id, sign))
    return profiles, examples


def _matrices(
    session: Session,
    settings: Settings,
    view: IssueView,
    example_rows: Sequence[PaperRow],
    interest_profiles: Sequence[SubscriberProfile],
) -> tuple[Matrix, Matrix, Matrix]:
    """(papers, examples, interests) in the configured text model."""
    from newsletter.relevance.embed import TfidfSpace, blend, paper_text
    from newsletter.relevance.vectors import interest_vectors, paper_vectors

    model = settings.ranking.model
    pool = [e.paper for e in view.pool]
    dense: tuple[Matrix, Matrix, Matrix] | None = None
    if model in ("wordllama", "blend"):
        dense = (
            paper_vectors(session, [(p.arxiv_id, p.version, p.title, p.abstract) for p in pool]),
            paper_vectors(
                session, [(r.arxiv_id, r.version, r.title, r.abstract) for r in example_rows]
            ),
            interest_vectors(session, interest_profiles),
        )
        if model == "wordllama":
            return dense
    paper_texts = [paper_text(p.title, p.abstract) for p in pool]
    example_texts = [paper_text(r.title, r.abstract) for r in example_rows]
    interest_texts = [p.interests for p in interest_profiles]
    space = TfidfSpace([*paper_texts, *example_texts])
    tfidf = (space.embed(paper_texts), space.embed(example_texts), space.embed(interest_texts))
    if dense is None:
        return tfidf
    return (
        blend(dense[0], tfidf[0]),
        blend(dense[1], tfidf[1]),
        blend(dense[2], tfidf[2]),
    )


def _author_index(view: IssueView) -> dict[str, list[tuple[int, str]]]:
    """Pool positions by authors' last names (the key every spelling of a name shares)."""
    index: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for pos, entry in enumerate(view.pool):
        for author in entry.paper.authors:
            for key in author_keys(author):
                index[key.last].append((pos, author))
    return index


def _pinned(
    favourites: Sequence[str], index: dict[str, list[tuple[int, str]]]
) -> tuple[tuple[int, str], ...]:
    found: dict[int, str] = {}
    for fav in favourites:
        for key in author_keys(fav):
            for pos, author in index.get(key.last, ()):
                if pos not in found and authors_match(fav, author):
                    found[pos] = fav
    return tuple(sorted(found.items()))


def personal_picks(
    session: Session, view: IssueView, prefs: Sequence[SubscriberPrefs], settings: Settings
) -> dict[int, list[Pick]]:
    """Picks (pool position, why) of every reader in ``prefs`` who has a profile."""
    if settings.ranking.mode == "keywords" or not view.pool or not prefs:
        return {}
    profiles, examples = _load(session, [p.id for p in prefs])
    profiled = [
        p
        for p in prefs
        if examples.get(p.id)
        or (p.id in profiles and (profiles[p.id].interests or profiles[p.id].authors))
    ]
    if not profiled:
        return {}
    import numpy as np

    from newsletter.relevance.score import Day, Reader, rank_readers

    example_ids = sorted({a for p in profiled for a, _ in examples.get(p.id, ())})
    rows_by_id = {
        r.arxiv_id: r
        for chunk in [example_ids[i : i + CHUNK] for i in range(0, len(example_ids), CHUNK)]
        for r in session.exec(select(PaperRow).where(col(PaperRow.arxiv_id).in_(chunk)))
    }
    example_rows = [rows_by_id[a] for a in example_ids if a in rows_by_id]
    example_row = {r.arxiv_id: i for i, r in enumerate(example_rows)}
    with_interests = [
        profiles[p.id] for p in profiled if p.id in profiles and profiles[p.id].interests
    ]
    interest_row = {prof.subscriber_id: i for i, prof in enumerate(with_interests)}
    papers, example_matrix, interests = _matrices(
        session, settings, view, example_rows, with_interests
    )
    day = Day(
        papers=papers,
        interests=interests,
        examples=example_matrix,
        example_titles=[r.title for r in example_rows],
    )
    hybrid = settings.ranking.mode == "hybrid"
    hits = compute_hits(
        view.pool,
        (kw for p in profiled for kw in p.keywords) if hybrid else (),
        settings.keyword_match,
    )
    authors = _author_index(view)
    category_masks: dict[frozenset[str], np.ndarray] = {}
    semantic_free: list[SubscriberPrefs] = []
    readers: list[Reader] = []
    for p in profiled:
        prof = profiles.get(p.id)
        mine = examples.get(p.id, [])
        positives = tuple(example_row[a] for a, s in mine if s > 0 and a in example_row)
        negatives = tuple(example_row[a] for a, s in mine if s < 0 and a in example_row)
        cats = frozenset(p.categories)
        allowed = None
        if cats:
            if cats not in category_masks:
                category_masks[cats] = np.asarray(
                    [
                        e.paper.primary_category in cats or not cats.isdisjoint(e.paper.categories)
                        for e in view.pool
                    ],
                    dtype=bool,
                )
            allowed = category_masks[cats]
        points: dict[int, float] = {}
        why: dict[int, list[str]] = {}
        for kw in dict.fromkeys(k.strip() for k in p.keywords if k.strip()) if hybrid else ():
            for pos in hits.text.get(kw.lower(), ()):
                points[pos] = points.get(pos, 0.0) + TEXT_POINTS
                why.setdefault(pos, []).append(kw)
            for pos in hits.title.get(kw.lower(), ()):
                points[pos] = points.get(pos, 0.0) + TITLE_POINTS
        limit = p.max_papers if p.max_papers and p.max_papers > 0 else settings.max_papers
        reader = Reader(
            id=p.id,
            limit=limit,
            interest=interest_row.get(p.id, -1),
            positives=positives,
            negatives=negatives,
            pinned=_pinned(prof.authors if prof else (), authors),
            keyword_points=points,
            keyword_why={pos: tuple(kws) for pos, kws in why.items()},
            allowed=allowed,
        )
        if reader.interest < 0 and not positives:
            semantic_free.append(p)
        readers.append(reader)
    if semantic_free:
        # Favourite authors only: today's selection, with their authors pinned on top.
        position = {e.paper.arxiv_id: i for i, e in enumerate(view.pool)}
        base = select_all(view, semantic_free, settings)
        fallback = {
            sid: tuple(
                (position[e.paper.arxiv_id], sel.matched.get(e.paper.arxiv_id, ()))
                for e in sel.entries
                if e.paper.arxiv_id in position
            )
            for sid, sel in base.items()
        }
        readers = [replace(r, fallback=fallback.get(r.id, ())) for r in readers]
    return rank_readers(day, readers, settings.ranking)
