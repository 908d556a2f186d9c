"""`python -m benchmarks`: run every benchmark in turn and print its figures."""

from __future__ import annotations

import runpy
import sys

BENCHMARKS = (
    "benchmarks.bench_summaries",
    "benchmarks.bench_email_selection",
    "benchmarks.subscribers_import",
    "benchmarks.bench_admin_search",
    "benchmarks.bench_delivery",
    "benchmarks.bench_webhook",
    "benchmarks.bench_relevance",
)

if __name__ == "__main__":
    wanted = sys.argv[1:] or BENCHMARKS
    for name in wanted:
        print(f"\n=== {name} ===", flush=True)
        sys.argv = [name]
        runpy.run_module(name, run_name="__main__")
