"""Issue 10's attacks, each replayed against the app: links bound to a person, signups that
change nothing stored, limits that lock nobody out, headers on every answer."""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from pydantic import SecretStr
from sqlmodel import Session, select

from newsletter.config import ConfigError, Settings
from newsletter.db import make_engine
from newsletter.web.app import create_app
from newsletter.web.redact import RedactTokens
from subscribers import service
from subscribers.models import SignupRequest, Subscriber
from tests.subscriber_helpers import (
    SECRET,
    csrf_of,
    drain,
    link_in,
    make_client,
    outbox,
    signup,
    with_secret,
)

pytest_plugins = ["tests.fixtures_subscribers"]
LINK = re.compile(r"/(confirm|preferences|unsubscribe|export|erase)/[A-Za-z0-9_.\-%]+")
ADMIN_TOKEN = "adm-Qx7vLp2mZr9sKd4wTn8yBh3cR5tY1uI6"


def _subs(settings: Settings) -> list[Subscriber]:
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        rows = list(s.exec(select(Subscriber).order_by(Subscriber.id)).all())  # type: ignore[arg-type]
    engine.dispose()
    return rows


def _links(html: str) -> list[str]:
    return [m.group(0) for m in LINK.finditer(html)]


def _press(client: TestClient, path: str, **data: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, (path, page.text)
    done = client.post(path, data={"csrf_token": csrf_of(page.text), **data})
    assert done.status_code == 200, (path, done.text)
    return done.text


def _one_click(client: TestClient, path: str) -> int:
    return client.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    ).status_code


# --- 1. links bound to a person --------------------------------------------------------------


def test_the_takeover_sequence_fails_on_both_databases(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    """Used confirmation link -> preferences -> erase -> the victim signs up: every link the
    attacker gathered is dead, for the victim's row and for anyone else's."""
    settings = with_secret(make_settings(database_url=database_url))
    with make_client(settings) as attacker:
        signup(attacker, "attacker@example.org")
        confirm = link_in(outbox(settings)[-1], "confirm")
        first = _press(attacker, confirm)
        gathered = _links(first)  # the owner's own first confirmation gives their links
        assert any(p.startswith("/preferences/") for p in gathered)
        # A used confirmation link hands out nothing any more.
        again = attacker.get(confirm)
        assert again.status_code == 200 and "already" in again.text
        assert _links(again.text) == [confirm] or _links(again.text) == []
        prefs = next(p for p in gathered if p.startswith("/preferences/"))
        page = attacker.get(prefs).text
        gathered += [confirm] + _links(page)
        erase = next(p for p in gathered if p.startswith("/erase/"))
        [old_id] = [s.id for s in _subs(settings)]
        _press(attacker, erase)
        assert _subs(settings) == []
        with make_client(settings) as victim:
            signup(victim, "attacker@example.org".replace("attacker", "victim"))
            _press(victim, link_in(outbox(settings)[-1], "confirm"))
            signup(victim, "attacker@example.org")  # even the same address comes back
            _press(victim, link_in(outbox(settings)[-1], "confirm"))
        rows = _subs(settings)
        assert all(r.id is not None and r.id > (old_id or 0) for r in rows)  # never re-used
        for path in sorted(set(gathered)):
            r = attacker.get(path)
            assert r.status_code == 404 and "This link does not work" in r.text, path
            assert _one_click(attacker, path) in (403, 404, 405), path  # CSRF or dead link
    assert [r.status for r in _subs(settings)] == ["active", "active"]


def test_a_used_confirmation_link_gives_no_links(
    client: TestClient, web_settings: Settings
) -> None:
    signup(client, "reader@example.org")
    path = link_in(outbox(web_settings)[-1], "confirm")
    _press(client, path)
    for answer in (
        client.get(path),
        client.post(path, data={"csrf_token": csrf_of(client.get("/").text)}),
    ):
        assert answer.status_code == 200 and "already" in answer.text
        assert not [p for p in _links(answer.text) if not p.startswith("/confirm/")]


def _dated_token(purpose: str, payload: dict[str, object], age: dt.timedelta) -> str:
    when = int(time.time() - age.total_seconds())

    class Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return when

    return URLSafeTimedSerializer(SECRET, salt=f"newsletter.{purpose}", signer=Then).dumps(payload)


def _active(client: TestClient, settings: Settings, email: str) -> Subscriber:
    signup(client, email)
    _press(client, link_in(outbox(settings)[-1], "confirm"))
    return next(s for s in _subs(settings) if s.email == email)


def test_every_link_expires_and_one_click_outlives_sixty_days(
    client: TestClient, web_settings: Settings
) -> None:
    sub = _active(client, web_settings, "reader@example.org")
    mine = {"s": sub.id, "k": sub.link_key}
    days = dt.timedelta(days=1)
    assert _one_click(client, f"/unsubscribe/{_dated_token('unsubscribe', mine, 89 * days)}") == 200
    assert _subs(web_settings)[0].status == "unsubscribed"
    for purpose, age in (
        ("unsubscribe", 91 * days),
        ("preferences", 91 * days),
        ("export", 3 * days),
        ("erase", 3 * days),
    ):
        r = client.get(f"/{purpose}/{_dated_token(purpose, mine, age)}")
        assert r.status_code == 404 and "expired" in r.text, purpose
    assert client.get(f"/preferences/{_dated_token('preferences', mine, 89 * days)}").is_success


def test_links_from_before_link_keys_can_only_unsubscribe(
    client: TestClient, web_settings: Settings
) -> None:
    sub = _active(client, web_settings, "reader@example.org")
    engine = make_engine(web_settings.database_url)
    with Session(engine) as s:  # a row from before this release: created long ago
        row = s.get(Subscriber, sub.id)
        assert row is not None
        row.created_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        s.add(row)
        s.commit()
    engine.dispose()
    legacy = {"s": sub.id}
    assert (
        client.get(
            f"/preferences/{_dated_token('preferences', legacy, dt.timedelta())}"
        ).status_code
        == 404
    )
    path = f"/unsubscribe/{_dated_token('unsubscribe', legacy, dt.timedelta(days=2))}"
    page = client.get(path)
    assert page.status_code == 200 and not _links(page.text.replace(path, ""))
    assert _one_click(client, path) == 200
    assert _subs(web_settings)[0].status == "unsubscribed"
    r = client.post(path, data={"csrf_token": csrf_of(page.text), "action": "resubscribe"})
    assert r.status_code == 404 and _subs(web_settings)[0].status == "unsubscribed"
    # Older than the row (an id given out again before this release): refused.
    too_old = _dated_token("unsubscribe", legacy, dt.timedelta(days=31))
    assert client.get(f"/unsubscribe/{too_old}").status_code == 404


def test_tokens_are_redacted_in_log_records() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/unsubscribe/eyJzIjo.abc.def?x=1", "1.1", 200),
        None,
    )
    assert RedactTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "GET /unsubscribe/[token]?x=1 HTTP/1.1" 200'


