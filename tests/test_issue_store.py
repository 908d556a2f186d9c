from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from fixtures_pipeline import recorded_papers, repo_config, retyped
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import select

from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.domain import Paper
from newsletter.issue_store import (
    build_issue,
    fresh_papers,
    latest_issue,
    list_issues,
    load_issue,
    save_papers,
)
from newsletter.models import IssuePaperRow, IssueRow, PaperRow
from newsletter.ranking import rank_papers

D1 = dt.date(2026, 4, 21)
D2 = dt.date(2026, 4, 22)


def _settings(make_settings: Callable[..., Settings], **over: object) -> Settings:
    cfg = repo_config()
    return make_settings(**{"keywords": cfg["keywords"], "max_papers": 10, **over})


def _publish(engine: Engine, s: Settings, date: dt.date, papers: tuple[Paper, ...]) -> int:
    with session_scope(engine) as session:
        save_papers(session, papers)
        fresh = fresh_papers(session, date, papers, s.announce_types)
        ranking = rank_papers(fresh.papers, s.keywords, s)
        issue = build_issue(
            session,
            date=date,
            ranking=ranking,
            categories=s.categories,
            source="rss",
            updates=fresh.updates,
            papers_found=len(papers),
        )
        assert issue.id is not None
        return issue.id


def test_issue_round_trip(engine: Engine, make_settings: Callable[..., Settings]) -> None:
    s = _settings(make_settings)
    papers = recorded_papers()
    _publish(engine, s, D1, papers)
    ranking = rank_papers(papers, s.keywords, s)
    with session_scope(engine) as session:
        view = load_issue(session, D1)
    assert view is not None
    assert view.papers_found == 50 and view.categories == ("cs.AI", "cs.LG")
    assert [e.paper.arxiv_id for e in view.pool] == [r.paper.arxiv_id for r in ranking.pool]
    assert [(e.paper.arxiv_id, e.score, e.matched_keywords, e.rank) for e in view.digest] == [
        (r.paper.arxiv_id, r.score, r.matched_keywords, i) for i, r in enumerate(ranking.digest, 1)
    ]
    first = view.digest[0].paper
    original = next(p for p in papers if p.arxiv_id == first.arxiv_id)
    assert first == original  # every field survives the database


def test_rerunning_a_date_rebuilds_in_place(
    engine: Engine, make_settings: Callable[..., Settings]
) -> None:
    papers = recorded_papers()
    first_id = _publish(engine, _settings(make_settings), D1, papers)
    second_id = _publish(engine, _settings(make_settings, max_papers=3), D1, papers[:20])
    with session_scope(engine) as session:
        assert session.exec(select(func.count()).select_from(IssueRow)).one() == 1
        links = session.exec(select(IssuePaperRow)).all()
        view = load_issue(session, D1)
    assert first_id == second_id
    assert len(links) == len(view.pool) == 20 - 0  # no exclude keywords: all 20 in the pool
    assert [e.rank for e in view.digest] == [1, 2, 3]


def test_a_paper_is_not_repeated_the_next_day(
    engine: Engine, make_settings: Callable[..., Settings]
) -> None:
    s = _settings(make_settings)
    papers = recorded_papers()
    _publish(engine, s, D1, papers[:30])
    _publish(engine, s, D2, papers[20:])
    with session_scope(engine) as session:
        day2 = load_issue(session, D2)
        # rebuilding day 1 afterwards is unaffected by day 2
        _publish(engine, s, D1, papers[:30])
        day1 = load_issue(session, D1)
    assert day2 is not None and day1 is not None
    assert [e.paper.arxiv_id for e in day2.pool] == [p.arxiv_id for p in papers[30:]]
    assert len(day1.pool) == 30


def test_a_replacement_shows_only_when_asked_and_is_marked(
    engine: Engine, make_settings: Callable[..., Settings]
) -> None:
    papers = recorded_papers()
    _publish(engine, _settings(make_settings), D1, papers[:5])
    replaced = retyped(papers[0], version=papers[0].version + 1, announce_type="replace")
    day2 = (replaced, *papers[5:8])
    _publish(engine, _settings(make_settings), D2, day2)
    with session_scope(engine) as session:
        default = load_issue(session, D2)
    assert default is not None and replaced.arxiv_id not in {e.paper.arxiv_id for e in default.pool}

    wants = _settings(make_settings, announce_types=["new", "cross", "replace"])
    _publish(engine, wants, D2, day2)
    with session_scope(engine) as session:
        view = load_issue(session, D2)
        stored = session.get(PaperRow, replaced.arxiv_id)
    assert view is not None and stored is not None
    entry = next(e for e in view.pool if e.paper.arxiv_id == replaced.arxiv_id)
    assert (entry.is_update, entry.announce_type, entry.paper.version) == (
        True,
        "replace",
        replaced.version,
    )
    assert stored.version == replaced.version
    assert sum(e.is_update for e in view.pool) == 1


def test_list_and_latest_issue(engine: Engine, make_settings: Callable[..., Settings]) -> None:
    with session_scope(engine) as session:
        assert latest_issue(session) is None and list_issues(session) == []
    s = _settings(make_settings, max_papers=4)
    papers = recorded_papers()
    _publish(engine, s, D2, papers[10:20])
    _publish(engine, s, D1, papers[:10])
    with session_scope(engine) as session:
        issues = list_issues(session)
        latest = latest_issue(session)
    assert [(i.date, i.papers_found, i.papers_selected, i.pool_size) for i in issues] == [
        (D2, 10, 4, 10),
        (D1, 10, 4, 10),
    ]
    assert latest is not None and latest.date == D2
