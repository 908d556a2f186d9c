"""Selection and rendering for 100,000 subscribers on a recorded 50-paper day.

Run: python benchmarks/bench_email_selection.py. Prints wall time and peak memory of
``select_all`` (hits once per paper) next to the naive way (a matcher per subscriber, on the
first 2,000 subscribers, extrapolated), and the time to render every distinct body.
"""

from __future__ import annotations

import random
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from newsletter.config import settings_for_tests  # noqa: E402
from newsletter.email.render import DigestRenderer  # noqa: E402
from newsletter.email.selection import SubscriberPrefs, select_all  # noqa: E402
from newsletter.matching import matcher  # noqa: E402
from tests.fixtures_email import make_view, recorded_papers  # noqa: E402

VOCAB = [
    "LLM",
    "reinforcement learning",
    "diffusion",
    "graph",
    "attention",
    "transformer",
    "benchmark",
    "agent",
    "federated",
    "privacy",
    "robustness",
    "fairness",
    "causal",
    "optimization",
    "kernel",
    "Bayesian",
    "uncertainty",
    "calibration",
    "reasoning",
    "vision",
    "language model",
    "policy",
    "reward",
    "distillation",
    "quantization",
    "pruning",
    "sparse",
    "contrastive",
    "self-supervised",
    "generative",
    "time series",
    "forecasting",
    "anomaly",
    "clustering",
    "embedding",
    "retrieval",
    "RAG",
    "alignment",
    "safety",
    "interpretability",
    "explainability",
    "GNN",
    "molecule",
    "protein",
    "physics",
    "PDE",
    "operator",
    "neural ODE",
    "scaling",
    "inference",
]
CATS = ["cs.LG", "cs.AI", "cs.CL", "stat.ML", "cs.CV"]


def subscribers(n: int) -> list[SubscriberPrefs]:
    rnd = random.Random(42)
    out = []
    for i in range(1, n + 1):
        kws = tuple(rnd.sample(VOCAB, rnd.randint(1, 5))) if i % 2 else ()
        cats = tuple(rnd.sample(CATS, rnd.randint(0, 3)))
        out.append(SubscriberPrefs(i, f"s{i}@example.org", kws, cats, None, True))
    return out


def naive(view, subs, settings):  # type: ignore[no-untyped-def]
    """What a per-subscriber loop does: a matcher per subscriber over every paper."""
    result = {}
    for s in subs:
        m = matcher(s.keywords, settings.keyword_match)
        scored = []
        for pos, e in enumerate(view.pool):
            hits = m.find(f"{e.paper.title} {e.paper.abstract}")
            if hits and (not s.categories or set(s.categories) & set(e.paper.categories)):
                scored.append((-(len(hits) + 0.5 * len(m.find(e.paper.title))), pos, e))
        result[s.id] = [e for *_, e in sorted(scored, key=lambda t: t[:2])][: settings.max_papers]
    return result


def main() -> None:
    settings = settings_for_tests()
    view = make_view(recorded_papers())
    subs = subscribers(100_000)
    tracemalloc.start()
    t0 = time.perf_counter()
    selections = select_all(view, subs, settings)
    t_select = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    keyed = subs[:2000:2]
    t0 = time.perf_counter()
    naive(view, [s for s in subs[:2000] if s.keywords], settings)
    t_naive = (time.perf_counter() - t0) / len(keyed) * 50_000
    distinct = {sel.key: sel for sel in selections.values()}
    renderer = DigestRenderer(settings)
    t0 = time.perf_counter()
    for sel in distinct.values():
        renderer.render(view, sel, {})
    t_render = time.perf_counter() - t0
    print(f"subscribers: {len(subs):,}; with an e-mail: {len(selections):,}")
    print(f"select_all: {t_select:.2f} s, peak traced memory {peak / 2**20:.0f} MiB")
    print(
        f"naive per-subscriber matching (50,000 keyword subscribers, extrapolated): "
        f"{t_naive:.1f} s  -> {t_naive / t_select:.0f}x slower"
    )
    print(
        f"distinct bodies: {len(distinct):,}; rendered in {t_render:.2f} s "
        f"({t_render / len(distinct) * 1000:.2f} ms each)"
    )


if __name__ == "__main__":
    main()
