"""CSV import of 100,000 subscribers (bulk, chunked INSERTs) against one INSERT per row.

Run: python -m benchmarks.subscribers_import [--rows N] [--naive-rows N] [--pg ADMIN_URL]
Prints wall time and rows/s for both on the same machine in the same run. With ``--pg`` the run
uses a throw-away database created (and dropped) through that server's admin URL.
"""

from __future__ import annotations

import argparse
import io
import resource
import time

from sqlmodel import Session, func, select

from benchmarks.scratch import scratch_database
from newsletter.config import settings_for_tests
from newsletter.db import make_engine, session_scope, upgrade
from subscribers import csvio, service
from subscribers.models import Subscriber


def make_csv(rows: int, offset: int = 0) -> str:
    vocab = ["llm", "diffusion", "graph neural networks", "rl", "agents", "retrieval", "vision"]
    out = io.StringIO()
    out.write("email,keywords,categories,status\n")
    for i in range(offset, offset + rows):
        kws = ";".join(vocab[(i + k) % len(vocab)] for k in range(i % 4))
        cats = ["", "cs.LG", "cs.AI;cs.CL"][i % 3]
        out.write(
            f"reader{i}@example{i % 97}.org,{kws},{cats},{'pending' if i % 10 == 0 else ''}\n"
        )
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--naive-rows", type=int, default=2_000)
    parser.add_argument("--pg", default=None, help="PostgreSQL admin URL, e.g. .../postgres")
    args = parser.parse_args()
    with scratch_database(args.pg) as url:
        run(args, url)


def run(args: argparse.Namespace, url: str) -> None:
    settings = settings_for_tests(database_url=url, categories=["cs.AI", "cs.CL", "cs.LG"])
    engine = make_engine(url)
    upgrade(engine)
    csv_text = make_csv(args.rows)
    t0 = time.perf_counter()
    with session_scope(engine) as session:
        report = csvio.import_csv(session, settings=settings, source=io.StringIO(csv_text))
    bulk = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"bulk import: {report.imported} rows in {bulk:.2f} s "
        f"({report.imported / bulk:,.0f} rows/s), peak RSS {peak:.0f} MB"
    )
    t0 = time.perf_counter()
    with session_scope(engine) as session:
        again = csvio.import_csv(session, settings=settings, source=io.StringIO(csv_text))
    print(f"re-import (all present): {again.existing} skipped in {time.perf_counter() - t0:.2f} s")

    naive_text = make_csv(args.naive_rows, offset=args.rows)
    lines = naive_text.splitlines()[1:]
    t0 = time.perf_counter()
    for line in lines:  # the naive way: one add + commit per row
        email, kws, cats, status = line.split(",")
        with session_scope(engine) as session:
            service.add(
                session,
                settings=settings,
                email=email,
                keywords=kws.split(";"),
                categories=[c for c in cats.split(";") if c],
                active=status != "pending",
            )
    naive = time.perf_counter() - t0
    print(f"naive import: {len(lines)} rows in {naive:.2f} s ({len(lines) / naive:,.0f} rows/s)")
    print(f"speed-up: {(report.imported / bulk) / (len(lines) / naive):.0f}x")
    with Session(engine) as s:
        total = s.exec(select(func.count()).select_from(Subscriber)).one()
    print(f"subscribers in database: {total}")
    engine.dispose()


if __name__ == "__main__":
    main()
