"""Which papers each subscriber gets today (pure: no I/O, no clock).

Keyword hits are computed once per paper for the union of every subscriber's terms (one matcher
call on the text and one on the title per paper), so the cost of a subscriber is a few set and
dict look-ups whatever the number of subscribers. Subscribers with identical preferences share
one ``Selection`` object, so identical e-mail bodies are easy to find (``Selection.key``).

Rules (issue 5, item 2):
- with keywords: the pool ranked by *their* keywords under the site's scoring rule (+1 when a
  keyword is in title + abstract, +0.5 more when it is in the title; ties keep pool order); any
  paper matching one of their keywords qualifies (``min_score`` is the global digest's only);
- without keywords: the global digest with the site's matched keywords;
- both restricted to their categories when set (a paper qualifies when *any* of its categories,
  primary or cross-list, is one of theirs), then cut to their ``max_papers``
  (default ``settings.max_papers``);
- no paper: no entry in the result, unless ``delivery.send_empty_note`` asks for a short note.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from newsletter.config import Settings
from newsletter.domain import IssueEntry, IssueView
from newsletter.matching import KeywordMatcher, MatchMode, matcher
from newsletter.ranking import KEYWORD_TEXT, KEYWORD_TITLE

TEXT_POINTS = KEYWORD_TEXT
TITLE_POINTS = KEYWORD_TITLE

MatcherFactory = Callable[[Iterable[str], MatchMode], KeywordMatcher]


@dataclass(frozen=True, slots=True)
class SubscriberPrefs:
    """What selection needs to know of one subscriber (read from ``Subscriber`` by the caller)."""

    id: int
    email: str
    keywords: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    max_papers: int | None = None
    include_summaries: bool = True
    cadence: str = "daily"  # daily, weekly: which run mails them (docs/cadence-language.md)
    language: str | None = None  # summary and e-mail language; None: the site's


@dataclass(frozen=True, slots=True, eq=False)
class Selection:
    """One subscriber's papers, best first, with the keywords that matched each (read-only).

    ``entries`` are the issue's own entries, unchanged; ``matched`` maps each entry's arXiv id to
    the subscriber's keywords found in it (the site's keywords for the global digest).
    """

    entries: tuple[IssueEntry, ...]
    matched: dict[str, tuple[str, ...]] = field(default_factory=dict)
    include_summaries: bool = True

    @property
    def key(self) -> tuple[Any, ...]:
        """Identity of the e-mail body: equal keys render to the same HTML and text."""
        return (
            tuple((e.paper.arxiv_id, self.matched.get(e.paper.arxiv_id, ())) for e in self.entries),
            self.include_summaries,
        )

    @property
    def is_empty(self) -> bool:
        return not self.entries


def _canonical(term: str) -> str:
    """Spellings that match exactly the same texts in both modes share one hit computation."""
    return term.lower()


@dataclass(frozen=True, slots=True)
class _Hits:
    """Per canonical term, the pool positions whose text (title + abstract) / title contain it."""

    text: dict[str, frozenset[int]]
    title: dict[str, frozenset[int]]


def compute_hits(
    pool: Sequence[IssueEntry],
    terms: Iterable[str],
    mode: MatchMode,
    make_matcher: MatcherFactory = matcher,
) -> _Hits:
    """Match the union of terms once per paper: two ``find`` calls per paper in all."""
    union = tuple(sorted({_canonical(t.strip()) for t in terms if t.strip()}))
    text: dict[str, set[int]] = {t: set() for t in union}
    title: dict[str, set[int]] = {t: set() for t in union}
    if union:
        m = make_matcher(union, mode)
        for pos, entry in enumerate(pool):
            paper = entry.paper
            for term in m.find(f"{paper.title} {paper.abstract}"):
                text[term].add(pos)
            for term in m.find(paper.title):
                title[term].add(pos)
    return _Hits(
        text={t: frozenset(p) for t, p in text.items()},
        title={t: frozenset(p) for t, p in title.items()},
    )


def _rank_by_keywords(keywords: tuple[str, ...], hits: _Hits) -> list[tuple[int, tuple[str, ...]]]:
    """Pool positions matching any keyword, by score (desc) then pool order, with their matches."""
    scores: dict[int, float] = {}
    matched: dict[int, list[str]] = {}
    for kw in keywords:
        canon = _canonical(kw)
        for pos in hits.text.get(canon, ()):
            scores[pos] = scores.get(pos, 0.0) + TEXT_POINTS
            matched.setdefault(pos, []).append(kw)
        for pos in hits.title.get(canon, ()):
            scores[pos] = scores.get(pos, 0.0) + TITLE_POINTS
    order = sorted(scores, key=lambda pos: (-scores[pos], pos))
    return [(pos, tuple(matched[pos])) for pos in order]


def _in_categories(entry: IssueEntry, categories: frozenset[str]) -> bool:
    if not categories:
        return True
    paper = entry.paper
    return paper.primary_category in categories or not categories.isdisjoint(paper.categories)


def _clean_keywords(keywords: Iterable[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    out: list[str] = []
    for kw in keywords:
        kw = kw.strip()
        if kw and _canonical(kw) not in seen:
            seen.add(_canonical(kw))
            out.append(kw)
    return tuple(out)


def select_all(
    view: IssueView,
    subscribers: Iterable[SubscriberPrefs],
    settings: Settings,
    *,
    make_matcher: MatcherFactory = matcher,
    personal: Mapping[int, Sequence[tuple[int, tuple[str, ...]]]] | None = None,
) -> dict[int, Selection]:
    """Every subscriber's selection, by subscriber id; subscribers with nothing are left out.

    With ``settings.delivery.send_empty_note`` they get a ``Selection`` without entries instead.
    ``make_matcher`` builds the keyword matcher (a parameter so tests can count its calls).
    ``personal`` holds the picks (pool position, why) of readers with a relevance profile
    (``newsletter.relevance.personal``); they replace the keyword rule for those readers.
    """
    subs = list(subscribers)
    pool = view.pool
    hits = compute_hits(
        pool,
        (kw for s in subs for kw in s.keywords),
        settings.keyword_match,
        make_matcher,
    )
    digest_matched = {e.paper.arxiv_id: e.matched_keywords for e in view.digest}
    ranked_cache: dict[tuple[str, ...], list[tuple[int, tuple[str, ...]]]] = {}
    selection_cache: dict[tuple[Any, ...], Selection | None] = {}
    send_empty = settings.delivery.send_empty_note
    out: dict[int, Selection] = {}

    for sub in subs:
        if personal is not None and sub.id in personal:
            picks = personal[sub.id]
            if picks or send_empty:
                out[sub.id] = Selection(
                    entries=tuple(pool[pos] for pos, _ in picks),
                    matched={pool[pos].paper.arxiv_id: why for pos, why in picks},
                    include_summaries=sub.include_summaries,
                )
            continue
        keywords = _clean_keywords(sub.keywords)
        cats = frozenset(sub.categories)
        limit = sub.max_papers if sub.max_papers and sub.max_papers > 0 else settings.max_papers
        cache_key = (keywords, cats, limit, sub.include_summaries)
        if cache_key not in selection_cache:
            if keywords:
                if keywords not in ranked_cache:
                    ranked_cache[keywords] = _rank_by_keywords(keywords, hits)
                picked = [
                    (pool[pos], kws)
                    for pos, kws in ranked_cache[keywords]
                    if _in_categories(pool[pos], cats)
                ][:limit]
            else:
                picked = [
                    (e, digest_matched[e.paper.arxiv_id])
                    for e in view.digest
                    if _in_categories(e, cats)
                ][:limit]
            selection_cache[cache_key] = (
                Selection(
                    entries=tuple(e for e, _ in picked),
                    matched={e.paper.arxiv_id: kws for e, kws in picked},
                    include_summaries=sub.include_summaries,
                )
                if picked or send_empty
                else None
            )
        selection = selection_cache[cache_key]
        if selection is not None:
            out[sub.id] = selection
    return out
