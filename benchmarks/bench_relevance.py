"""Relevance benchmark on recorded arXiv data: precision@10 of keyword, semantic and hybrid
ranking for readers who give five example papers of one topic, in a day mixed from three.

Topics are the sources of the recorded papers: retrieval-augmented generation (80 papers of
the rag2024 recording), software testing (the 64 cs.SE papers of arxiv.py's "testing"
search) and machine learning (the cs.LG day of the demo data). For each topic and each of
``SEEDS`` draws, five papers of the topic are the reader's examples; the day is every other
paper of the three sources; a pick is relevant when it comes from the reader's topic.
Keyword and hybrid readers also have the two keywords a reader of the topic would type.

Run: ``python -m benchmarks.bench_relevance`` (prints the table; docs/relevance.md has it).
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.arxiv.replay import RecordedEntry, load_recording  # noqa: E402
from newsletter.config import RankingSettings  # noqa: E402
from newsletter.domain import IssueEntry, Paper  # noqa: E402
from newsletter.email.selection import TEXT_POINTS, TITLE_POINTS, compute_hits  # noqa: E402
from newsletter.relevance.embed import (  # noqa: E402
    Matrix,
    TfidfSpace,
    blend,
    embed_wordllama,
    paper_text,
)
from newsletter.relevance.score import Day, Reader, rank_readers  # noqa: E402

DATA = ROOT / "tests" / "data" / "arxiv"
RAG_QUERY = "retrieval-augmented-generation"
TOPICS: dict[str, tuple[Path, str | None, tuple[str, ...]]] = {
    "retrieval-augmented generation": (
        DATA
        / f"rag2024_search-all-{RAG_QUERY}_first80of1314_2024-12-26_legacyformat_TRUNCATED.xml",
        None,
        ("retrieval", "language model"),
    ),
    "software testing": (
        DATA / "arxivpy_search-all-testing_start0_max100_100entries_2026-04-12.xml",
        "cs.SE",
        ("test", "bug"),
    ),
    "machine learning": (
        ROOT / "newsletter/demo_data/arxiv/yanhua_search-cat-cs.LG_max50_50entries_2026-04-22.xml",
        None,
        ("neural network", "learning"),
    ),
}
EXAMPLES = 5
AT = 10
SEEDS = 10


def _paper(e: RecordedEntry) -> Paper:
    return Paper(
        arxiv_id=e.arxiv_id,
        version=e.version,
        title=e.title,
        abstract=e.summary,
        authors=e.authors,
        primary_category=e.primary_category,
        categories=e.categories,
        published=e.published,
    )


def corpus() -> tuple[list[Paper], list[str]]:
    """Every paper once, with its topic."""
    papers: list[Paper] = []
    topics: list[str] = []
    seen: set[str] = set()
    for topic, (path, primary, _) in TOPICS.items():
        for e in load_recording(path):
            if (primary is None or e.primary_category == primary) and e.arxiv_id not in seen:
                seen.add(e.arxiv_id)
                papers.append(_paper(e))
                topics.append(topic)
    return papers, topics


def _entry(p: Paper) -> IssueEntry:
    return IssueEntry(paper=p, score=0.0, matched_keywords=(), rank=None)


def keyword_top(pool: Sequence[IssueEntry], keywords: Sequence[str]) -> list[int]:
    """The site's keyword rule (as ``email.selection``): points, then pool order."""
    hits = compute_hits(pool, keywords, "word")
    score: dict[int, float] = {}
    for kw in keywords:
        for pos in hits.text.get(kw.lower(), ()):
            score[pos] = score.get(pos, 0.0) + TEXT_POINTS
        for pos in hits.title.get(kw.lower(), ()):
            score[pos] = score.get(pos, 0.0) + TITLE_POINTS
    return sorted(score, key=lambda pos: (-score[pos], pos))[:AT]


