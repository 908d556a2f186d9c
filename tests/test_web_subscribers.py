"""HTTP tests of every subscriber route, including each abuse case of issue 4."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from pydantic import SecretStr
from sqlmodel import Session, select

from newsletter.config import ConfigError, Settings
from newsletter.db import make_engine, session_scope
from newsletter.models import IssuePaperRow, IssueRow, PaperRow
from newsletter.web.app import create_app
from newsletter.web.subscriber_routes import router as subscriber_router
from subscribers import service
from subscribers.links import link
from subscribers.models import Consent, Subscriber, Suppression
from subscribers.tokens import Purpose
from tests.subscriber_helpers import (
    SECRET,
    confirm_latest,
    csrf_of,
    link_in,
    make_client,
    outbox,
    signup,
    with_secret,
)

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["tests.fixtures_subscribers"]


def _subs(settings: Settings) -> list[Subscriber]:
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        rows = list(s.exec(select(Subscriber).order_by(Subscriber.id)).all())  # type: ignore[arg-type]
    engine.dispose()
    return rows


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def _key(settings: Settings, sid: int) -> str:
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        row = s.get(Subscriber, sid)
        key = row.link_key if row is not None else "gone"
    engine.dispose()
    return key


def _link(settings: Settings, purpose: Purpose, sid: int, nonce: str = "") -> str:
    """The link the app would make now for subscriber ``sid`` (with their link key)."""
    return link(settings, purpose, sid, _key(settings, sid), nonce)


def _active(client: TestClient, settings: Settings, email: str = "reader@example.org") -> int:
    assert signup(client, email).status_code == 200
    confirm_latest(client, settings)
    return next(s.id for s in _subs(settings) if s.email == email)  # type: ignore[misc]


def test_security_headers_and_csrf_cookie_on_the_home_page(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "nl_csrf=" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
    assert "<style" not in r.text and "<script" not in r.text and 'style="' not in r.text
    assert client.get("/static/site.css").status_code == 200


def test_home_shows_the_latest_issue_headline_escaped(
    client: TestClient, web_settings: Settings
) -> None:
    engine = make_engine(web_settings.database_url)
    with session_scope(engine) as s:
        s.add(
            PaperRow(
                arxiv_id="2603.00001",
                title="<script>alert(1)</script> Attention",
                abstract="a",
                primary_category="cs.LG",
                published=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
            )
        )
        issue = IssueRow(date=dt.date(2026, 3, 2), papers_selected=7)
        s.add(issue)
        s.flush()
        s.add(IssuePaperRow(issue_id=issue.id or 0, arxiv_id="2603.00001", rank=1))
    engine.dispose()
    page = client.get("/").text
    assert "Latest issue, 2026-03-02: 7 papers" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Attention" in page
    assert "<script>alert" not in page


def test_signup_confirm_flow_and_single_use(client: TestClient, web_settings: Settings) -> None:
    r = signup(client, "Reader@Example.org", keywords="LLM, agents", categories=["cs.LG"])
    assert r.status_code == 200 and "Check your inbox" in r.text
    [msg] = outbox(web_settings)
    assert msg["To"] == "Reader@example.org"
    assert "Confirm your subscription" in msg["Subject"]
    path = link_in(msg, "confirm")
    page = client.get(path)  # a link scanner's GET subscribes nobody
    assert "Yes, subscribe me" in page.text
    assert _subs(web_settings)[0].status == "pending"
    done = client.post(path, data={"csrf_token": csrf_of(page.text)})
    assert done.status_code == 200 and "You are subscribed" in done.text
    [sub] = _subs(web_settings)
    assert (sub.status, sub.keywords, sub.categories) == ("active", ["LLM", "agents"], ["cs.LG"])
    again = client.post(path, data={"csrf_token": csrf_of(page.text)})
    assert "already subscribed" in again.text
    assert "already subscribed" in client.get(path).text
    engine = make_engine(web_settings.database_url)
    with Session(engine) as s:
        consents = s.exec(select(Consent)).all()
        assert [c.action for c in consents] == ["signup", "confirm"]
        assert consents[0].ip == "testclient" and consents[0].user_agent == "testclient"
    engine.dispose()


def test_signup_answers_the_same_whatever_the_address(
    client: TestClient, web_settings: Settings
) -> None:
    _active(client, web_settings, "known@example.org")
    signup(client, "pending@example.org")
    signup(client, "complainer@example.org")
    engine = make_engine(web_settings.database_url)
    with session_scope(engine) as s:
        service.suppress(s, email="complainer@example.org", reason="complained")
    engine.dispose()
    before = len(outbox(web_settings))
    bodies = {
        email: signup(client, email)
        for email in (
            "new@example.org",
            "known@example.org",
            "pending@example.org",
            "complainer@example.org",
        )
    }
    assert {r.status_code for r in bodies.values()} == {200}
    assert len({r.content for r in bodies.values()}) == 1
    assert all("set-cookie" not in r.headers for r in bodies.values())
    sent = outbox(web_settings)[before:]
    subjects = {m["To"]: m["Subject"] for m in sent}
    assert subjects["new@example.org"].startswith("Confirm")
    assert subjects["pending@example.org"].startswith("Confirm")
    assert subjects["known@example.org"].startswith("You are already subscribed")
    assert "complainer@example.org" not in subjects
    prefs = link_in(next(m for m in sent if m["To"] == "known@example.org"), "preferences")
    assert client.get(prefs).status_code == 200


@pytest.mark.parametrize(
    ("email", "extra"),
    [
        ("reader@example.org\r\nBcc: victim@example.org", {}),
        ("reader@example.org\nBcc: victim@example.org", {}),
        ("no-at-sign", {}),
        ("a" * 300 + "@example.org", {}),
        ("reader@example.org", {"keywords": "k" * 4001}),
        ("reader@example.org", {"categories": ["hep-th"]}),
    ],
)
def test_signup_rejects_bad_fields(
    client: TestClient, web_settings: Settings, email: str, extra: dict[str, object]
) -> None:
    r = signup(client, email, **extra)
    assert r.status_code == 400
    assert 'class="error"' in r.text
    assert outbox(web_settings) == [] and _subs(web_settings) == []


def test_the_form_echoes_user_text_escaped(client: TestClient) -> None:
    r = signup(client, '"><script>alert(1)</script>@x', keywords='"><img src=x onerror=alert(1)>')
    assert r.status_code == 400
    assert "<script>alert(1)" not in r.text and "<img src=x" not in r.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in r.text


def test_honeypot_gets_the_same_page_and_nothing_happens(
    client: TestClient, web_settings: Settings
) -> None:
    honest = signup(client, "human@example.org")
    bot = signup(client, "bot@example.org", website="http://spam.example")
    assert bot.status_code == 200 and bot.content == honest.content
    assert [m["To"] for m in outbox(web_settings)] == ["human@example.org"]
    assert [s.email for s in _subs(web_settings)] == ["human@example.org"]


def test_csrf_is_required_on_every_form(client: TestClient, web_settings: Settings) -> None:
    assert client.post("/subscribe", data={"email": "a@example.org"}).status_code == 403
    token = csrf_of(client.get("/").text)
    other = make_client(web_settings)  # another browser: has no cookie for this token
    r = other.post("/subscribe", data={"email": "a@example.org", "csrf_token": token})
    assert r.status_code == 403 and "This form has expired" in r.text
    forged = token.split(".")[0] + ".AAAAAAAAAAAAAAAAAAAAAAAAAAA"
    assert (
        client.post("/subscribe", data={"email": "a@example.org", "csrf_token": forged}).status_code
        == 403
    )
    sid = _active(client, web_settings)
    for purpose in ("preferences", "unsubscribe", "erase"):
        r = client.post(_path(_link(web_settings, purpose, sid)), data={"keywords": "x"})  # type: ignore[arg-type]
        assert r.status_code == 403, purpose
    assert _subs(web_settings)[0].status == "active"
    assert _subs(web_settings)[0].keywords == []


def test_rate_limit_per_ip(make_settings: Callable[..., Settings]) -> None:
    settings = with_secret(make_settings(web={"signup_limit_per_ip_per_hour": 2}))
    with make_client(settings) as c:
        assert signup(c, "a1@example.org").status_code == 200
        assert signup(c, "a2@example.org").status_code == 200
        r = signup(c, "a3@example.org")
    assert r.status_code == 429
    assert "Too many requests" in r.text and r.headers["retry-after"] == "3600"
    assert [m["To"] for m in outbox(settings)] == ["a1@example.org", "a2@example.org"]
    with make_client(settings, client=("192.0.2.7", 5000)) as other_ip:
        assert signup(other_ip, "a3@example.org").status_code == 200


def test_rate_limit_per_address_holds_across_processes(
    make_settings: Callable[..., Settings],
) -> None:
    settings = with_secret(make_settings(web={"signup_limit_per_address_per_day": 2}))
    # Two apps with their own engines: like two server processes on one database.
    clients = [
        make_client(settings, make_engine(settings.database_url), client=(f"192.0.2.{i}", 1))
        for i in range(1, 4)
    ]
    with clients[0] as a, clients[1] as b, clients[2] as c:
        assert signup(a, "target@example.org").status_code == 200
        assert signup(b, "TARGET@example.org".replace("TARGET", "target")).status_code == 200
        # The quota is spent: answered as always (no lock-out, no tell), but nothing is sent.
        assert signup(c, "target@example.org").status_code == 200
    assert len(outbox(settings)) == 2


def test_tokens_are_scoped_by_purpose_and_tamper_proof(
    client: TestClient, web_settings: Settings
) -> None:
    sid = _active(client, web_settings)
    unsub = _link(web_settings, "unsubscribe", sid)
    token = unsub.rsplit("/", 1)[1]
    for path in (
        f"/confirm/{token}",
        f"/export/{token}",
        f"/erase/{token}",
        f"/preferences/{token}",
    ):
        r = client.get(path)
        assert r.status_code == 404 and "This link does not work" in r.text, path
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert client.get(f"/unsubscribe/{tampered}").status_code == 404
    foreign = with_secret(web_settings, "another-K3y-entirely-9f8e7d6c5b4a3210")
    foreign_link = link(foreign, "preferences", sid, _key(web_settings, sid))
    assert client.get(_path(foreign_link)).status_code == 404
    r = client.post(
        f"/unsubscribe/{tampered}",
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 404
    assert _subs(web_settings)[0].status == "active"


def test_confirmation_links_expire(client: TestClient, web_settings: Settings) -> None:
    signup(client, "late@example.org")
    sub = _subs(web_settings)[0]
    week_ago = time.time() - 8 * 24 * 3600

    class OldSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(week_ago)

    # A token from 8 days ago; the row must be older still, or it would be refused anyway.
    engine = make_engine(web_settings.database_url)
    with session_scope(engine) as s:
        row = s.get(Subscriber, sub.id)
        assert row is not None
        row.created_at = dt.datetime.fromtimestamp(week_ago - 60, dt.UTC)
        nonce = row.token_nonce
    engine.dispose()
    serializer = URLSafeTimedSerializer(SECRET, salt="newsletter.confirm", signer=OldSigner)
    token = serializer.dumps({"s": sub.id, "k": sub.link_key, "n": nonce})
    r = client.get(f"/confirm/{token}")
    assert r.status_code == 404 and "expired" in r.text


def test_a_link_with_an_old_link_key_is_refused(client: TestClient, web_settings: Settings) -> None:
    """Links are bound to the person by their link key: a new key kills every older link."""
    sid = _active(client, web_settings)
    old_unsub = _path(_link(web_settings, "unsubscribe", sid))
    engine = make_engine(web_settings.database_url)
    with session_scope(engine) as s:
        row = s.get(Subscriber, sid)
        assert row is not None
        row.link_key = "another-key-entirely"
    engine.dispose()
    assert client.get(old_unsub).status_code == 404


def test_preferences_view_and_save(client: TestClient, web_settings: Settings) -> None:
    sid = _active(client, web_settings)
    path = _path(_link(web_settings, "preferences", sid))
    page = client.get(path)
    assert page.status_code == 200 and "reader@example.org" in page.text
    r = client.post(
        path,
        data={
            "csrf_token": csrf_of(page.text),
            "keywords": "<b>bold</b>, diffusion",
            "categories": ["cs.AI"],
            "max_papers": "5",
            "include_summaries": "",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith("?saved=1")
    saved = client.get(r.headers["location"])
    assert "Your preferences are saved" in saved.text
    assert "&lt;b&gt;bold&lt;/b&gt;, diffusion" in saved.text and "<b>bold" not in saved.text
    sub = _subs(web_settings)[0]
    assert (sub.keywords, sub.categories, sub.max_papers, sub.include_summaries) == (
        ["<b>bold</b>", "diffusion"],
        ["cs.AI"],
        5,
        False,
    )
    bad = client.post(path, data={"csrf_token": csrf_of(page.text), "max_papers": "100000"})
    assert bad.status_code == 400 and "between 1 and" in bad.text
    assert _subs(web_settings)[0].max_papers == 5


def test_unsubscribe_page_button_and_resubscribe(
    client: TestClient, web_settings: Settings
) -> None:
    sid = _active(client, web_settings)
    path = _path(_link(web_settings, "unsubscribe", sid))
    page = client.get(path)
    assert "Stop sending" in page.text and _subs(web_settings)[0].status == "active"
    r = client.post(path, data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 200 and "You are unsubscribed" in r.text and "Re-subscribe" in r.text
    assert _subs(web_settings)[0].status == "unsubscribed"
    assert "Re-subscribe" in client.get(path).text
    back = client.post(path, data={"csrf_token": csrf_of(r.text), "action": "resubscribe"})
    assert back.status_code == 200 and "You are subscribed" in back.text
    assert _subs(web_settings)[0].status == "active"


def test_one_click_unsubscribe_rfc8058(client: TestClient, web_settings: Settings) -> None:
    sid = _active(client, web_settings)
    path = _path(_link(web_settings, "unsubscribe", sid))
    bare = make_client(web_settings)  # a mailbox provider: no cookies, no CSRF token
    r = bare.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert r.status_code == 200
    assert "location" not in r.headers and "set-cookie" not in r.headers
    assert _subs(web_settings)[0].status == "unsubscribed"
    assert bare.post(path, files={"List-Unsubscribe": (None, "One-Click")}).status_code == 200
    with session_scope(make_engine(web_settings.database_url)) as s:
        assert s.exec(select(Suppression)).one().reason == "unsubscribed"


def test_export_json(client: TestClient, web_settings: Settings) -> None:
    sid = _active(client, web_settings)
    r = client.get(_path(_link(web_settings, "export", sid)))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert "attachment" in r.headers["content-disposition"]
    data = r.json()
    assert data["email"] == "reader@example.org" and data["status"] == "active"
    assert [c["action"] for c in data["consents"]] == ["signup", "confirm"]
    assert "token_nonce" not in r.text and "id" not in data


def test_erase_keeps_only_a_suppression_entry(client: TestClient, web_settings: Settings) -> None:
    sid = _active(client, web_settings)
    prefs = _path(_link(web_settings, "preferences", sid))
    path = _path(_link(web_settings, "erase", sid))
    page = client.get(path)
    assert "cannot be undone" in page.text and len(_subs(web_settings)) == 1
    r = client.post(path, data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 200 and "Your data is erased" in r.text
    assert _subs(web_settings) == []
    with session_scope(make_engine(web_settings.database_url)) as s:
        assert [x.reason for x in s.exec(select(Suppression)).all()] == ["erased"]
        assert s.exec(select(Consent)).all() == []
    assert client.get(prefs).status_code == 404


def test_error_pages_have_no_stack_traces(web_settings: Settings) -> None:
    boom = APIRouter()

    @boom.get("/boom")
    def _boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    app = create_app(web_settings, routers=[subscriber_router, boom])
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom")
        assert r.status_code == 500 and "Something went wrong" in r.text
        assert "secret internals" not in r.text and "Traceback" not in r.text
        assert "default-src 'none'" in r.headers["content-security-policy"]
        missing = c.get("/nope")
        assert missing.status_code == 404 and "Page not found" in missing.text
        assert "x-frame-options" in missing.headers
        assert c.put("/subscribe").status_code == 405
        big = c.post(
            "/subscribe",
            content=b"x" * 70000,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert big.status_code == 413


@pytest.mark.parametrize("key", [None, "short", "changeme" * 5, "a" * 40, "secret-" + "x1y2" * 8])
def test_weak_secret_keys_are_refused(web_settings: Settings, key: str | None) -> None:
    settings = web_settings.model_copy(update={"secret_key": SecretStr(key) if key else None})
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY"):
        create_app(settings)


def test_serve_refuses_a_placeholder_key(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NEWSLETTER_SECRET_KEY": "changeme",
        "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
    }
    env.pop("NEWSLETTER_CONFIG", None)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "newsletter",
            "serve",
            "--no-scheduler",
            "--port",
            "1",
            "--config",
            str(tmp_path / "missing.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert r.returncode == 2
    r = subprocess.run(
        [sys.executable, "-m", "newsletter", "serve", "--no-scheduler", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert r.returncode == 2 and "NEWSLETTER_SECRET_KEY" in r.stderr and "changeme" not in r.stderr


def test_full_flow_on_both_databases(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    settings = with_secret(make_settings(database_url=database_url))
    with make_client(settings) as c:
        assert signup(c, "flow@example.org", keywords="transformers").status_code == 200
        confirm_latest(c, settings)
        sid = _subs(settings)[0].id or 0
        prefs = _path(_link(settings, "preferences", sid))
        page = c.get(prefs)
        c.post(
            prefs,
            data={"csrf_token": csrf_of(page.text), "keywords": "graphs", "include_summaries": "1"},
        )
        assert _subs(settings)[0].keywords == ["graphs"]
        unsub = _path(_link(settings, "unsubscribe", sid))
        c.post(unsub, data={"csrf_token": csrf_of(c.get(unsub).text)})
        assert _subs(settings)[0].status == "unsubscribed"
        erase = _path(_link(settings, "erase", sid))
        c.post(erase, data={"csrf_token": csrf_of(c.get(erase).text)})
        assert _subs(settings) == []


def test_background_hook_starts_after_migrations_and_stops_at_shutdown(
    web_settings: Settings,
) -> None:
    events: list[str] = []

    def start(settings: Settings, engine: object) -> Callable[[], None]:
        from sqlalchemy import inspect

        events.append("start:" + str("subscribers" in inspect(engine).get_table_names()))  # type: ignore[arg-type]
        return lambda: events.append("stop")

    fresh = web_settings.model_copy(
        update={"database_url": web_settings.database_url.replace("newsletter.db", "fresh.db")}
    )
    with TestClient(create_app(fresh, background=start)) as c:
        assert events == ["start:True"]
        assert c.get("/").status_code == 200
    assert events == ["start:True", "stop"]
