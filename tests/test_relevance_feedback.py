"""Feedback links: every card of the e-mail carries the reader's "more/fewer like this"
links; a GET (a link scanner) changes nothing; the POST records; the next run moves."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from benchmarks.bench_relevance import corpus
from newsletter.config import Settings, settings_for_tests
from newsletter.db import session_scope
from newsletter.domain import IssueView, RankedPaper
from newsletter.email.loading import active_prefs, selections_for
from newsletter.email.render import DigestRenderer, link_substitutions, personalise
from newsletter.email.shared import with_feedback
from newsletter.issue_store import build_issue, save_papers
from newsletter.ranking import Ranking
from newsletter.relevance.models import SubscriberExample
from newsletter.relevance.profiles import profile_of, set_profile
from subscribers import service
from subscribers.links import feedback_token, preferences_url, unsubscribe_url
from subscribers.models import Subscriber
from tests.fixtures_email import make_view
from tests.subscriber_helpers import csrf_of, make_client, with_secret


@pytest.fixture
def settings(database_url: str) -> Settings:
    return with_secret(
        settings_for_tests(
            database_url=database_url,
            categories=["cs.LG", "cs.CL", "cs.SE"],
            max_papers=8,
            base_url="http://testserver",
        )
    )


@pytest.fixture
def world(engine: Engine, settings: Settings) -> tuple[IssueView, dict[str, str], int]:
    papers, topics = corpus()
    with session_scope(engine) as s:
        save_papers(s, papers)
        sub = service.add(s, settings=settings, email="r@example.org", active=True).subscriber
        assert sub.id is not None
        set_profile(
            s,
            settings=settings,
            subscriber_id=sub.id,
            interests="language models that retrieve documents to answer questions",
        )
        sid = sub.id
    topic = {p.arxiv_id: t for p, t in zip(papers, topics, strict=True)}
    return make_view(papers), topic, sid


def key_of(engine: Engine, sid: int) -> str:
    """The reader's link key, which every link of theirs carries."""
    with session_scope(engine) as s:
        sub = s.get(Subscriber, sid)
        assert sub is not None
        return sub.link_key


def email_of(engine: Engine, settings: Settings, view: IssueView, sid: int) -> tuple[str, str]:
    selection = selections_for(engine, view, active_prefs(engine), settings)[sid]
    links = link_substitutions(
        {
            "unsubscribe_url": unsubscribe_url(settings, sid, key_of(engine, sid)),
            "preferences_url": preferences_url(settings, sid, key_of(engine, sid)),
        }
    )
    out = personalise(
        DigestRenderer(settings).render(view, selection, {}),
        with_feedback(links, feedback_token(settings, sid, key_of(engine, sid))),
    )
    return out.html, out.text


def test_feedback_link_get_changes_nothing_post_records_next_run_moves(
    engine: Engine, settings: Settings, world: tuple[IssueView, dict[str, str], int]
) -> None:
    view, topic, sid = world
    html, text = email_of(engine, settings, view, sid)
    fewer = re.findall(r'href="http://testserver(/feedback/[^"/]+/([^"/]+)/fewer)"', html)
    more = re.findall(r'href="http://testserver(/feedback/[^"/]+/([^"/]+)/more)"', html)
    assert len(fewer) == len(more) == 8
    assert len(re.findall(r"More or fewer like this: http://testserver/feedback/\S+", text)) == 8
    first_path, first_id = fewer[0]
    with make_client(settings, engine) as client:
        page = client.get(first_path)
        assert page.status_code == 200 and "Nothing is recorded" in page.text
        assert page.text.count("<button") == 1 and "Fewer like this" in page.text
        with session_scope(engine) as s:
            assert s.exec(select(SubscriberExample)).all() == []
        # A forged or foreign token is refused; so is a POST without the CSRF field.
        assert client.get(first_path.replace("/feedback/", "/feedback/9")).status_code == 404
        assert client.post(first_path).status_code == 403
        done = client.post(first_path, data={"csrf_token": csrf_of(page.text)})
        assert done.status_code == 200 and "saved" in done.text
    with session_scope(engine) as s:
        profile = profile_of(s, sid)
    assert [(e.arxiv_id, e.sign, e.source) for e in profile.examples] == [
        (first_id, -1, "feedback")
    ]
    html2, _ = email_of(engine, settings, view, sid)
    ids2 = [
        i for _, i in re.findall(r'href="http://testserver(/feedback/[^"/]+/([^"/]+)/more)"', html2)
    ]
    assert first_id not in ids2


def test_more_like_this_pulls_a_new_topic_in(
    engine: Engine, settings: Settings, world: tuple[IssueView, dict[str, str], int]
) -> None:
    view, topic, sid = world
    html, _ = email_of(engine, settings, view, sid)
    before = re.findall(r'/feedback/[^"/]+/([^"/]+)/more"', html)
    assert sum(topic[i] == "software testing" for i in before) == 0
    testing = [i for i, t in topic.items() if t == "software testing"][:3]
    with make_client(settings, engine) as client:
        token = feedback_token(settings, sid, key_of(engine, sid))
        for arxiv_id in testing:
            page = client.get(f"/feedback/{token}/{arxiv_id}/more")
            assert page.status_code == 200
            assert (
                client.post(
                    f"/feedback/{token}/{arxiv_id}/more", data={"csrf_token": csrf_of(page.text)}
                ).status_code
                == 200
            )
    html2, _ = email_of(engine, settings, view, sid)
    after = re.findall(r'/feedback/[^"/]+/([^"/]+)/more"', html2)
    assert sum(topic[i] == "software testing" for i in after) >= 2


def test_web_issue_offers_the_readers_feedback_links(
    engine: Engine, settings: Settings, world: tuple[IssueView, dict[str, str], int]
) -> None:
    view, _, sid = world
    pool = tuple(RankedPaper(paper=e.paper, score=0.0) for e in view.pool[:5])
    with session_scope(engine) as s:
        build_issue(
            s,
            date=view.date,
            ranking=Ranking(pool=pool, digest=pool[:2], papers_found=5),
            categories=["cs.LG"],
            source="api",
        )
    token = feedback_token(settings, sid, key_of(engine, sid))
    first = view.pool[0].paper.arxiv_id
    with make_client(settings, engine) as client:
        mine = client.get(f"/archive/{view.date.isoformat()}?r={token}")
        assert mine.status_code == 200
        assert f'href="/feedback/{token}/{first}/more"' in mine.text
        assert mine.text.count("Fewer like this") == 5
        for other in ("", "?r=1.forged", f"?r={token}x"):
            page = client.get(f"/archive/{view.date.isoformat()}{other}")
            assert page.status_code == 200 and "More like this" not in page.text