# --- 4. one mailbox, one subscriber ------------------------------------------------------------


def test_case_variants_are_one_subscriber_and_idn_is_encoded(
    client: TestClient, web_settings: Settings
) -> None:
    for email in ("Case.Person@Example.ORG", "case.person@example.org", "CASE.PERSON@EXAMPLE.ORG"):
        assert signup(client, email).status_code == 200
    [row] = _subs(web_settings)
    assert (row.email, row.email_key) == ("Case.Person@example.org", "case.person@example.org")
    assert signup(client, "test@bücher.de").status_code == 200
    raw = sorted(
        Path(web_settings.delivery.outbox_dir).glob("*.eml"), key=lambda p: p.stat().st_mtime_ns
    )
    to = message_from_bytes(raw[-1].read_bytes())["To"]
    assert to == "test@xn--bcher-kva.de" and "=?" not in to  # a plain, valid address
    assert _subs(web_settings)[-1].email == "test@xn--bcher-kva.de"
    r = signup(client, "tést@example.org")
    assert r.status_code == 400 and "non-ASCII characters before the @" in r.text


# --- 6. a signup for a known address changes nothing stored ------------------------------------


def test_a_strangers_signup_changes_nothing_and_waits_for_the_owner(
    client: TestClient, web_settings: Settings
) -> None:
    signup(client, "owner@example.org", keywords="graphs", categories=["cs.LG"])
    owners_link = link_in(outbox(web_settings)[-1], "confirm")
    before = _subs(web_settings)[0]
    with make_client(web_settings, client=("198.51.100.9", 1)) as stranger:
        signup(stranger, "OWNER@example.org", keywords="spam", categories=["cs.AI"])
    after = _subs(web_settings)[0]
    assert (after.keywords, after.categories, after.token_nonce, after.status) == (
        before.keywords,
        before.categories,
        before.token_nonce,
        "pending",
    )
    requests_link = link_in(outbox(web_settings)[-1], "confirm")
    assert requests_link != owners_link
    _press(client, owners_link)  # the owner's link still works, with the owner's choices
    row = _subs(web_settings)[0]
    assert (row.status, row.keywords, row.categories) == ("active", ["graphs"], ["cs.LG"])
    assert "already" in client.get(requests_link).text  # the waiting request went with it
    assert _subs(web_settings)[0].keywords == ["graphs"]


