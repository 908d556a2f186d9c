"""Delivery benchmark: 100,000 subscribers through the SendGrid backend vs the naive loop.

``python -m benchmarks.bench_delivery [--subscribers N] [--naive N] [--latency S]
[--concurrency N] [--prepare-processes N] [--sections] [--distinct]``

``--distinct``: every subscriber has 2–6 keywords of their own (and 0–3 categories), so most
bodies are distinct (the default: half get the global digest, half 1–5 keywords).

A local SendGrid-compatible server, in its own process (as a real provider is: it takes none
of the sender's CPU or GIL), answers every request after ``--latency`` seconds (50 ms).
The fast path is ``send_issue`` with the product's defaults: ``delivery.sendgrid_sections``
off (one body expanded per distinct selection, readers of one body share requests of up to
250 personalizations), ``--concurrency`` requests in flight (96 by default), sent in waves
(one transaction per wave, ``newsletter.delivery.waves``), the requests of a large send built
in ``--prepare-processes`` separate processes (1 by default). ``--sections`` measures the shared
body with message-level sections instead. The
naive path is what the other arXiv digests do: per recipient, compile the MJML, render the
template for that reader and make one request, sequentially (same backend class, same server).
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import random
import resource
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

from jinja2 import Template
from mjml import mjml_to_html
from pydantic import SecretStr
from sqlalchemy import insert

from newsletter.config import Settings, settings_for_tests
from newsletter.db import make_engine, upgrade
from newsletter.delivery.backends import Batch, Recipient, Sender
from newsletter.delivery.backends.sendgrid import SendGridBackend
from newsletter.delivery.send import send_issue
from newsletter.domain import IssueEntry, IssueView
from newsletter.email import tags
from newsletter.email.headers import new_message_id
from newsletter.email.loading import active_prefs
from newsletter.email.render import PLACEHOLDERS, DigestRenderer
from newsletter.email.selection import select_all
from newsletter.models import IssueRow
from subscribers.links import feedback_token, link_keys, preferences_url, unsubscribe_url
from subscribers.models import Subscriber
from tests.fixtures_email import recorded_papers
from tests.httpserver import Request, Response, TestServer

ROOT = Path(__file__).resolve().parent.parent
DAY = dt.date(2026, 4, 22)
VOCAB = [
    "learning",
    "model",
    "training",
    "time",
    "data",
    "llm",
    "network",
    "neural",
    "federated",
    "language",
    "graph",
    "robust",
    "privacy",
    "gradient",
    "inference",
    "benchmark",
    "policy",
    "optimization",
    "reinforcement",
    "sampling",
    "attention",
    "series",
    "quantum",
    "transformer",
    "causal",
    "diffusion",
    "kernel",
    "bayesian",
    "agent",
    "vision",
    "tabular",
    "clustering",
    "fairness",
    "uncertainty",
    "contrastive",
    "pruning",
    "distillation",
    "retrieval",
    "reasoning",
    "memory",
    "sparse",
    "physics",
    "medical",
    "speech",
    "adversarial",
    "generative",
    "embedding",
    "forecasting",
    "calibration",
    "scaling",
]
CATS = ("cs.LG", "cs.AI", "stat.ML", "cs.CV", "cs.CL", "math.OC")


def recorded_view(n: int = 30) -> IssueView:
    """A 30-paper day from the recorded arXiv API page (the tests' copy, in feed order)."""
    entries = [IssueEntry(p, 1.0, (), rank) for rank, p in enumerate(recorded_papers()[:n], 1)]
    return IssueView(DAY, len(entries), ("cs.LG",), tuple(entries), tuple(entries))


def seed(engine_url: str, n: int, rng: random.Random, *, distinct: bool = False) -> None:
    engine = make_engine(engine_url)
    upgrade(engine)
    now = dt.datetime.now(dt.UTC)
    rows = []
    for i in range(n):
        own = distinct or i % 2 == 1
        count = rng.randint(2, 6) if distinct else rng.randint(1, 5)
        rows.append(
            {
                "email": f"reader{i}@example.com",
                "status": "active",
                "created_at": now,
                "status_changed_at": now,
                "keywords": rng.sample(VOCAB, count) if own else [],
                "categories": rng.sample(CATS, rng.randint(0, 3)) if own else [],
                "include_summaries": True,
                "token_nonce": "",
            }
        )
    with engine.begin() as conn:
        for start in range(0, n, 5000):
            conn.execute(insert(Subscriber.__table__), rows[start : start + 5000])  # type: ignore[attr-defined]
        conn.execute(
            insert(IssueRow.__table__).values(  # type: ignore[attr-defined]
                date=DAY, categories=["cs.LG"], created_at=now, updated_at=now
            )
        )
    engine.dispose()


class FakeSendGrid:
    """A SendGrid-compatible Mail Send endpoint: 202 + X-Message-Id after ``latency`` seconds,
    HTTP/1.1 (keep-alive when the client asks for it); counts the requests it answered and the
    bytes of their bodies."""

    def __init__(self, latency: float) -> None:
        self.server = TestServer(record=False)
        self.latency = latency
        self.answered = 0
        self.body_bytes = 0
        self._lock = threading.Lock()
        self.server.routes[("POST", "/v3/mail/send")] = self.handle

    def handle(self, req: Request) -> Response:
        time.sleep(self.latency)  # the provider's answer time
        with self._lock:
            self.answered += 1
            self.body_bytes += len(req.body)
            n = self.answered
        return Response(202, b"", headers={"X-Message-Id": f"sg-{n}"})


def _serve(latency: float, conn: Connection) -> None:
    """The provider's process: serve until told to stop; answer "count" with the requests so far
    and the bytes of their bodies."""
    fake = FakeSendGrid(latency)
    with fake.server:
        conn.send(fake.server.url)
        while conn.recv() == "count":
            conn.send((fake.answered, fake.body_bytes))


class Provider:
    """The fake SendGrid in its own process, as a real provider would be: the sender's GIL and
    CPU are the sender's alone. ``requests()`` asks it how many requests it has answered and
    how many bytes of request bodies it has read."""

    def __init__(self, latency: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(latency, child), daemon=True)
        self.url = ""

    def __enter__(self) -> Provider:
        self._proc.start()
        self.url = self._conn.recv()
        return self

    def requests(self) -> tuple[int, int]:
        self._conn.send("count")
        answered, body_bytes = self._conn.recv()
        return int(answered), int(body_bytes)

    def __exit__(self, *_exc: object) -> None:
        self._conn.send("stop")
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()


class PerRecipientMjml(DigestRenderer):
    """The naive renderer: MJML compiled for every e-mail, as a plain loop over readers does
    (the product compiles it once per process)."""

    def _html(self) -> Template:
        path = self.template_dir / "digest.mjml"
        result = mjml_to_html(path.read_text(encoding="utf-8"))
        return self._env.from_string(result.html)


def naive(settings: Settings, view: IssueView, url: str, count: int, engine_url: str) -> float:
    """The other digests' way: per recipient, MJML compiled, the template rendered and one
    request, one after the other (same backend class, same server)."""
    engine = make_engine(engine_url)
    prefs = active_prefs(engine)[:count]
    keys = link_keys(engine, [p.id for p in prefs])
    selections = select_all(view, prefs, settings)
    renderer = PerRecipientMjml(settings)
    backend = SendGridBackend("SG.bench", url, max_retries=0)
    sender = Sender(settings.email.from_email, settings.email.from_name)
    start = time.perf_counter()
    for p in prefs:
        sel = selections.get(p.id)
        if sel is None:
            continue
        body = renderer.render_direct(view, sel, {})
        rcpt = Recipient(
            p.email,
            new_message_id(settings, DAY, p.id),
            {
                PLACEHOLDERS["unsubscribe_url"]: unsubscribe_url(settings, p.id, keys[p.id]),
                PLACEHOLDERS["preferences_url"]: preferences_url(settings, p.id, keys[p.id]),
                tags.FEEDBACK: feedback_token(settings, p.id, keys[p.id]),
            },
        )
        backend.send_batch(Batch(body, (rcpt,), sender))
    elapsed = time.perf_counter() - start
    engine.dispose()
    return len(selections) / elapsed


def _children_cpu() -> float:
    """CPU seconds of the ended child processes (the preparing processes, once a send ends)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--subscribers", type=int, default=100_000)
    ap.add_argument("--naive", type=int, default=1_000)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="delivery.concurrency (default: the product's)",
    )
    ap.add_argument(
        "--prepare-processes",
        type=int,
        default=None,
        help="delivery.prepare_processes (default: the product's)",
    )
    ap.add_argument(
        "--sections",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="delivery.sendgrid_sections (default off, as in the product)",
    )
    ap.add_argument(
        "--distinct",
        action="store_true",
        help="every subscriber with 2-6 keywords of their own (most bodies distinct)",
    )
    args = ap.parse_args(argv)
    rng = random.Random(42)
    view = recorded_view()
    with tempfile.TemporaryDirectory() as tmp, Provider(args.latency) as server:
        url = f"sqlite:///{tmp}/bench.db"
        t0 = time.perf_counter()
        seed(url, args.subscribers, rng, distinct=args.distinct)
        print(f"seeded {args.subscribers:,} subscribers in {time.perf_counter() - t0:.1f} s")
        settings = settings_for_tests(
            database_url=url,
            categories=["cs.LG"],
            base_url="https://digest.example.org",
            delivery={
                "backend": "sendgrid",
                "sendgrid_host": server.url,
                "sendgrid_sections": args.sections,
                **({} if args.concurrency is None else {"concurrency": args.concurrency}),
                **(
                    {}
                    if args.prepare_processes is None
                    else {"prepare_processes": args.prepare_processes}
                ),
            },
        ).model_copy(update={"secret_key": SecretStr("bench-secret-key-0123456789abcdef")})
        engine = make_engine(url)
        cpu0 = time.process_time()
        children0 = _children_cpu()
        t0 = time.perf_counter()
        report = send_issue(
            engine, settings, DAY, view=view, environ={"SENDGRID_API_KEY": "SG.bench"}
        )
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        children = _children_cpu() - children0
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        engine.dispose()
        fast_rate = report.sent / wall
        print(
            f"\nbatched ({settings.delivery.concurrency} requests in flight, "
            f"{args.latency * 1000:.0f} ms each):"
        )
        for stage, seconds in report.timings.items():
            print(f"  {stage:<8} {seconds:8.2f} s")
        print(f"  total    {wall:8.2f} s  for {report.sent:,} handed over ({fast_rate:,.0f}/s)")
        print(
            f"  CPU time of the sending process {cpu:.1f} s, "
            f"of its preparing processes {children:.1f} s (2 cores)"
        )
        print(
            f"  no match {report.no_match:,}; failed {report.failed}; "
            f"unknown {report.unknown}; deferred {report.deferred}"
        )
        answered, body_bytes = server.requests()
        print(
            f"  requests {report.requests:,} (the provider answered {answered:,}); "
            f"distinct bodies {report.distinct_bodies:,}; waves {report.waves:,}"
        )
        print(
            f"  request bodies {body_bytes / 1e6:,.1f} MB, "
            f"{body_bytes / max(answered, 1) / 1000:,.1f} kB per request"
        )
        print(f"  peak memory (max RSS) {peak_mb:,.0f} MB")
        slow_rate = naive(settings, view, server.url, args.naive, url)
        print(
            f"\nnaive (MJML compiled + rendered + 1 request per recipient, sequential), "
            f"first {args.naive:,}:"
        )
        print(f"  {slow_rate:,.1f} recipients/s")
        print(f"\nratio batched / naive: {fast_rate / slow_rate:,.0f}x")
        ok = wall < 60 and fast_rate / slow_rate >= 100 and peak_mb < 500
        print(f"targets (< 60 s, >= 100x, < 500 MB): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
