from __future__ import annotations

import re
from collections.abc import Callable

from fixtures_pipeline import old_bot_rank, recorded_papers, repo_config, retyped

from newsletter.config import Settings
from newsletter.ranking import rank_papers

SettingsFactory = Callable[..., Settings]


def _seed(make_settings: SettingsFactory, **over: object) -> Settings:
    cfg = repo_config()
    base = {
        "keywords": cfg["keywords"],
        "exclude_keywords": cfg["exclude_keywords"],
        "max_papers": cfg["max_papers"],
    }
    return make_settings(**{**base, **over})


def test_substring_mode_reproduces_the_old_rule_on_a_recorded_day(
    make_settings: SettingsFactory,
) -> None:
    papers = recorded_papers()
    for max_papers in (30, 7):
        s = _seed(make_settings, keyword_match="substring", max_papers=max_papers)
        ranking = rank_papers(papers, s.keywords, s)
        got = [(r.paper.arxiv_id, r.score) for r in ranking.digest]
        want = old_bot_rank(papers, s.keywords, s.exclude_keywords, max_papers)
        assert got == want
        assert len({score for _, score in got}) < len(got)  # the day has ties: order matters


def test_ties_keep_fetch_order(make_settings: SettingsFactory) -> None:
    base = recorded_papers()[0]
    papers = tuple(
        retyped(base, arxiv_id=f"2604.0000{i}", title=t, abstract="plain text")
        for i, t in enumerate(["GPU one", "Agent two", "GPU and Agent three", "Agent four"])
    )
    s = make_settings(keywords=["GPU", "Agent"], keyword_match="substring")
    ranking = rank_papers(papers, s.keywords, s)
    assert [(r.paper.title, r.score) for r in ranking.digest] == [
        ("GPU and Agent three", 3.0),
        ("GPU one", 1.5),
        ("Agent two", 1.5),
        ("Agent four", 1.5),
    ]


def test_word_mode_does_not_find_rl_in_world_but_substring_does(
    make_settings: SettingsFactory,
) -> None:
    paper = retyped(
        recorded_papers()[0], title="A world model", abstract="We study the world of games."
    )
    word = make_settings(keywords=["RL"], keyword_match="word")
    sub = make_settings(keywords=["RL"], keyword_match="substring")
    assert rank_papers([paper], word.keywords, word).digest == ()
    (hit,) = rank_papers([paper], sub.keywords, sub).digest
    assert (hit.score, hit.matched_keywords) == (1.5, ("RL",))


def test_word_mode_scores_and_names_matches(make_settings: SettingsFactory) -> None:
    paper = retyped(
        recorded_papers()[0],
        title="LLM-based agents for RL",
        abstract="Large language models (LLMs) as agents, trained with RL.",
    )
    s = make_settings(keywords=["LLM", "RL", "Agent", "Large Language Model", "GPU"])
    (hit,) = rank_papers([paper], s.keywords, s).digest
    assert hit.matched_keywords == ("LLM", "RL", "Agent", "Large Language Model")
    assert hit.score == 4 * 1.0 + 3 * 0.5


def test_exclude_uses_the_match_mode(make_settings: SettingsFactory) -> None:
    paper = retyped(recorded_papers()[0], title="A GPU study", abstract="Checked by a reviewer.")
    word = make_settings(keywords=["GPU"], exclude_keywords=["review"])
    sub = make_settings(keywords=["GPU"], exclude_keywords=["review"], keyword_match="substring")
    assert len(rank_papers([paper], word.keywords, word).pool) == 1
    assert rank_papers([paper], sub.keywords, sub).pool == ()


def test_pool_keeps_every_unexcluded_paper_in_fetch_order(make_settings: SettingsFactory) -> None:
    papers = recorded_papers()
    s = _seed(make_settings, max_papers=5)
    ranking = rank_papers(papers, s.keywords, s)
    whole_word = re.compile(r"\b(survey|review|tutorial)(e?s)?\b", re.IGNORECASE)
    excluded = [p for p in papers if whole_word.search(p.title + " " + p.abstract)]
    assert excluded
    pool_ids = [r.paper.arxiv_id for r in ranking.pool]
    assert pool_ids == [p.arxiv_id for p in papers if p not in excluded]
    assert any(not r.matched_keywords for r in ranking.pool)  # non-matching papers stay in pool
    assert len(ranking.digest) == 5
    assert ranking.papers_found == len(papers)


def test_min_score_filters_the_digest(make_settings: SettingsFactory) -> None:
    papers = recorded_papers()
    s = _seed(make_settings, keyword_match="substring", min_score=2.5)
    ranking = rank_papers(papers, s.keywords, s)
    assert ranking.digest and all(r.score >= 2.5 for r in ranking.digest)
    unfiltered = rank_papers(papers, s.keywords, _seed(make_settings, keyword_match="substring"))
    assert [r for r in unfiltered.digest if r.score >= 2.5] == list(ranking.digest)
    assert len(unfiltered.digest) > len(ranking.digest)


def test_high_score_keywords_add_ten_in_text_and_twenty_in_title(
    make_settings: SettingsFactory,
) -> None:
    base = recorded_papers()[0]
    in_title = retyped(base, title="Sparse MoE routing", abstract="nothing else")
    in_text = retyped(base, arxiv_id="x2", title="Routing", abstract="with MoE layers")
    s = make_settings(keywords=["routing"], high_score_keywords=["MoE"])
    ranking = rank_papers([in_text, in_title], s.keywords, s)
    assert [(r.paper.title, r.score) for r in ranking.digest] == [
        ("Sparse MoE routing", 1.5 + 10 + 20),
        ("Routing", 1.5 + 10),
    ]
    assert ranking.digest[0].matched_keywords == ("MoE", "routing")
