"""Summaries benchmark: 30 papers against a 200 ms model with 8 workers, then a cached rerun.

Run: ``python -m benchmarks.bench_summaries``. Compares the concurrent wall time with the bound
1.2 × ceil(30/8) × 0.2 s and with one worker (the naive sequential way), and shows that the
rerun makes zero model calls.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

from newsletter.config import Settings, settings_for_tests
from newsletter.db import make_engine, upgrade
from newsletter.summaries import SummaryRun, summarise_papers
from tests.fixtures_summaries import ENV, FakeOpenAI, ai_section, make_paper
from tests.httpserver import TestServer

PAPERS = 30
WORKERS = 8
LATENCY = 0.2


def _timed(settings: Settings, database_url: str) -> tuple[float, SummaryRun]:
    engine = make_engine(database_url)
    papers = [make_paper(i) for i in range(PAPERS)]
    start = time.perf_counter()
    run = summarise_papers(engine, settings, papers, environ=ENV)
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed, run


def _database(directory: Path, name: str) -> str:
    url = f"sqlite:///{directory / name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def main() -> None:
    bound = 1.2 * math.ceil(PAPERS / WORKERS) * LATENCY
    with TestServer() as server, tempfile.TemporaryDirectory() as tmp:
        fake = FakeOpenAI(server, latency=LATENCY)
        cold_db = _database(Path(tmp), "cold.db")
        concurrent_db = _database(Path(tmp), "concurrent.db")
        sequential_db = _database(Path(tmp), "sequential.db")

        def settings(workers: int, url: str) -> Settings:
            section = ai_section(fake.base_url, max_workers=workers, max_papers_to_summarize=100)
            return settings_for_tests(database_url=url, ai_summary=section)

        # The first run in a process also pays one-off costs (lazy imports and set-up inside the
        # openai client); it is shown apart, and the bound is checked on a run after it.
        cold, _ = _timed(settings(WORKERS, cold_db), cold_db)
        wall, first = _timed(settings(WORKERS, concurrent_db), concurrent_db)
        rerun_wall, rerun = _timed(settings(WORKERS, concurrent_db), concurrent_db)
        sequential, seq = _timed(settings(1, sequential_db), sequential_db)

    print(f"summaries benchmark: {PAPERS} papers, {LATENCY * 1000:.0f} ms per call")
    print(f"  {WORKERS} workers:  {wall:.3f} s  ({first.calls} calls, {len(first.summaries)} ok)")
    verdict = "within" if wall <= bound else "OVER"
    print(f"  bound:      {bound:.3f} s  (1.2 x ceil({PAPERS}/{WORKERS}) x {LATENCY} s): {verdict}")
    print(f"  cold start: {cold:.3f} s  (the same run as the first one in a fresh process)")
    print(f"  rerun:      {rerun_wall:.3f} s  ({rerun.calls} model calls, {rerun.cache_hits} hits)")
    print(f"  sequential: {sequential:.3f} s  ({seq.calls} calls; 1 worker, the naive way)")
    print(f"  speed-up:   {sequential / wall:.1f}x")


if __name__ == "__main__":
    main()
