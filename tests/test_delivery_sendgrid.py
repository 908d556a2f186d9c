"""SendGrid backend against a recording SendGrid-compatible server: batching, limits, retries."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest
from sqlalchemy.engine import Engine

from newsletter.delivery.backends import Batch, Recipient, Sender
from newsletter.delivery.backends.sendgrid import SendGridBackend, plan_requests
from newsletter.delivery.send import send_issue
from newsletter.email.render import RenderedEmail
from tests.fixtures_delivery import (
    API_KEY,
    ENV,
    FakeSendGrid,
    delivery_settings,
    recorded_view,
    seed_issue,
    seed_subscribers,
)
from tests.fixtures_email import RECORDED_DAY
from tests.httpserver import Response

BODY = RenderedEmail(
    "Digest", "<p>hi <a href='-unsubscribe_url-'>unsub</a></p>", "hi -unsubscribe_url-"
)


def batch(n: int, **kw: object) -> Batch:
    recipients = tuple(
        Recipient(
            email=f"r{i}@example.com",
            message_id=f"<m{i}@example.org>",
            substitutions={"-unsubscribe_url-": f"https://x.org/u/{i}"},
            headers={"List-Unsubscribe": f"<https://x.org/u/{i}>"},
        )
        for i in range(n)
    )
    kw.setdefault("categories", ("digest",))
    return Batch(BODY, recipients, Sender("d@example.org", "Digest"), **kw)  # type: ignore[arg-type]


def backend(sg: FakeSendGrid, sleeps: list[float] | None = None, **kw: object) -> SendGridBackend:
    return SendGridBackend(
        API_KEY,
        sg.url,
        sleep=(sleeps if sleeps is not None else []).append,
        rng=random.Random(1),
        **kw,  # type: ignore[arg-type]
    )


def test_2500_recipients_become_three_requests_of_at_most_1000() -> None:
    with FakeSendGrid() as sg:
        outcomes = backend(sg).send_batch(batch(2500))
        bodies = sg.bodies()
    assert [len(b["personalizations"]) for b in bodies] == [1000, 1000, 500]
    assert {o.status for o in outcomes.values()} == {"sent"} and len(outcomes) == 2500
    p = bodies[2]["personalizations"][499]
    assert p["to"] == [{"email": "r2499@example.com"}]
    assert p["substitutions"] == {"-unsubscribe_url-": "https://x.org/u/2499"}
    assert p["headers"] == {"List-Unsubscribe": "<https://x.org/u/2499>"}
    assert p["custom_args"] == {"message_id": "<m2499@example.org>"}  # ours only
    assert bodies[0]["categories"] == ["digest"]
    assert "mail_settings" not in bodies[0]


def test_size_and_custom_args_limits_split_or_fail_before_sending() -> None:
    b = batch(10)
    requests, failed = plan_requests(b, max_bytes=1400)
    assert not failed and len(requests) > 1
    assert sum(len(r.message_ids) for r in requests) == 10
    assert all(len(json.dumps(r.body).encode()) <= 1400 for r in requests)
    huge = Recipient("big@example.com", "<" + "x" * 10_001 + "@e>")
    requests, failed = plan_requests(Batch(BODY, (huge,), Sender("d@example.org")))
    assert requests == [] and "custom_args" in (failed[huge.message_id].error or "")
    too_many = batch(2, categories=tuple(f"c{i}" for i in range(11)))
    requests, failed = plan_requests(too_many)
    assert requests == [] and {o.status for o in failed.values()} == {"failed"}


def test_429_honours_retry_after_and_5xx_backs_off_with_jitter() -> None:
    sleeps: list[float] = []
    with FakeSendGrid() as sg:
        sg.script = [
            Response(429, "slow down", headers={"Retry-After": "7"}),
            Response(503, "busy"),
            Response(500, "oops"),
        ]
        outcomes = backend(sg, sleeps, backoff_base=1.0).send_batch(batch(3))
        assert len(sg.requests) == 4
    assert {o.status for o in outcomes.values()} == {"sent"}
    assert sleeps[0] == 7
    assert 1.0 <= sleeps[1] <= 2.0 and 2.0 <= sleeps[2] <= 4.0  # 2**attempt, half jittered


def test_permanent_4xx_is_not_retried_and_retries_run_out() -> None:
    sleeps: list[float] = []
    with FakeSendGrid() as sg:
        sg.script = [Response(400, '{"errors":[{"message":"bad"}]}')]
        out = backend(sg, sleeps).send_batch(batch(2))
        assert len(sg.requests) == 1 and sleeps == []
        assert {o.status for o in out.values()} == {"failed"}
        assert "400" in (out["<m0@example.org>"].error or "")
        sg.script = [Response(503, "down")] * 3
        out = backend(sg, sleeps, max_retries=2).send_batch(batch(1))
        assert len(sg.requests) == 4 and len(sleeps) == 2
        assert out["<m0@example.org>"].status == "retry"


def test_wrong_key_is_a_permanent_failure() -> None:
    with FakeSendGrid() as sg:
        out = SendGridBackend("SG.wrong", sg.url, sleep=lambda _s: None).send_batch(batch(1))
    assert out["<m0@example.org>"].status == "failed"


def test_header_injection_is_refused_before_any_request() -> None:
    evil = Recipient("r@example.com", "<m@e>", headers={"List-Unsubscribe": "<x>\r\nBcc: a@b.c"})
    with FakeSendGrid() as sg:
        out = backend(sg).send_batch(Batch(BODY, (evil,), Sender("d@example.org")))
        assert sg.requests == []
    assert out["<m@e>"].status == "failed"


def test_concurrency_bounds_requests_in_flight(engine: Engine, sqlite_url: str) -> None:
    seed_issue(engine)
    words = ["learning", "graph", "privacy", "model", "data", "federated", "llm", "time"]
    seed_subscribers(engine, 16, keywords=lambda i: [words[i % 8]])
    with FakeSendGrid() as sg:
        sg.block_at = {1, 2, 3}
        settings = delivery_settings(
            sqlite_url, backend="sendgrid", sendgrid_host=sg.url, concurrency=3
        )
        result: dict[str, object] = {}
        worker = threading.Thread(
            target=lambda: result.update(
                r=send_issue(engine, settings, RECORDED_DAY, view=recorded_view(), environ=ENV)
            )
        )
        worker.start()
        deadline = time.monotonic() + 20
        while sg.in_flight < 3:
            assert time.monotonic() < deadline, "three requests never in flight"
            time.sleep(0.005)
        assert sg.count == 3  # the 4th waits for a free slot
        sg.release.set()
        worker.join(20)
    assert sg.max_in_flight == 3 and sg.count == 8
    assert result["r"].sent == 16  # type: ignore[attr-defined]


@pytest.mark.parametrize("sandbox", [True, False])
def test_sandbox_switch(sandbox: bool) -> None:
    with FakeSendGrid() as sg:
        backend(sg, sandbox_mode=sandbox).send_batch(batch(1))
        body = sg.bodies()[0]
    assert body.get("mail_settings", {}).get("sandbox_mode", {}).get("enable", False) is sandbox