def matrices(
    model: str,
    pool: Sequence[int],
    examples: Sequence[int],
    papers: Sequence[Paper],
    vectors: np.ndarray,
) -> tuple[Matrix, Matrix]:
    """Papers and examples in one text model (WordLlama vectors computed once per paper,
    as the cache does; tf-idf fitted on the day, as selection does)."""
    texts = [paper_text(papers[i].title, papers[i].abstract) for i in pool]
    ex_texts = [paper_text(papers[i].title, papers[i].abstract) for i in examples]
    dense = (vectors[list(pool)], vectors[list(examples)]) if model != "tfidf" else None
    if model == "wordllama" and dense is not None:
        return dense
    space = TfidfSpace([*texts, *ex_texts])
    sparse_pair = (space.embed(texts), space.embed(ex_texts))
    if dense is None:
        return sparse_pair
    return blend(dense[0], sparse_pair[0]), blend(dense[1], sparse_pair[1])


def evaluate(seeds: int = SEEDS) -> dict[tuple[str, str], float]:
    """Mean precision@10 by (method, topic); methods: keywords, then model/mode pairs."""
    papers, topics = corpus()
    vectors = embed_wordllama([paper_text(p.title, p.abstract) for p in papers])
    results: dict[tuple[str, str], list[float]] = {}
    for topic, (_, _, keywords) in TOPICS.items():
        members = [i for i, t in enumerate(topics) if t == topic]
        for seed in range(seeds):
            chosen = set(random.Random(f"{topic}/{seed}").sample(members, EXAMPLES))
            pool_ix = [i for i in range(len(papers)) if i not in chosen]
            pool = [papers[i] for i in pool_ix]
            entries = [_entry(p) for p in pool]
            relevant = np.asarray([topics[i] == topic for i in pool_ix])

            def precision(picks: Sequence[int], rel: np.ndarray = relevant) -> float:
                return float(rel[list(picks)].sum()) / AT if picks else 0.0

            results.setdefault(("keywords", topic), []).append(
                precision(keyword_top(entries, keywords))
            )
            hits = compute_hits(entries, keywords, "word")
            points: dict[int, float] = {}
            for kw in keywords:
                for pos in hits.text.get(kw, ()):
                    points[pos] = points.get(pos, 0.0) + TEXT_POINTS
                for pos in hits.title.get(kw, ()):
                    points[pos] = points.get(pos, 0.0) + TITLE_POINTS
            for model in ("wordllama", "tfidf", "blend"):
                pmat, emat = matrices(model, pool_ix, sorted(chosen), papers, vectors)
                day = Day(papers=pmat, interests=emat[:0], examples=emat, example_titles=[""] * 5)
                for mode in ("semantic", "hybrid"):
                    settings = RankingSettings(mode=mode, relative_threshold=-3)
                    reader = Reader(
                        id=1,
                        limit=AT,
                        positives=tuple(range(EXAMPLES)),
                        keyword_points=points if mode == "hybrid" else {},
                    )
                    picks = [pos for pos, _ in rank_readers(day, [reader], settings)[1]]
                    results.setdefault((f"{model} {mode}", topic), []).append(precision(picks))
    return {key: float(np.mean(values)) for key, values in results.items()}


def table(scores: dict[tuple[str, str], float]) -> str:
    topics = list(TOPICS)
    methods = list(dict.fromkeys(m for m, _ in scores))
    lines = [
        "| method | " + " | ".join(topics) + " | mean |",
        "|---" * (len(topics) + 2) + "|",
    ]
    for m in methods:
        row = [scores[(m, t)] for t in topics]
        lines.append(f"| {m} | " + " | ".join(f"{v:.2f}" for v in row) + f" | {np.mean(row):.2f} |")
    return "\n".join(lines)


def main() -> None:
    start = time.perf_counter()
    scores = evaluate()
    papers, _ = corpus()
    took = dt.timedelta(seconds=round(time.perf_counter() - start))
    print(
        f"precision@{AT}, {EXAMPLES} example papers per reader, {SEEDS} draws per topic, "
        f"{len(papers) - EXAMPLES} papers a day ({took})"
    )
    print(table(scores))


if __name__ == "__main__":
    main()
