"""Per-subscriber selection: ranking by the subscriber's keywords, categories, limits, empties."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from newsletter.config import Settings, settings_for_tests
from newsletter.email.selection import SubscriberPrefs, select_all
from newsletter.matching import KeywordMatcher, MatchMode, matcher
from tests.fixtures_email import make_view, paper, recorded_papers

POOL = [
    paper("1", "Graph transformers", "We study attention on graphs.", ("cs.LG",)),
    paper("2", "Plain title", "LLMs and graph methods for RL agents.", ("cs.CL", "cs.LG")),
    paper("3", "LLM agents", "An LLM plans.", ("cs.AI",)),
    paper("4", "Attention everywhere", "Attention and graphs.", ("cs.LG", "stat.ML")),
    paper("5", "Nothing relevant", "A world of reviewers.", ("cs.CL",)),
]


def view(digest: list[str] | None = None):
    return make_view(POOL, digest_ids=digest or ["3", "1"], site_matched={"3": ("LLM",)})


def settings(**kw: object) -> Settings:
    return settings_for_tests(**kw)


def ids(sel) -> list[str]:
    return [e.paper.arxiv_id for e in sel.entries]


def prefs(sid: int = 1, **kw: object) -> SubscriberPrefs:
    return SubscriberPrefs(id=sid, email=f"s{sid}@example.org", **kw)  # type: ignore[arg-type]


def test_keywords_rank_pool_by_text_and_title_points_ties_keep_pool_order() -> None:
    # graph: 1 (text+title 1.5), 2 (1), 4 (1); attention: 1 (1), 4 (1.5)
    out = select_all(view(), [prefs(keywords=("graph", "attention"))], settings())
    assert ids(out[1]) == ["1", "4", "2"]  # 2.5, 2.5 (tie: pool order), 1.0
    assert out[1].matched == {
        "1": ("graph", "attention"),
        "4": ("graph", "attention"),
        "2": ("graph",),
    }


def test_any_matching_paper_qualifies_whatever_min_score() -> None:
    out = select_all(view(), [prefs(keywords=("RL",))], settings(min_score=5))
    assert ids(out[1]) == ["2"]


def test_word_mode_matches_plurals_not_substrings() -> None:
    out = select_all(view(), [prefs(keywords=("LLM", "review"))], settings())
    assert ids(out[1]) == ["3", "2"]  # "LLMs" in 2 counts; "reviewers" in 5 does not
    sub = select_all(view(), [prefs(keywords=("review",))], settings(keyword_match="substring"))
    assert ids(sub[1]) == ["5"]


def test_categories_restrict_to_any_of_the_papers_categories() -> None:
    out = select_all(
        view(),
        [prefs(keywords=("graph", "attention"), categories=("stat.ML", "cs.CL"))],
        settings(),
    )
    assert ids(out[1]) == ["4", "2"]  # 4 is cross-listed to stat.ML, 2's primary is cs.CL


def test_max_papers_cuts_and_defaults_to_the_site_maximum() -> None:
    s = settings(max_papers=2)
    out = select_all(
        view(),
        [prefs(1, keywords=("graph", "attention")), prefs(2, keywords=("graph",), max_papers=1)],
        s,
    )
    assert ids(out[1]) == ["1", "4"]
    assert ids(out[2]) == ["1"]


def test_without_keywords_the_global_digest_with_site_matches() -> None:
    out = select_all(
        view(), [prefs(1), prefs(2, categories=("cs.LG",)), prefs(3, max_papers=1)], settings()
    )
    assert ids(out[1]) == ["3", "1"]
    assert out[1].matched == {"3": ("LLM",), "1": ()}
    assert ids(out[2]) == ["1"]
    assert ids(out[3]) == ["3"]


def test_no_match_no_email_unless_the_empty_note_is_configured() -> None:
    subs = [prefs(1, keywords=("quantum",)), prefs(2, categories=("hep-th",))]
    assert select_all(view(), subs, settings()) == {}
    noted = select_all(view(), subs, settings(delivery={"send_empty_note": True}))
    assert set(noted) == {1, 2}
    assert all(sel.is_empty for sel in noted.values())


def test_empty_pool_and_no_subscribers() -> None:
    empty = make_view([], digest_ids=[])
    assert select_all(empty, [prefs(keywords=("graph",)), prefs(2)], settings()) == {}
    assert select_all(view(), [], settings()) == {}


def test_blank_and_duplicate_keywords_are_ignored() -> None:
    out = select_all(view(), [prefs(keywords=("  ", "LLM", "llm", " LLM "))], settings())
    assert out[1].matched == {"3": ("LLM",), "2": ("LLM",)}


def test_identical_bodies_share_a_key_and_different_ones_do_not() -> None:
    subs = [
        prefs(1, keywords=("graph",)),
        prefs(2, keywords=("graph",)),
        prefs(3, keywords=("Graph",)),  # same papers, but "why" shows their own spelling
        prefs(4, keywords=("graph",), include_summaries=False),
    ]
    out = select_all(view(), subs, settings())
    assert out[1].key == out[2].key
    assert ids(out[3]) == ids(out[1])
    assert out[3].key != out[1].key
    assert out[4].key != out[1].key
    assert len({out[s].key for s in out}) == 3
    hash(out[1].key)


class CountingFactory:
    """Wraps the real matcher and counts the texts it is asked to search."""

    def __init__(self) -> None:
        self.built = 0
        self.finds = 0

    def __call__(self, terms: Iterable[str], mode: MatchMode) -> KeywordMatcher:
        self.built += 1
        outer = self
        real = matcher(terms, mode)

        class Counted(KeywordMatcher):
            def find(self, text: str) -> tuple[str, ...]:
                outer.finds += 1
                return real.find(text)

        return Counted(real.terms, real.mode)


def test_keyword_hits_are_computed_once_per_paper_not_per_subscriber() -> None:
    papers = recorded_papers()
    v = make_view(papers)
    vocab = ["LLM", "reinforcement learning", "diffusion", "graph", "attention", "benchmark"]
    subs = [prefs(i, keywords=(vocab[i % 6], vocab[(i * 7) % 6])) for i in range(1, 2001)]
    counter = CountingFactory()
    out = select_all(v, subs, settings(), make_matcher=counter)
    assert counter.built == 1
    assert counter.finds == 2 * len(papers)  # title+abstract, and title, once per paper
    assert out  # and the counted matcher did find papers
    baseline = select_all(v, subs, settings())
    assert {k: ids(s) for k, s in out.items()} == {k: ids(s) for k, s in baseline.items()}


@pytest.mark.parametrize("mode", ["word", "substring"])
def test_per_subscriber_result_equals_the_naive_per_subscriber_scorer(mode: str) -> None:
    papers = recorded_papers()
    v = make_view(papers)
    s = settings(keyword_match=mode, max_papers=7)
    vocab = ["LLM", "RL", "diffusion", "graph", "Attention", "language model", "policy"]
    subs = [
        prefs(i, keywords=tuple(vocab[j] for j in range(7) if (i >> j) & 1)) for i in range(1, 128)
    ]
    out = select_all(v, subs, s)
    for sub in subs:
        m = matcher(sub.keywords, mode)  # type: ignore[arg-type]
        scored = []
        for pos, e in enumerate(v.pool):
            text_hits = m.find(f"{e.paper.title} {e.paper.abstract}")
            title_hits = m.find(e.paper.title)
            if text_hits:
                scored.append((-(len(text_hits) + 0.5 * len(title_hits)), pos, e.paper.arxiv_id))
        expected = [i for _, _, i in sorted(scored)][:7]
        assert (ids(out[sub.id]) if sub.id in out else []) == expected, sub.keywords
