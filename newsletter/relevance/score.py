"""Scoring every reader with a profile against the day's papers (pure: arrays in, picks out).

Readers are scored in blocks: one float32 matrix product per block for the interests; the
example papers' similarities (closest example and the mean, Rocchio's centroid; the closest
"fewer like this" paper pulls down) come from one product for the day's distinct examples;
keyword points are added in hybrid mode. A paper qualifies for a reader when its semantic score
reaches the reader's mean + ``relative_threshold`` standard deviations over the day's papers in
their categories, capped at ``TOP_FRACTION`` of their best score (or, in hybrid mode, when one
of their keywords matches); favourite authors' papers are pinned first whatever the score; all
is cut to the reader's maximum. Memory is a few (block x papers) arrays per block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from newsletter.config import RankingSettings
from newsletter.relevance.embed import Matrix, dot

Pick = tuple[int, tuple[str, ...]]  # pool position, why (shown on the card)
TITLE_CHARS = 80


@dataclass(frozen=True, slots=True)
class Reader:
    """One reader's profile as rows of the day's matrices."""

    id: int
    limit: int
    interest: int = -1  # row in ``Day.interests``; -1: no interests
    positives: tuple[int, ...] = ()  # rows in ``Day.examples``
    negatives: tuple[int, ...] = ()
    pinned: tuple[tuple[int, str], ...] = ()  # (pool position, favourite author's name)
    keyword_points: Mapping[int, float] = field(default_factory=dict)
    keyword_why: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    allowed: np.ndarray | None = None  # bool over the pool (their categories); None: all
    fallback: tuple[Pick, ...] = ()  # no semantic part: today's keyword/global picks


@dataclass(frozen=True, slots=True)
class Day:
    papers: Matrix  # pool order
    interests: Matrix
    examples: Matrix
    example_titles: Sequence[str]


INTEREST_WHY = ("close to your interests",)
TOP_FRACTION = 0.9  # the threshold never exceeds this share of the reader's best score
PRECOMPUTE_FLOATS = 32_000_000  # examples x papers similarities kept whole up to 128 MB


def _short(title: str) -> str:
    flat = " ".join(title.split())
    return flat if len(flat) <= TITLE_CHARS else flat[: TITLE_CHARS - 1].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class _Examples:
    """Similarities of a block's examples (positive or negative) to the day's papers."""

    best: np.ndarray  # (readers, papers): closest example
    mean: np.ndarray  # (readers, papers): mean over examples (Rocchio's centroid)
    has: np.ndarray  # (readers,) bool
    rows: np.ndarray  # (readers, examples): rows of ``Day.examples``, padded with a real one


class _Similarities:
    """Example-to-paper similarities: all at once when the day's distinct examples are few
    enough (readers share example papers), else one matrix product per block."""

    def __init__(self, day: Day) -> None:
        self.day = day
        n = day.papers.shape[0]
        dense = isinstance(day.examples, np.ndarray)
        small = day.examples.shape[0] * n <= PRECOMPUTE_FLOATS
        self.whole = dot(day.examples, day.papers) if dense and small else None

    def column(self, rows: np.ndarray) -> np.ndarray:
        """(readers, papers): each reader's example ``rows[i]`` against every paper."""
        if self.whole is not None:
            return self.whole[rows]
        return dot(self.day.examples[rows], self.day.papers)

    def at(self, rows: np.ndarray, papers: np.ndarray) -> np.ndarray:
        """(readers, k): example ``rows[i]`` against the papers ``papers[i]`` only."""
        if self.whole is not None:
            return self.whole[rows[:, None], papers]
        vectors = self.day.examples[rows]
        picked = self.day.papers[papers.reshape(-1)]
        if not isinstance(vectors, np.ndarray):
            vectors, picked = vectors.toarray(), picked.toarray()
        k = papers.shape[1]
        return np.einsum("bd,bkd->bk", vectors, np.asarray(picked).reshape(len(rows), k, -1))