def test_an_unsubscribed_owner_confirming_a_request_gets_its_choices(
    client: TestClient, web_settings: Settings
) -> None:
    sub = _active(client, web_settings, "owner@example.org")
    engine = make_engine(web_settings.database_url)
    with Session(engine) as s:
        service.unsubscribe(s, subscriber_id=sub.id or 0)
        s.commit()
    signup(client, "owner@example.org", keywords="new topic")
    assert _subs(web_settings)[0].keywords == []  # nothing stored yet
    with Session(engine) as s:
        assert len(s.exec(select(SignupRequest)).all()) == 1
    engine.dispose()
    _press(client, link_in(outbox(web_settings)[-1], "confirm"))
    row = _subs(web_settings)[0]
    assert (row.status, row.keywords) == ("active", ["new topic"])
    assert row.link_key != sub.link_key  # coming back: the earlier links are dead


# --- 7. limits, admin token, metrics, headers --------------------------------------------------


def test_a_stranger_spending_the_address_quota_locks_nobody_out(
    make_settings: Callable[..., Settings],
) -> None:
    settings = with_secret(make_settings(web={"signup_limit_per_address_per_day": 2}))
    with make_client(settings) as owner:
        sub = _active(owner, settings, "owner@example.org")  # one of the two
        sent = len(outbox(settings))
        with make_client(settings, client=("203.0.113.5", 1)) as stranger:
            for _ in range(4):
                assert signup(stranger, "owner@example.org").status_code == 200
        assert len(outbox(settings)) == sent + 1  # the quota stopped the e-mails, not answers
        r = signup(owner, "owner@example.org")
        assert r.status_code == 200 and "Check your inbox" in r.text
        assert len(outbox(settings)) == sent + 1
        prefs = link_in(outbox(settings)[-1], "preferences")  # "already subscribed" mail
        assert owner.get(prefs).status_code == 200
        assert _subs(settings)[0].link_key == sub.link_key


def test_ipv6_clients_are_counted_by_their_64(make_settings: Callable[..., Settings]) -> None:
    settings = with_secret(make_settings(web={"signup_limit_per_ip_per_hour": 2}))
    for i, host in enumerate(("2001:db8:1:2::1", "2001:db8:1:2::ffff", "2001:db8:1:2:a:b:c:d")):
        with make_client(settings, client=(host, 1)) as c:
            assert signup(c, f"r{i}@example.org").status_code == (200 if i < 2 else 429)
    with make_client(settings, client=("2001:db8:1:3::1", 1)) as other:
        assert signup(other, "r9@example.org").status_code == 200


def test_signup_work_runs_after_the_connection_is_free(
    client: TestClient, web_settings: Settings
) -> None:
    gate = threading.Event()
    queue = client.app.state.after_response  # type: ignore[attr-defined]
    queue.submit(gate.wait, 10)
    page = client.get("/")
    r = client.post("/subscribe", data={"csrf_token": csrf_of(page.text), "email": "a@example.org"})
    assert r.status_code == 200 and outbox(web_settings) == []  # answered before the work ran
    assert client.get("/healthz").status_code == 200  # the next request is not held up
    gate.set()
    drain(client)
    assert [m["To"] for m in outbox(web_settings)] == ["a@example.org"]


def test_short_admin_tokens_are_refused_at_start(web_settings: Settings) -> None:
    with pytest.raises(ConfigError, match="NEWSLETTER_ADMIN_TOKEN is too short"):
        create_app(web_settings.model_copy(update={"admin_token": SecretStr("short-token")}))


@pytest.fixture
def admin_client(web_settings: Settings) -> Iterator[TestClient]:
    settings = web_settings.model_copy(update={"admin_token": SecretStr(ADMIN_TOKEN)})
    with make_client(settings) as c:
        yield c


