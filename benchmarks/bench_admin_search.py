"""The dashboard's subscriber search at 10,000 and 100,000 subscribers, against the naive way.

``python -m benchmarks.bench_admin_search [--rows N ...] [--repeat N] [--pg ADMIN_URL]``

Fast path: ``newsletter.web.admin.search.search`` (filters in SQL, one page of rows read).
Naive path, same run, same database: every subscriber loaded with
``subscribers.service.list_subscribers`` and filtered in Python, which is what a dashboard built
on the CLI's listing would do. Each search finds one subscriber by an address fragment; a
keyword search and a status page are timed too. With ``--pg`` a throw-away PostgreSQL database
is created (and dropped) through that server's admin URL.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

from sqlmodel import Session

from benchmarks.scratch import scratch_database
from benchmarks.subscribers_import import make_csv
from newsletter.config import settings_for_tests
from newsletter.db import make_engine, session_scope, upgrade
from newsletter.web.admin import search
from subscribers import csvio, service


def _best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def measure(session: Session, size: int, repeat: int) -> None:
    """Time the searches on the first ``size`` subscribers and print one line."""
    target = f"reader{size // 2}@"
    fast, page = _best(lambda: search.search(session, search.Query.parse(target)), repeat)
    assert isinstance(page, search.Page) and page.total == 1, page
    kw, kw_page = _best(
        lambda: search.search(session, search.Query.parse(keyword="retrieval")), repeat
    )
    st, _ = _best(
        lambda: search.search(session, search.Query.parse(status="pending", page="3")), repeat
    )

    def naive() -> list[object]:
        return [s for s in service.list_subscribers(session) if target in s.email]

    slow, found = _best(naive, max(1, repeat // 3))
    assert isinstance(found, list) and len(found) == 1
    total = kw_page.total if isinstance(kw_page, search.Page) else 0
    print(
        f"{size:>7,} subscribers: address fragment {fast * 1000:.1f} ms (1 found), "
        f"keyword {kw * 1000:.1f} ms ({total:,} found, first page), "
        f"status page 3 {st * 1000:.1f} ms; naive load-and-filter {slow * 1000:.0f} ms "
        f"({slow / fast:.0f}x)"
    )


def run(url: str, sizes: list[int], repeat: int) -> None:
    settings = settings_for_tests(database_url=url, categories=["cs.AI", "cs.CL", "cs.LG"])
    engine = make_engine(url)
    upgrade(engine)
    loaded = 0
    for size in sorted(sizes):
        with session_scope(engine) as session:
            csvio.import_csv(
                session,
                settings=settings,
                source=io.StringIO(make_csv(size - loaded, offset=loaded)),
            )
        loaded = size
        with Session(engine) as session:
            measure(session, size, repeat)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pg", default=None, help="PostgreSQL admin URL, e.g. .../postgres")
    args = parser.parse_args()
    with scratch_database(args.pg) as url:
        run(url, args.rows, args.repeat)


if __name__ == "__main__":
    main()