def _examples(
    sims_of: _Similarities, readers: Sequence[Reader], negative: bool, n: int
) -> _Examples:
    """Closest example (running maximum, one example column at a time, so memory stays at a
    few (readers x papers) arrays) and the mean similarity, Rocchio's centroid."""
    b = len(readers)
    lists = [r.negatives if negative else r.positives for r in readers]
    m = max((len(x) for x in lists), default=0)
    has = np.asarray([bool(x) for x in lists], dtype=bool)
    best = np.zeros((b, n), dtype=np.float32)
    total = np.zeros((b, n), dtype=np.float32)
    rows = np.zeros((b, m), dtype=np.int64)
    if m == 0:
        return _Examples(best, total, has, rows)
    counts = np.zeros(b, dtype=np.float32)
    for i, x in enumerate(lists):
        if x:
            rows[i, : len(x)] = x
            rows[i, len(x) :] = x[0]
            counts[i] = len(x)
    for c in range(m):
        sims = sims_of.column(rows[:, c])
        live = (counts > c)[:, None]
        if c == 0:
            best[:] = sims
        else:
            np.maximum(best, sims, out=best)
        total += np.where(live, sims, 0.0)
    best[~has] = 0.0
    total /= np.maximum(counts, 1.0)[:, None]
    return _Examples(best, total, has, rows)


def _classifier_scores(day: Day, reader: Reader, settings: RankingSettings) -> np.ndarray | None:
    """A per-reader linear classifier on their examples' vectors (as arxiv-sanity-lite
    does), once they have enough examples of both signs; its decision on each paper."""
    pos, neg = reader.positives, reader.negatives
    if len(pos) + len(neg) < settings.classifier_min_examples or not pos or not neg:
        return None
    from sklearn.svm import LinearSVC

    x = day.examples[np.asarray((*pos, *neg))]
    y = np.asarray([1] * len(pos) + [0] * len(neg))
    model = LinearSVC(C=0.1, class_weight="balanced")
    model.fit(x, y)
    return np.tanh(np.asarray(model.decision_function(day.papers), dtype=np.float32))


