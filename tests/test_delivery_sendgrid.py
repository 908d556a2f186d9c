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
from newsletter.email import tags
from newsletter.email.render import RenderedEmail
from tests.fixtures_delivery import (
    API_KEY,
    ENV,
    FakeSendGrid,
    delivery_settings,
    recorded_view,
    seed_issue,
    seed_subscribers,
    sendgrid_delivers,
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


SECTIONED = RenderedEmail(
    "-subject-",
    "<div>-cards-</div><a href='-unsubscribe_url-'>u</a>",
    "-tcards-\n-unsubscribe_url-",
    {
        "-h0p0-": "<p>card 0</p>",
        "-h1p0-": "<p>card 1</p>",
        "-t0p0-": "card 0\n",
        "-h2p0-": "<p>2</p>",
    },
)


def _sectioned(cards: list[str]) -> Batch:
    recipients = tuple(
        Recipient(
            email=f"r{i}@example.com",
            message_id=f"<m{i}@example.org>",
            substitutions={
                "-subject-": f"Digest {i}",
                "-cards-": cards[i],
                "-tcards-": "-t0p0-" if "h0" in cards[i] else "",
                "-unsubscribe_url-": f"https://x.org/u/{i}",
            },
        )
        for i in range(len(cards))
    )
    return Batch(SECTIONED, recipients, Sender("d@example.org"))


def test_sections_sent_are_only_those_the_request_uses_and_count_in_the_size() -> None:
    b = _sectioned(["-h0p0-", "-h1p0--h0p0-", ""])
    (req,), failed = plan_requests(b)
    assert not failed and set(req.body["sections"]) == {"-h0p0-", "-h1p0-", "-t0p0-"}
    assert [p["substitutions"]["-subject-"] for p in req.body["personalizations"]] == [
        "Digest 0",
        "Digest 1",
        "Digest 2",
    ]
    # The size limit counts the sections each request brings.
    requests, failed = plan_requests(b, max_bytes=len(json.dumps(req.body)) - 5)
    assert not failed and len(requests) == 2
    assert all(len(json.dumps(r.body).encode()) <= len(json.dumps(req.body)) - 5 for r in requests)
    # Off (delivery.sendgrid_sections = false): a sectioned body is refused, nothing is sent.
    requests, failed = plan_requests(b, sections=False)
    assert requests == [] and "sendgrid_sections" in (failed["<m0@example.org>"].error or "")


def test_a_recipient_whose_substitutions_break_the_limit_fails_alone() -> None:
    b = _sectioned(["-h0p0-", "-h1p0-" * 2000])
    requests, failed = plan_requests(b)
    assert set(failed) == {"<m1@example.org>"} and "10000" in (
        failed["<m1@example.org>"].error or ""
    ).replace(",", "")
    assert [r.message_ids for r in requests] == [("<m0@example.org>",)]


def test_send_issue_expands_the_body_of_a_reader_over_the_substitutions_limit(
    engine: Engine, database_url: str
) -> None:
    """A reader whose substitutions would break the limit gets a body expanded beforehand
    (still delivered, in full); the others share the sectioned body."""
    seed_issue(engine)
    seed_subscribers(engine, 3, keywords=lambda i: ["learning", "model"] if i == 0 else [])
    with FakeSendGrid() as sg:
        settings = delivery_settings(database_url, backend="sendgrid", sendgrid_host=sg.url)
        chosen = SendGridBackend(API_KEY, sg.url, sections=True, max_retries=0)
        chosen.substitution_limit = 2500  # the digest readers' 5 cards fit, 25 cards do not
        report = send_issue(engine, settings, RECORDED_DAY, view=recorded_view(), backend=chosen)
        bodies = sg.bodies()
    assert report.sent == 3 and report.failed == 0 and report.distinct_bodies == 2
    (shared,) = [b for b in bodies if "sections" in b]
    (expanded,) = [b for b in bodies if "sections" not in b]
    assert [p["to"][0]["email"] for p in expanded["personalizations"]] == ["reader0@example.com"]
    assert set(expanded["personalizations"][0]["substitutions"]) == {
        "-unsubscribe_url-",
        "-preferences_url-",
        "-feedback_token-",  # the reader's "more/fewer like this" links in the expanded cards
    }
    assert len(shared["personalizations"]) == 2
    _, html, text = sendgrid_delivers(expanded, "reader0@example.com")
    assert text.count("Why you got it: ") > 10 and not tags.keys_in(html + text)
