"""Personal ranking at newsletter scale: 1,000 papers embedded, then 100,000 readers (each
with interests and five example papers) scored against them, next to the naive way (a
Python loop over readers and papers, timed on the first 500 readers and extrapolated).

Run: ``python -m benchmarks.bench_relevance_scale`` (two BLAS threads, as on a 2-core box).
Prints wall times and peak memory; README.md and docs/relevance.md carry the figures.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")

import random  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_relevance import corpus  # noqa: E402
from newsletter.config import RankingSettings  # noqa: E402
from newsletter.relevance.embed import TfidfSpace, embed_wordllama, normalise, paper_text  # noqa: E402
from newsletter.relevance.score import Day, Reader, rank_readers  # noqa: E402

PAPERS = 1_000
READERS = 100_000
EXAMPLE_POOL = 20_000  # distinct example papers among all readers
EXAMPLES = 5
NAIVE_READERS = 500


def texts() -> list[str]:
    """1,000 paper texts: the recorded papers, cycled, each made distinct by its number."""
    papers, _ = corpus()
    return [
        f"{paper_text(p.title, p.abstract)} ({i})"
        for i, p in zip(range(PAPERS), (papers * (PAPERS // len(papers) + 1)), strict=False)
    ]


def naive(day: Day, readers: list[Reader], limit: int) -> list[list[int]]:
    """Per reader, per paper: cosine to the interests and to each example, in Python."""
    out = []
    for r in readers:
        scores = []
        for j in range(day.papers.shape[0]):
            p = day.papers[j]
            s = float(day.interests[r.interest] @ p)
            ex = [float(day.examples[e] @ p) for e in r.positives]
            scores.append((s + 0.5 * max(ex) + 0.5 * sum(ex) / len(ex)) / 2)
        out.append(sorted(range(len(scores)), key=lambda j: -scores[j])[:limit])
    return out


def main() -> None:
    corpus_texts = texts()
    embed_wordllama(["warm up"])  # loading the packaged weights is not embedding
    start, cpu = time.perf_counter(), time.process_time()
    papers = embed_wordllama(corpus_texts)
    t_embed, c_embed = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    TfidfSpace(corpus_texts).embed(corpus_texts)
    t_tfidf = time.perf_counter() - start
    print(
        f"embed {PAPERS} papers: WordLlama {t_embed:.2f} s (CPU {c_embed:.2f} s), "
        f"tf-idf fit+transform {t_tfidf:.2f} s"
    )

    rng = np.random.default_rng(13)
    # Readers' vectors: mixtures of paper vectors plus noise (a realistic spread of topics).
    interests = normalise(
        papers[rng.integers(0, PAPERS, READERS)] + 0.05 * rng.standard_normal((READERS, 256))
    )
    examples = normalise(
        papers[rng.integers(0, PAPERS, EXAMPLE_POOL)]
        + 0.05 * rng.standard_normal((EXAMPLE_POOL, 256))
    ).astype(np.float32)
    interests = interests.astype(np.float32)
    day = Day(
        papers=papers, interests=interests, examples=examples, example_titles=[""] * EXAMPLE_POOL
    )
    pick = random.Random(13)
    readers = [
        Reader(
            id=i,
            limit=10,
            interest=i,
            positives=tuple(pick.sample(range(EXAMPLE_POOL), EXAMPLES)),
        )
        for i in range(READERS)
    ]
    settings = RankingSettings()
    start, cpu = time.perf_counter(), time.process_time()
    picks = rank_readers(day, readers, settings)
    t_score, c_score = time.perf_counter() - start, time.process_time() - cpu
    del picks
    # Memory in a second run: tracing every allocation slows it down too much to time it.
    tracemalloc.start()
    picks = rank_readers(day, readers, settings)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(picks) == READERS and all(len(v) == 10 for v in picks.values())
    print(
        f"score {READERS:,} readers x {PAPERS:,} papers (interests + {EXAMPLES} examples each): "
        f"{t_score:.2f} s (CPU {c_score:.2f} s), peak traced memory {peak / 2**20:.0f} MiB "
        f"(inputs {(interests.nbytes + examples.nbytes + papers.nbytes) / 2**20:.0f} MiB), "
        f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    start = time.perf_counter()
    naive(day, readers[:NAIVE_READERS], 10)
    t_naive = (time.perf_counter() - start) * READERS / NAIVE_READERS
    print(
        f"machine load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        f"naive Python loop: {t_naive:.0f} s for {READERS:,} readers "
        f"(extrapolated from {NAIVE_READERS}); {t_naive / t_score:.0f}x slower"
    )


if __name__ == "__main__":
    main()