def rank_block(
    day: Day,
    readers: Sequence[Reader],
    settings: RankingSettings,
    sims_of: _Similarities | None = None,
    close_why: Sequence[tuple[str, ...]] | None = None,
) -> dict[int, list[Pick]]:
    """The picks of one block of readers (see the module docstring for the rule)."""
    sims_of = sims_of or _Similarities(day)
    close_why = close_why or [(f"close to: {_short(t)}",) for t in day.example_titles]
    n = day.papers.shape[0]
    b = len(readers)
    hybrid = settings.mode == "hybrid"
    interest = np.zeros((b, n), dtype=np.float32)
    has_interest = np.asarray([r.interest >= 0 for r in readers], dtype=bool)
    if has_interest.any():
        rows = np.asarray([r.interest for r in readers if r.interest >= 0])
        interest[has_interest] = dot(day.interests[rows], day.papers)
    pos = _examples(sims_of, readers, False, n)
    neg = _examples(sims_of, readers, True, n)
    semantic = 0.5 * pos.best
    semantic += 0.5 * pos.mean
    for i, r in enumerate(readers):
        if r.negatives:
            learned = _classifier_scores(day, r, settings)
            if learned is not None:
                semantic[i] = 0.5 * semantic[i] + 0.5 * learned
    parts = has_interest.astype(np.float32) + pos.has.astype(np.float32)
    semantic *= pos.has[:, None]
    semantic += interest
    semantic /= np.maximum(parts, 1.0)[:, None]
    if neg.has.any():
        semantic -= settings.negative_weight * np.maximum(neg.best, 0.0) * neg.has[:, None]
    allowed: np.ndarray | None = None
    if any(r.allowed is not None for r in readers):
        allowed = np.ones((b, n), dtype=bool)
        for i, r in enumerate(readers):
            if r.allowed is not None:
                allowed[i] = r.allowed
        counted = np.maximum(allowed.sum(axis=1), 1)
        masked = np.where(allowed, semantic, 0.0)
        mean = masked.sum(axis=1) / counted
        top = np.where(allowed, semantic, -np.inf).max(axis=1)
        masked = np.where(allowed, semantic - mean[:, None], 0.0)
        std = np.sqrt(np.square(masked, out=masked).sum(axis=1) / counted)
        del masked
    else:
        mean, std, top = semantic.mean(axis=1), semantic.std(axis=1), semantic.max(axis=1)
    # Capped below the day's best, so a day dominated by the reader's topic (where mean + z
    # std can exceed every score) still lets its papers through.
    threshold = np.minimum(mean + settings.relative_threshold * std, TOP_FRACTION * top)
    qualifies = semantic >= threshold[:, None]
    qualifies &= (parts > 0)[:, None]
    final = semantic
    if hybrid and any(r.keyword_points for r in readers):
        keywords = np.zeros((b, n), dtype=np.float32)
        for i, r in enumerate(readers):
            for position, points in r.keyword_points.items():
                keywords[i, position] = points
        qualifies |= keywords > 0
        final = semantic + settings.keyword_weight * keywords
    if allowed is not None:
        qualifies &= allowed
    final = np.where(qualifies, final, np.float32(-np.inf))
    k = min(max(r.limit + len(r.pinned) for r in readers), n)
    if k < n:
        candidates = np.argpartition(-final, k - 1, axis=1)[:, :k]
    else:
        candidates = np.broadcast_to(np.arange(n), (b, n)).copy()
    values = np.take_along_axis(final, candidates, axis=1)
    order = np.lexsort((candidates, -values), axis=1)
    candidates = np.take_along_axis(candidates, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    at = np.arange(b)[:, None]
    by_example = pos.has[:, None] & (
        ~has_interest[:, None] | (pos.best[at, candidates] >= interest[at, candidates])
    )
    closest = np.zeros((b, k), dtype=np.int64)
    if pos.rows.shape[1]:
        near = np.stack([sims_of.at(pos.rows[:, c], candidates) for c in range(pos.rows.shape[1])])
        closest = pos.rows[at, near.argmax(axis=0)]  # (b, k): their example nearest each pick
    finite = np.isfinite(values)
    out: dict[int, list[Pick]] = {}
    for i, r in enumerate(readers):
        picks: list[Pick] = [(p, (f"favourite author: {name}",)) for p, name in r.pinned]
        if parts[i] == 0:
            pinned = {p for p, _ in r.pinned}
            rest = [p for p in r.fallback if p[0] not in pinned]
            out[r.id] = (picks + rest)[: max(r.limit, len(picks))]
            continue
        room = r.limit - len(picks)
        if room > 0:
            pinned = {p for p, _ in r.pinned}
            row, ok, ex, near = candidates[i], finite[i], by_example[i], closest[i]
            for c in range(k):
                if not ok[c]:
                    break
                j = int(row[c])
                if j in pinned:
                    continue
                kw = r.keyword_why.get(j) if r.keyword_why else None
                why = tuple(kw) if kw else close_why[near[c]] if ex[c] else INTEREST_WHY
                picks.append((j, why))
                room -= 1
                if room == 0:
                    break
        out[r.id] = picks
    return out


def rank_readers(
    day: Day, readers: Sequence[Reader], settings: RankingSettings, block: int = 2048
) -> dict[int, list[Pick]]:
    """Every reader's picks, best first, scored ``block`` readers at a time."""
    sims_of = _Similarities(day)
    close_why = [(f"close to: {_short(t)}",) for t in day.example_titles]
    out: dict[int, list[Pick]] = {}
    for start in range(0, len(readers), block):
        out.update(rank_block(day, readers[start : start + block], settings, sims_of, close_why))
    return out
