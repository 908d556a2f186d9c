"""Scoring every reader with a profile against the day's papers (pure: arrays in, picks out).

Readers are scored in blocks: one float32 matrix product per block for the interests, one for
the example papers (closest example and the mean, Rocchio's centroid; the closest "fewer like
this" paper pulls down), plus keyword points in hybrid mode. A paper qualifies for a reader
when its semantic score reaches the reader's mean + ``relative_threshold`` standard deviations
over the day's papers in their categories (or, in hybrid mode, when one of their keywords
matches); favourite authors' papers are pinned first whatever the score; all is cut to the
reader's maximum. Memory is a few (block x papers) arrays, whatever the number of readers.
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


def _short(title: str) -> str:
    flat = " ".join(title.split())
    return flat if len(flat) <= TITLE_CHARS else flat[: TITLE_CHARS - 1].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class _Examples:
    """Similarities of a block's examples (positive or negative) to the day's papers."""

    best: np.ndarray  # (readers, papers): closest example
    mean: np.ndarray  # (readers, papers): mean over examples (Rocchio's centroid)
    has: np.ndarray  # (readers,) bool
    sims: np.ndarray  # (examples, papers), readers' rows in ``spans``
    spans: list[slice]


def _examples(day: Day, readers: Sequence[Reader], negative: bool, n: int) -> _Examples:
    b = len(readers)
    best = np.zeros((b, n), dtype=np.float32)
    mean = np.zeros((b, n), dtype=np.float32)
    has = np.zeros(b, dtype=bool)
    spans: list[slice] = []
    flat: list[int] = []
    starts: list[int] = []
    owners: list[int] = []
    for i, r in enumerate(readers):
        rows = r.negatives if negative else r.positives
        spans.append(slice(len(flat), len(flat) + len(rows)))
        if rows:
            starts.append(len(flat))
            owners.append(i)
            flat.extend(rows)
    if not flat:
        return _Examples(best, mean, has, np.zeros((0, n), dtype=np.float32), spans)
    sims = dot(day.examples[np.asarray(flat)], day.papers)
    idx = np.asarray(starts)
    counts = np.diff(np.append(idx, len(flat))).astype(np.float32)
    who = np.asarray(owners)
    best[who] = np.maximum.reduceat(sims, idx, axis=0)
    mean[who] = np.add.reduceat(sims, idx, axis=0) / counts[:, None]
    has[who] = True
    return _Examples(best, mean, has, sims, spans)


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
    day: Day, readers: Sequence[Reader], settings: RankingSettings
) -> dict[int, list[Pick]]:
    """The picks of one block of readers (see the module docstring for the rule)."""
    n = day.papers.shape[0]
    b = len(readers)
    hybrid = settings.mode == "hybrid"
    interest = np.zeros((b, n), dtype=np.float32)
    has_interest = np.asarray([r.interest >= 0 for r in readers], dtype=bool)
    if has_interest.any():
        rows = np.asarray([r.interest for r in readers if r.interest >= 0])
        interest[has_interest] = dot(day.interests[rows], day.papers)
    pos = _examples(day, readers, False, n)
    neg = _examples(day, readers, True, n)
    example = 0.5 * pos.best + 0.5 * pos.mean
    for i, r in enumerate(readers):
        learned = _classifier_scores(day, r, settings)
        if learned is not None:
            example[i] = 0.5 * example[i] + 0.5 * learned
    parts = has_interest.astype(np.float32) + pos.has.astype(np.float32)
    semantic = (interest * has_interest[:, None] + example * pos.has[:, None]) / np.maximum(
        parts, 1.0
    )[:, None]
    semantic -= settings.negative_weight * np.maximum(neg.best, 0.0) * neg.has[:, None]
    keywords = np.zeros((b, n), dtype=np.float32)
    if hybrid:
        for i, r in enumerate(readers):
            for position, points in r.keyword_points.items():
                keywords[i, position] = points
    allowed = np.ones((b, n), dtype=bool)
    for i, r in enumerate(readers):
        if r.allowed is not None:
            allowed[i] = r.allowed
    counted = np.maximum(allowed.sum(axis=1), 1)
    masked = np.where(allowed, semantic, 0.0)
    mean = masked.sum(axis=1) / counted
    var = (np.where(allowed, semantic - mean[:, None], 0.0) ** 2).sum(axis=1) / counted
    threshold = mean + settings.relative_threshold * np.sqrt(var)
    qualifies = (semantic >= threshold[:, None]) & (parts > 0)[:, None]
    if hybrid:
        qualifies |= keywords > 0
    final = np.where(qualifies & allowed, semantic + settings.keyword_weight * keywords, -np.inf)
    out: dict[int, list[Pick]] = {}
    for i, r in enumerate(readers):
        picks: list[Pick] = []
        pinned = {position for position, _ in r.pinned}
        for position, name in r.pinned:
            picks.append((position, (f"favourite author: {name}",)))
        if parts[i] == 0:
            rest = [p for p in r.fallback if p[0] not in pinned]
            out[r.id] = (picks + rest)[: max(r.limit, len(picks))]
            continue
        room = r.limit - len(picks)
        if room > 0:
            row = final[i]
            k = min(room + len(pinned), n)
            top = np.argpartition(-row, k - 1)[:k] if k < n else np.arange(n)
            order = sorted(
                (int(j) for j in top if np.isfinite(row[j]) and int(j) not in pinned),
                key=lambda j: (-float(row[j]), j),
            )[:room]
            for j in order:
                picks.append((j, _why(day, r, i, j, interest, pos, has_interest)))
        out[r.id] = picks
    return out


def _why(
    day: Day,
    reader: Reader,
    i: int,
    j: int,
    interest: np.ndarray,
    pos: _Examples,
    has_interest: np.ndarray,
) -> tuple[str, ...]:
    """Keywords matched, else the closest example paper or the interests, whichever is nearer."""
    if reader.keyword_why.get(j):
        return tuple(reader.keyword_why[j])
    span = pos.spans[i]
    if pos.has[i] and (not has_interest[i] or pos.best[i, j] >= interest[i, j]):
        closest = reader.positives[int(np.argmax(pos.sims[span, j]))]
        return (f"close to: {_short(day.example_titles[closest])}",)
    return ("close to your interests",)


def rank_readers(
    day: Day, readers: Sequence[Reader], settings: RankingSettings, block: int = 2048
) -> dict[int, list[Pick]]:
    """Every reader's picks, best first, scored ``block`` readers at a time."""
    out: dict[int, list[Pick]] = {}
    for start in range(0, len(readers), block):
        out.update(rank_block(day, readers[start : start + block], settings))
    return out
