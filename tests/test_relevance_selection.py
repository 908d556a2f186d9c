"""Personal ranking through the database on recorded arXiv papers: a reader who gives five
papers and no keywords gets their field; favourite authors are pinned and marked; keyword-only
readers get exactly what they got before; vectors are computed once and cached."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from benchmarks.bench_relevance import corpus
from newsletter.config import Settings, settings_for_tests
from newsletter.db import session_scope
from newsletter.domain import IssueView, Paper
from newsletter.email.loading import active_prefs, selections_for
from newsletter.email.selection import select_all
from newsletter.issue_store import save_papers
from newsletter.relevance.models import PaperVector, SubscriberProfile
from newsletter.relevance.profiles import set_profile
from subscribers import service
from tests.fixtures_email import make_view

RAG = "retrieval-augmented generation"


@pytest.fixture
def settings() -> Settings:
    return settings_for_tests(categories=["cs.LG", "cs.CL", "cs.SE"], max_papers=10)


@pytest.fixture
def day(engine: Engine) -> Iterator[tuple[IssueView, list[Paper], list[str]]]:
    papers, topics = corpus()
    with session_scope(engine) as s:
        save_papers(s, papers)
    rag = [p for p, t in zip(papers, topics, strict=True) if t == RAG]
    examples = random.Random(13).sample(rag, 5)
    chosen = {p.arxiv_id for p in examples}
    pool = [p for p in papers if p.arxiv_id not in chosen]
    topic_of = {p.arxiv_id: t for p, t in zip(papers, topics, strict=True)}
    yield make_view(pool), examples, [topic_of[p.arxiv_id] for p in pool]


def reader(engine: Engine, settings: Settings, email: str, **profile: object) -> int:
    keywords = profile.pop("keywords", None)
    with session_scope(engine) as s:
        sub = service.add(
            s,
            settings=settings,
            email=email,
            keywords=keywords,
            active=True,  # type: ignore[arg-type]
        ).subscriber
        assert sub.id is not None
        if profile:
            set_profile(s, settings=settings, subscriber_id=sub.id, **profile)  # type: ignore[arg-type]
        return sub.id


def test_five_papers_and_no_keywords_give_a_digest_of_the_field(
    engine: Engine, settings: Settings, day: tuple[IssueView, list[Paper], list[str]]
) -> None:
    view, examples, topics = day
    sid = reader(engine, settings, "rag@example.org", papers=[p.arxiv_id for p in examples])
    chosen = selections_for(engine, view, active_prefs(engine), settings)[sid]
    topic = {e.paper.arxiv_id: t for e, t in zip(view.pool, topics, strict=True)}
    got = [topic[e.paper.arxiv_id] for e in chosen.entries]
    assert 1 <= len(got) <= 10 and got.count(RAG) >= 0.8 * len(got)
    titles = {p.title for p in examples}
    for e in chosen.entries:
        (why,) = chosen.matched[e.paper.arxiv_id]
        assert why.startswith("close to: ") and any(
            t.startswith(why.removeprefix("close to: ").rstrip("…")) for t in titles
        )
    # Vectors: one per pool paper and example, computed once; the second run adds none.
    with session_scope(engine) as s:
        stored = s.exec(select(func.count()).select_from(PaperVector)).one()
    assert stored == len(view.pool) + len(examples)
    again = selections_for(engine, view, active_prefs(engine), settings)[sid]
    assert again.key == chosen.key
    with session_scope(engine) as s:
        assert s.exec(select(func.count()).select_from(PaperVector)).one() == stored


def test_interests_alone_and_favourite_authors_pinned(
    engine: Engine, settings: Settings, day: tuple[IssueView, list[Paper], list[str]]
) -> None:
    view, _, topics = day
    far = next(e.paper for e, t in zip(view.pool, topics, strict=True) if t == "machine learning")
    first, *_, last = far.authors[0].split()
    sid = reader(
        engine,
        settings,
        "tests@example.org",
        interests="unit test generation, fuzzing and finding bugs in software",
        authors=[f"{last}, {first[0]}."],
    )
    chosen = selections_for(engine, view, active_prefs(engine), settings)[sid]
    assert chosen.entries[0].paper.arxiv_id == far.arxiv_id
    assert chosen.matched[far.arxiv_id] == (f"favourite author: {last}, {first[0]}.",)
    topic = {e.paper.arxiv_id: t for e, t in zip(view.pool, topics, strict=True)}
    rest = [topic[e.paper.arxiv_id] for e in chosen.entries[1:]]
    assert rest and rest.count("software testing") >= 0.8 * len(rest)
    assert {chosen.matched[e.paper.arxiv_id] for e in chosen.entries[1:]} == {
        ("close to your interests",)
    }
    with session_scope(engine) as s:
        profile = s.get(SubscriberProfile, sid)
        assert profile is not None and profile.vector is not None


def test_keyword_only_readers_are_unchanged(
    engine: Engine, settings: Settings, day: tuple[IssueView, list[Paper], list[str]]
) -> None:
    view, examples, _ = day
    reader(engine, settings, "kw@example.org", keywords=["retrieval", "test"])
    reader(engine, settings, "none@example.org")
    reader(engine, settings, "rag@example.org", papers=[examples[0].arxiv_id])
    prefs = active_prefs(engine)
    plain = [p for p in prefs if p.email != "rag@example.org"]
    before = select_all(view, plain, settings)
    after = selections_for(engine, view, prefs, settings)
    assert {sid: before[sid].key for sid in before} == {sid: after[sid].key for sid in before}
    assert len(after) == 3
    keywords_mode = settings.model_copy(
        update={"ranking": settings.ranking.model_copy(update={"mode": "keywords"})}
    )
    rag = next(p for p in prefs if p.email == "rag@example.org")
    assert (
        selections_for(engine, view, prefs, keywords_mode)[rag.id].key
        == select_all(view, [rag], settings)[rag.id].key
    )