def test_failed_admin_attempts_are_throttled(admin_client: TestClient) -> None:
    good = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert admin_client.get("/metrics", headers=good).status_code == 200
    answers = [
        admin_client.get("/metrics", headers={"Authorization": f"Bearer guess{i}"}).status_code
        for i in range(12)
    ]
    assert answers == [401] * 10 + [429] * 2
    assert admin_client.get("/metrics", headers=good).status_code == 429  # not even compared
    assert admin_client.post("/admin/run", headers=good).status_code == 429
    with TestClient(admin_client.app, client=("192.0.2.200", 1)) as elsewhere:
        assert elsewhere.get("/metrics", headers=good).status_code == 200


def test_metrics_need_the_admin_token_unless_public(
    web_settings: Settings, admin_client: TestClient
) -> None:
    assert admin_client.get("/metrics").status_code == 401
    with make_client(web_settings) as no_token:  # no admin token configured: no /metrics
        assert no_token.get("/metrics").status_code == 404
    public = web_settings.model_copy(
        update={"web": web_settings.web.model_copy(update={"metrics_public": True})}
    )
    with make_client(public) as c:
        assert c.get("/metrics").status_code == 200


def test_healthz_is_public_and_tells_nothing_sensitive(
    make_settings: Callable[..., Settings],
) -> None:
    url = "postgresql://user:hunter2-secret@127.0.0.1:1/private_db"
    settings = with_secret(make_settings(database_url=url)).model_copy(
        update={"admin_token": SecretStr(ADMIN_TOKEN)}
    )
    dead = make_engine(url, pool_pre_ping=False)
    with TestClient(create_app(settings, engine=dead, migrate=False)) as c:
        r = c.get("/healthz")
    assert r.status_code == 503 and set(r.json()) == {"status", "database"}
    for secret in ("hunter2", "private_db", "user", "127.0.0.1", SECRET, ADMIN_TOKEN):
        assert secret not in r.text


@pytest.mark.parametrize("base_url", ["https://digest.example.org", "http://localhost:8000"])
def test_hsts_with_an_https_base_url_and_headers_on_every_answer(
    make_settings: Callable[..., Settings], base_url: str
) -> None:
    settings = with_secret(make_settings(base_url=base_url))
    with make_client(settings) as c:
        page = c.get("/")
        token = csrf_of(page.text)
        answers = [
            page,
            c.get("/no-such-page"),
            c.post("/subscribe", content=b"x" * 70_000, headers={"content-type": "text/plain"}),
            c.post(
                "/subscribe",
                content=iter([b"csrf_token=" + token.encode() + b"&email="] + [b"a" * 8192] * 20),
                headers={"content-type": "application/x-www-form-urlencoded"},
            ),
        ]
    assert [a.status_code for a in answers] == [200, 404, 413, 413]
    for a in answers:
        assert a.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in a.headers["content-security-policy"]
        assert ("strict-transport-security" in a.headers) == base_url.startswith("https")


def test_each_path_has_its_limit_for_declared_and_chunked_bodies(
    make_settings: Callable[..., Settings],
) -> None:
    """The webhook takes SendGrid-sized batches; every other path only small forms. An
    unsigned webhook request is refused before its body is read."""
    settings = with_secret(make_settings(delivery={"webhook_public_key": "MFkwEwYHKoZIzj0C"}))
    fresh = {
        "content-type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": "c2lnbmF0dXJl",
        "X-Twilio-Email-Event-Webhook-Timestamp": str(int(time.time())),
    }

    def body(chunks: int) -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield from [b" " * 65536] * chunks

    with make_client(settings) as c:
        big = b"[" + b" " * (9 * 1024 * 1024) + b"]"
        assert c.post("/webhooks/sendgrid", content=big, headers=fresh).status_code == 413
        assert c.post("/webhooks/sendgrid", content=body(150), headers=fresh).status_code == 413
        # Under the limit the request reaches verification (a bad signature here: 403).
        two_mb = b"[" + b" " * (2 * 1024 * 1024) + b"]"
        assert c.post("/webhooks/sendgrid", content=two_mb, headers=fresh).status_code == 403
        unsigned = {"content-type": "application/json"}
        assert c.post("/webhooks/sendgrid", content=body(150), headers=unsigned).status_code == 403
        assert c.post("/unsubscribe/x", content=b"a" * 70_000).status_code == 413
