"""The day's ranking: a pure function of (papers, keywords, settings).

Both modes go through ``newsletter.matching``. In ``substring`` mode the result is exactly the old
bot's rule: +1.0 per keyword found in title + abstract, +0.5 per keyword found in the title,
+10 / +20 per ``high_score_keywords`` term in the text / title; a paper is kept if some keyword is
in the text and no exclude keyword is; stable sort by score, descending; cut to ``max_papers``.
``min_score`` (ignored by the old bot) now filters the global digest.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from newsletter.config import Settings
from newsletter.domain import Paper, RankedPaper
from newsletter.matching import KeywordMatcher, MatchMode, matcher

KEYWORD_TEXT = 1.0
KEYWORD_TITLE = 0.5
HIGH_TEXT = 10.0
HIGH_TITLE = 20.0


@dataclass(frozen=True, slots=True)
class Ranking:
    """The candidate pool (fetch order, exclude list applied) and the global digest (ranked)."""

    pool: tuple[RankedPaper, ...]
    digest: tuple[RankedPaper, ...]
    papers_found: int  # papers considered, before the exclude list and the cut

    @property
    def matched(self) -> int:
        """Papers with at least one keyword hit (the old bot's 'before the cut' count)."""
        return sum(1 for r in self.pool if r.matched_keywords)


def paper_text(paper: Paper) -> str:
    """The text the old bot matched: title, a space, abstract."""
    return f"{paper.title} {paper.abstract}"


@dataclass(frozen=True, slots=True)
class Scorer:
    """Keyword, title-bonus and strong-keyword scoring in one mode."""

    keywords: KeywordMatcher
    strong: KeywordMatcher

    def score(self, paper: Paper) -> RankedPaper:
        text = paper_text(paper)
        in_text = self.keywords.find(text)
        in_title = self.keywords.find(paper.title)
        strong_text = self.strong.find(text)
        strong_title = self.strong.find(paper.title)
        score = (
            KEYWORD_TEXT * len(in_text)
            + KEYWORD_TITLE * len(in_title)
            + HIGH_TEXT * len(strong_text)
            + HIGH_TITLE * len(strong_title)
        )
        matched = tuple(dict.fromkeys((*strong_text, *in_text)))
        return RankedPaper(paper=paper, score=score, matched_keywords=matched)


def make_scorer(
    keywords: Iterable[str], high_score_keywords: Iterable[str], mode: MatchMode
) -> Scorer:
    return Scorer(keywords=matcher(keywords, mode), strong=matcher(high_score_keywords, mode))


def rank_papers(papers: Sequence[Paper], keywords: Sequence[str], settings: Settings) -> Ranking:
    """Score every paper not excluded; the digest is those with a hit, >= min_score, top N."""
    mode: MatchMode = settings.keyword_match
    scorer = make_scorer(keywords, settings.high_score_keywords, mode)
    exclude = matcher(settings.exclude_keywords, mode)
    pool = tuple(scorer.score(p) for p in papers if not exclude.any(paper_text(p)))
    hits = [r for r in pool if r.matched_keywords and r.score >= settings.min_score]
    digest = sorted(hits, key=lambda r: -r.score)  # sorted() is stable: ties keep fetch order
    return Ranking(pool=pool, digest=tuple(digest[: settings.max_papers]), papers_found=len(papers))
