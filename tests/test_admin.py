"""The operator's dashboard through the app (TestClient) and its pure parts: sign-in, session,
CSRF, throttle, overview figures, search, audited actions, CSV, issues and the queued send."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.db import make_engine, session_scope
from newsletter.delivery.models import Delivery
from newsletter.models import RunRow
from newsletter.web.admin import chart, search, session, stats, throttle
from newsletter.web.admin.models import AdminAudit, AdminSigninFailure
from subscribers import csvio, service
from subscribers.models import Subscriber, Suppression
from subscribers.validation import email_hash
from tests.admin_helpers import ADMIN_TOKEN, find, is_suppressed, seed_issue, sign_in, with_admin
from tests.subscriber_helpers import csrf_of, link_in, make_client, outbox, with_secret

PAGES = ["/admin", "/admin/subscribers", "/admin/issues", "/admin/audit", "/admin/subscribers.csv"]


@pytest.fixture
def admin_settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return with_admin(
        with_secret(
            make_settings(
                database_url=database_url,
                base_url="https://digest.example.org",
                email={"postal_address": "1 Example Street, Springfield"},
            )
        )
    )


@pytest.fixture
def client(admin_settings: Settings) -> Iterator[TestClient]:
    engine = make_engine(admin_settings.database_url)
    with make_client(admin_settings, engine, base_url="https://testserver") as c:
        yield c
    engine.dispose()


@pytest.fixture
def signed_in(client: TestClient) -> TestClient:
    assert sign_in(client).status_code == 303
    return client


def _engine(settings: Settings) -> Engine:
    return make_engine(settings.database_url)


def _audit(settings: Settings) -> list[AdminAudit]:
    engine = _engine(settings)
    with Session(engine) as s:
        rows = list(s.exec(select(AdminAudit).order_by(AdminAudit.id)).all())  # type: ignore[arg-type]
    engine.dispose()
    return rows


def _add(settings: Settings, email: str, *, active: bool = True, keywords: str = "") -> int:
    engine = _engine(settings)
    with session_scope(engine) as s:
        sub = service.add(s, settings=settings, email=email, active=active, keywords=keywords)
        sid = sub.subscriber.id or 0
    engine.dispose()
    return sid


# -- existence, sign-in, session ---------------------------------------------------------


def test_without_an_admin_token_the_dashboard_does_not_exist(
    make_settings: Callable[..., Settings],
) -> None:
    settings = with_secret(make_settings())
    with make_client(settings) as c:
        for path in [*PAGES, "/admin/login", "/admin/subscribers/1"]:
            assert c.get(path, follow_redirects=False).status_code == 404, path
        assert c.post("/admin/login", data={"token": "x"}).status_code == 404
        assert c.post("/admin/logout").status_code == 404
        assert c.get("/admin/nothing-here").status_code == 404


def test_nothing_is_reachable_without_the_session(
    client: TestClient, admin_settings: Settings
) -> None:
    sid = _add(admin_settings, "kept@example.org")
    for path in [*PAGES, f"/admin/subscribers/{sid}", "/admin/issues/2026-04-22"]:
        r = client.get(path, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, "/admin/login"), path
        assert "kept@example.org" not in r.text
    csrf = csrf_of(client.get("/admin/login").text)
    for path in [f"/admin/subscribers/{sid}/erase", "/admin/issues/2026-04-22/send"]:
        r = client.post(path, data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303, path
    r = client.post("/admin/subscribers/import", files={"file": ("a.csv", b"email\nx@y.org\n")})
    assert r.url.path == "/admin/login"
    engine = _engine(admin_settings)
    with Session(engine) as s:
        assert s.get(Subscriber, sid) is not None
        assert find(s, email="x@y.org") is None
    engine.dispose()
    from itsdangerous import URLSafeSerializer

    forged = URLSafeSerializer(
        "not-our-secret-key-0123456789abcdef", salt="newsletter.admin-session"
    )
    client.cookies.set(session.COOKIE, str(forged.dumps({"exp": 9e9, "tok": "x"})))
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_sign_in_sets_a_strict_httponly_secure_cookie_and_sign_out_ends_it(
    client: TestClient, admin_settings: Settings
) -> None:
    r = sign_in(client)
    assert (r.status_code, r.headers["location"]) == (303, "/admin")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{session.COOKIE}=")
    for part in ("HttpOnly", "SameSite=strict", "Secure", "Path=/admin", "Max-Age=43200"):
        assert part.lower() in cookie.lower(), part
    page = client.get("/admin")
    assert page.status_code == 200 and "<h1>Overview</h1>" in page.text
    assert client.get("/admin/login", follow_redirects=False).headers["location"] == "/admin"
    out = client.post(
        "/admin/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert (out.status_code, out.headers["location"]) == (303, "/admin/login")
    assert 'nl_admin=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    assert client.get("/admin", follow_redirects=False).status_code == 303
    assert [a.action for a in _audit(admin_settings)] == ["sign-in", "sign-out"]


def test_a_wrong_token_is_refused_and_then_throttled_across_app_instances(
    client: TestClient, admin_settings: Settings
) -> None:
    for _ in range(throttle.PER_CLIENT):
        r = sign_in(client, "not-the-token")
        assert r.status_code == 401 and "not the admin token" in r.text
        assert session.COOKIE not in r.headers.get("set-cookie", "")
    r = sign_in(client)  # the right token, but the window is exhausted
    assert r.status_code == 429 and r.headers["retry-after"] == "900"
    assert session.COOKIE not in r.headers.get("set-cookie", "")
    with make_client(admin_settings, base_url="https://testserver") as other:  # another process
        assert sign_in(other).status_code == 429
    engine = _engine(admin_settings)
    with session_scope(engine) as s:  # the window passes
        for row in s.exec(select(AdminSigninFailure)):
            row.at = row.at - throttle.WINDOW - dt.timedelta(seconds=1)
            s.add(row)
    engine.dispose()
    assert sign_in(client).status_code == 303


def test_throttle_counts_every_client_together_too(admin_settings: Settings) -> None:
    engine = _engine(admin_settings)
    now = dt.datetime.now(dt.UTC)
    with session_scope(engine) as s:
        for i in range(throttle.OVERALL):
            throttle.record_failure(s, key=f"ip:10.0.0.{i}", now=now)
        assert throttle.throttled(s, key="ip:192.0.2.1", now=now)
        assert not throttle.throttled(s, key="ip:192.0.2.1", now=now + throttle.WINDOW * 2)
    engine.dispose()


def test_sign_in_without_csrf_is_refused(client: TestClient) -> None:
    client.get("/admin/login")
    r = client.post("/admin/login", data={"token": ADMIN_TOKEN}, follow_redirects=False)
    assert r.status_code == 400 and session.COOKIE not in r.headers.get("set-cookie", "")


def test_the_session_expires_and_follows_the_admin_token(admin_settings: Settings) -> None:
    from starlette.responses import Response

    response = Response()
    session.issue_cookie(admin_settings, response, now=1_000_000.0)
    value = response.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    assert session.valid(admin_settings, value, now=1_000_000.0 + 12 * 3600 - 1)
    assert not session.valid(admin_settings, value, now=1_000_000.0 + 12 * 3600)
    rotated = with_admin(admin_settings, "another-token-0123456789")
    assert not session.valid(rotated, value, now=1_000_001.0)
    short = admin_settings.model_copy(
        update={"web": admin_settings.web.model_copy(update={"admin_session_hours": 0.5})}
    )
    session.issue_cookie(short, response, now=0.0)
    assert "Max-Age=1800" in response.headers.getlist("set-cookie")[-1]
    assert not session.valid(admin_settings, value[:-2] + "xx", now=1_000_001.0)


def test_an_http_base_url_gives_no_secure_flag(make_settings: Callable[..., Settings]) -> None:
    settings = with_admin(with_secret(make_settings()))
    with make_client(settings) as c:
        cookie = sign_in(c).headers["set-cookie"]
    assert "secure" not in cookie.lower() and "httponly" in cookie.lower()


# -- overview --------------------------------------------------------------------------------


def _cell(html: str, attr: str, key: str) -> int:
    match = re.search(rf'data-{attr}="{key}">(\d+)<', html)
    assert match, key
    return int(match.group(1))


def test_overview_counts_equal_the_database(
    signed_in: TestClient, admin_settings: Settings
) -> None:
    for i in range(3):
        _add(admin_settings, f"active{i}@example.org")
    _add(admin_settings, "pending@example.org", active=False)
    gone = _add(admin_settings, "gone@example.org")
    bounced = _add(admin_settings, "bounced@example.org")
    engine = _engine(admin_settings)
    with session_scope(engine) as s:
        service.unsubscribe(s, subscriber_id=gone)
        service.suppress(s, reason="bounced", subscriber_id=bounced)
    with Session(engine) as s:
        truth = service.count_by_status(s)
    engine.dispose()
    html = signed_in.get("/admin").text
    for status in ("active", "pending", "unsubscribed", "bounced", "complained"):
        assert _cell(html, "status", status) == truth.get(status, 0), status
    assert _cell(html, "status", "total") == sum(truth.values()) == 6
    assert "<svg" in html and "<polyline" in html and "<script" not in html


def test_daily_activity_counts_events_by_day(admin_settings: Settings) -> None:
    engine = _engine(admin_settings)
    today = dt.date(2026, 5, 20)
    at = dt.datetime(2026, 5, 18, 23, 30, tzinfo=dt.UTC)
    with session_scope(engine) as s:
        a = service.subscribe(s, settings=admin_settings, email="a@example.org", now=at)
        service.confirm(s, subscriber_id=a.subscriber_id or 0, nonce=a.nonce, now=at)
        service.unsubscribe(s, subscriber_id=a.subscriber_id or 0, now=at + dt.timedelta(hours=1))
        service.subscribe(s, settings=admin_settings, email="b@example.org", now=at)
        service.suppress(s, reason="complained", email="b@example.org", now=at)
        service.suppress(s, reason="bounced", email="c@example.org", now=at)
        old = at - dt.timedelta(days=120)
        service.subscribe(s, settings=admin_settings, email="old@example.org", now=old)
    with Session(engine) as s:
        activity = stats.daily_activity(s, days=90, today=today)
    engine.dispose()
    assert len(activity.days) == 90 and activity.days[-1] == today
    i = activity.days.index(dt.date(2026, 5, 18))
    assert [activity.series[n][i] for n in stats.SERIES] == [2, 1, 0, 1, 1]
    assert activity.series["unsubscribes"][i + 1] == 1  # 00:30 the next day
    assert activity.total("signups") == 2  # the 120-day-old signup is outside
    assert activity.busy_days()[0][0] == dt.date(2026, 5, 19)


def test_warnings_name_what_needs_the_operator(
    admin_settings: Settings, make_settings: Callable[..., Settings]
) -> None:
    engine = _engine(admin_settings)
    ids = [_add(admin_settings, f"r{i}@example.org") for i in range(4)]
    two_hours_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    seed_issue(
        engine,
        dt.date(2026, 5, 4),
        deliveries={ids[0]: "queued", ids[1]: "sent"},
        queued_at=two_hours_ago,
    )
    seed_issue(engine, dt.date(2026, 5, 5), deliveries={ids[2]: "queued"})  # fresh: fine
    with Session(engine) as s:
        found = stats.warnings(s, admin_settings)
    assert [w.href for w in found] == ["/admin/issues/2026-05-04"]
    assert "1 deliveries queued for more than an hour" in found[0].text
    with session_scope(engine) as s:
        service.suppress(s, reason="complained", subscriber_id=ids[3])
        s.add(RunRow(date=dt.date(2026, 5, 5), outcome="failed", message="arXiv <down>"))
    bare = with_admin(with_secret(make_settings(database_url=admin_settings.database_url)))
    with Session(engine) as s:
        texts = [(w.level, w.text) for w in stats.warnings(s, bare)]
    engine.dispose()
    joined = " | ".join(t for _, t in texts)
    assert ("danger", texts[1][1]) == texts[1] and "Spam complaint rate 100.00 %" in joined
    assert "above the 0.3 %" in joined
    assert "failed: arXiv <down>" in joined
    assert "No postal address" in joined and "http://localhost:8000" in joined


def test_rate_thresholds_follow_gmail_and_yahoo() -> None:
    assert stats.Rates(1000, 0, 2).complaint_rate == 0.002
    assert stats.COMPLAINT_TARGET < 0.002 < stats.COMPLAINT_LIMIT
    assert stats.Rates(0, 5, 5).bounce_rate == 0.0


def test_overview_shows_a_running_send_with_a_refreshing_progress_bar(
    signed_in: TestClient, admin_settings: Settings
) -> None:
    engine = _engine(admin_settings)
    ids = [_add(admin_settings, f"r{i}@example.org") for i in range(4)]
    seed_issue(
        engine,
        dt.date(2026, 5, 6),
        deliveries={ids[0]: "sent", ids[1]: "failed", ids[2]: "queued", ids[3]: "sending"},
    )
    engine.dispose()
    html = signed_in.get("/admin").text
    assert '<meta http-equiv="refresh" content="5">' in html  # rows are being sent
    assert '<progress max="4" value="2">' in html
    assert "2 of 4 settled (50 %)" in html
    idle = signed_in.get("/admin/issues").text
    assert "http-equiv" not in idle


def test_chart_geometry_spans_the_plot() -> None:
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(90)]
    values = [0] * 90
    values[45] = 7
    c = chart.line_chart(days, {"signups": values, "bounces": [0] * 90})
    first, *_, last = c.lines[0].points.split()
    assert first == f"{c.left:.1f},{c.bottom:.1f}" and last.startswith(f"{c.right:.1f},")
    assert f",{c.top:.1f}" not in c.lines[0].points  # peak 7 is below the round maximum 10
    assert [t.label for t in c.y_ticks] == ["0", "5", "10"]
    assert c.x_ticks[0].label == "Jan 01" and c.x_ticks[-1].label == "Mar 31"
    assert [chart.nice_ceiling(v) for v in (0, 1, 3, 7, 11, 180)] == [1, 1, 5, 10, 20, 200]


# -- subscribers -----------------------------------------------------------------------------


def test_search_by_fragment_keyword_and_status_is_paginated(admin_settings: Settings) -> None:
    lines = ["email,keywords,categories,status"]
    for i in range(120):
        keywords = "graph neural networks" if i % 40 == 0 else ""
        lines.append(f"user{i}@example.org,{keywords},,{'active' if i % 2 == 0 else 'pending'}")
    lines.append("under_score@example.org,Résumé;diffusion,,active")
    engine = _engine(admin_settings)
    with session_scope(engine) as s:
        csvio.import_csv(s, settings=admin_settings, source=io.StringIO("\n".join(lines)))
    with Session(engine) as s:
        everyone = search.search(s, search.Query.parse())
        assert everyone.total == 121 and len(everyone.rows) == search.PAGE_SIZE
        assert everyone.pages == 3 and everyone.rows[0].email == "under_score@example.org"
        assert len(search.search(s, search.Query.parse(page="3")).rows) == 21
        one = search.search(s, search.Query.parse("USER17@"))
        assert [r.email for r in one.rows] == ["user17@example.org"]
        assert search.search(s, search.Query.parse("r_s")).total == 1  # _ is literal
        assert search.search(s, search.Query.parse("%")).total == 0
        graphs = search.search(s, search.Query.parse(keyword="Neural"))
        assert sorted(r.email for r in graphs.rows) == [
            "user0@example.org",
            "user40@example.org",
            "user80@example.org",
        ]
        assert search.search(s, search.Query.parse(keyword="résumé")).total == 1
        assert search.search(s, search.Query.parse(status="pending")).total == 60
        both = search.search(s, search.Query.parse("user4", keyword="graph", status="active"))
        assert [r.email for r in both.rows] == ["user40@example.org"]
        assert search.search(s, search.Query.parse(status="nonsense")).total == 121
        assert search.Query.parse(page="-4").page == 1
    engine.dispose()


def test_subscriber_page_shows_preferences_consents_and_deliveries(
    signed_in: TestClient, admin_settings: Settings
) -> None:
    sid = _add(admin_settings, "reader@example.org", keywords="<b>graphs</b>, transformers")
    engine = _engine(admin_settings)
    seed_issue(engine, dt.date(2026, 5, 7), deliveries={sid: "failed"})
    engine.dispose()
    html = signed_in.get(f"/admin/subscribers/{sid}").text
    assert "&lt;b&gt;graphs&lt;/b&gt;, transformers" in html and "<b>graphs" not in html
    assert "admin-add" in html  # the consent record
    assert "/admin/issues/2026-05-07" in html and "550 mailbox unavailable" in html
    assert signed_in.get("/admin/subscribers/99999").status_code == 404


def _act(client: TestClient, sid: int, action: str, **fields: str) -> object:
    page = client.get(f"/admin/subscribers/{sid}")
    return client.post(
        f"/admin/subscribers/{sid}/{action}", data={"csrf_token": csrf_of(page.text), **fields}
    )


def test_actions_change_the_store_and_are_recorded(
    signed_in: TestClient, admin_settings: Settings
) -> None:
    sid = _add(admin_settings, "act@example.org")
    engine = _engine(admin_settings)
    r = _act(signed_in, sid, "suppress")
    assert r.status_code == 200 and "Suppressed" in r.text  # type: ignore[attr-defined]
    with Session(engine) as s:
        assert is_suppressed(s, email="act@example.org")
        assert s.get(Subscriber, sid).status == "unsubscribed"  # type: ignore[union-attr]
    r = _act(signed_in, sid, "unsuppress")
    assert "Suppression (admin) lifted" in r.text  # type: ignore[attr-defined]
    with Session(engine) as s:
        assert not is_suppressed(s, email="act@example.org")
    r = _act(signed_in, sid, "resend-confirmation")  # not pending: refused, nothing sent
    assert r.status_code == 400  # type: ignore[attr-defined]
    r = _act(signed_in, sid, "erase")  # without ticking the box
    assert r.status_code == 400 and "Tick the box" in r.text  # type: ignore[attr-defined]
    r = _act(signed_in, sid, "erase", confirm="yes")
    assert "erased" in r.text  # type: ignore[attr-defined]
    with Session(engine) as s:
        assert s.get(Subscriber, sid) is None
        assert is_suppressed(s, email="act@example.org")
    engine.dispose()
    log = _audit(admin_settings)
    assert [a.action for a in log][1:] == ["suppress", "unsuppress", "erase"]
    assert all(a.subscriber_id == sid for a in log[1:])
    assert all("act@example.org" not in f"{a.target} {a.detail}" for a in log)
    assert log[-1].target == f"#{sid} {email_hash('act@example.org')[:12]}"


def test_bounces_and_complaints_cannot_be_lifted_here(
    signed_in: TestClient, admin_settings: Settings
) -> None:
    sid = _add(admin_settings, "bounce@example.org")
    engine = _engine(admin_settings)
    with session_scope(engine) as s:
        service.suppress(s, reason="bounced", subscriber_id=sid)
    page = signed_in.get(f"/admin/subscribers/{sid}").text
    assert "do-unsuppress" not in page and "bounced, since" in page
    r = _act(signed_in, sid, "unsuppress")
    assert r.status_code == 400 and "does not lift bounces or complaints" in r.text  # type: ignore[attr-defined]
    with Session(engine) as s:
        assert s.exec(select(Suppression)).one().reason == "bounced"
    engine.dispose()


def test_resend_confirmation_sends_a_working_link(
    signed_in: TestClient, admin_settings: Settings
) -> None:
    sid = _add(admin_settings, "later@example.org", active=False)
    r = _act(signed_in, sid, "resend-confirmation")
    assert r.status_code == 200  # type: ignore[attr-defined]
    [msg] = outbox(admin_settings)
    assert msg["To"] == "later@example.org"
    path = link_in(msg, "confirm")
    page = signed_in.get(path)
    signed_in.post(path, data={"csrf_token": csrf_of(page.text)})
    engine = _engine(admin_settings)
    with Session(engine) as s:
        assert s.get(Subscriber, sid).status == "active"  # type: ignore[union-attr]
    engine.dispose()
    assert _audit(admin_settings)[-1].action == "resend-confirmation"


def test_an_action_without_csrf_changes_nothing(
    signed_in: TestClient, admin_settings: Settings
) -> None:
    sid = _add(admin_settings, "safe@example.org")
    r = signed_in.post(f"/admin/subscribers/{sid}/erase", data={"csrf_token": "forged"})
    assert r.status_code == 400
    assert signed_in.post(f"/admin/subscribers/{sid}/explode", data={}).status_code in (400, 404)
    engine = _engine(admin_settings)
    with Session(engine) as s:
        assert s.get(Subscriber, sid) is not None
    engine.dispose()
    assert [a.action for a in _audit(admin_settings)] == ["sign-in"]


def test_csv_export_and_import_use_the_cli_format(
    signed_in: TestClient, admin_settings: Settings
) -> None:
    _add(admin_settings, "one@example.org", keywords="llm, agents")
    r = signed_in.get("/admin/subscribers.csv")
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows == [
        list(csvio.HEADER),
        ["one@example.org", "llm;agents", "", "active", "daily", "", "", "", ""],
    ]
    page = signed_in.get("/admin/subscribers")
    body = (
        "email,keywords,categories,status\nnew@example.org,rl;bandits,cs.LG,pending\n"
        "one@example.org,,,active\nbad-address,,,active\n"
    )
    r = signed_in.post(
        "/admin/subscribers/import",
        data={"csrf_token": csrf_of(page.text)},
        files={"file": ("list.csv", body.encode(), "text/csv")},
    )
    assert r.status_code == 200
    assert "Imported 1, already present 1, suppressed 0, bad rows 1." in r.text
    assert "line 4:" in r.text
    engine = _engine(admin_settings)
    with Session(engine) as s:
        new = find(s, email="new@example.org")
        assert new is not None and new.keywords == ["rl", "bandits"] and new.status == "pending"
    engine.dispose()
    assert [a.action for a in _audit(admin_settings)][-2:] == ["export", "import"]
    r = signed_in.post(
        "/admin/subscribers/import",
        data={"csrf_token": csrf_of(page.text)},
        files={"file": ("x.csv", "\xff\xfe".encode("latin-1"), "text/csv")},
    )
    assert r.status_code == 400 and "not UTF-8" in r.text


def test_a_large_upload_passes_the_body_limit_only_on_the_import_path(
    signed_in: TestClient, admin_settings: Settings
) -> None:
    page = signed_in.get("/admin/subscribers")
    lines = "".join(f"bulk{i}@example.org,,,active\n" for i in range(4000))
    body = ("email,keywords,categories,status\n" + lines).encode()
    assert len(body) > 64 * 1024
    r = signed_in.post(
        "/admin/subscribers/import",
        data={"csrf_token": csrf_of(page.text)},
        files={"file": ("big.csv", body, "text/csv")},
    )
    assert r.status_code == 200 and "Imported 4000" in r.text
    assert signed_in.post("/subscribe", content=body).status_code == 413


# -- issues ----------------------------------------------------------------------------------


def test_issue_page_shows_papers_recipients_and_failures(
    signed_in: TestClient, admin_settings: Settings
) -> None:
    a = _add(admin_settings, "a@example.org")
    b = _add(admin_settings, "b@example.org")
    engine = _engine(admin_settings)
    seed_issue(
        engine,
        dt.date(2026, 5, 8),
        papers=3,
        deliveries={a: "sent", b: "failed"},
        title="<i>Attention</i>",
    )
    engine.dispose()
    html = signed_in.get("/admin/issues/2026-05-08").text
    assert "&lt;i&gt;Attention&lt;/i&gt; 0" in html and "<i>Attention" not in html
    assert '<td class="num" data-state="sent">1</td>' in html
    assert '<td class="num" data-state="failed">1</td>' in html
    assert "550 mailbox unavailable" in html
    assert re.search(r"a@example.org</a></td><td>sent</td><td class=\"num\">3</td>", html)
    assert signed_in.get("/admin/issues/2026-05-09").status_code == 404
    assert signed_in.get("/admin/issues/not-a-date").status_code == 404
    listing = signed_in.get("/admin/issues").text
    assert "/admin/issues/2026-05-08" in listing


def test_send_what_is_still_queued_runs_the_send_path(
    signed_in: TestClient, admin_settings: Settings
) -> None:
    a = _add(admin_settings, "a@example.org")
    b = _add(admin_settings, "b@example.org")
    engine = _engine(admin_settings)
    day = dt.date(2026, 5, 11)
    seed_issue(engine, day, deliveries={a: "queued", b: "queued"})
    page = signed_in.get(f"/admin/issues/{day}")
    assert "Send what is still queued" in page.text
    r = signed_in.post(
        f"/admin/issues/{day}/send",
        data={"csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert (r.status_code, r.headers["location"]) == (303, f"/admin/issues/{day}")
    senders = signed_in.app.state.admin_sends  # type: ignore[attr-defined]
    assert senders.join(day, timeout=30)
    with Session(engine) as s:
        states = sorted(d.status for d in s.exec(select(Delivery)))
    engine.dispose()
    assert states == ["sent", "sent"]
    assert sorted(m["To"] for m in outbox(admin_settings)) == ["a@example.org", "b@example.org"]
    html = signed_in.get(f"/admin/issues/{day}").text
    assert "Last send from this dashboard: sent 2, failed 0" in html
    assert "Everything of this issue is sent." in html and "send-queued" not in html
    assert _audit(admin_settings)[-1].action == "send"


# -- the migration and the pages' markup -----------------------------------------------------


def test_migration_0015_matches_the_models_and_downgrades(engine: Engine, tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext
    from sqlalchemy import inspect
    from sqlmodel import SQLModel

    from alembic import command
    from newsletter.db import alembic_dir, import_all_models, upgrade

    import_all_models()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert [d for d in diff if "admin_" in repr(d)] == []
    assert {"admin_audit", "admin_signin_failures"} <= set(inspect(engine).get_table_names())
    scratch = make_engine(f"sqlite:///{tmp_path}/scratch.db")
    upgrade(scratch)
    cfg = Config()
    cfg.set_main_option("script_location", str(alembic_dir()))
    with scratch.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0008")
    assert "admin_audit" not in inspect(scratch).get_table_names()
    upgrade(scratch)
    assert "admin_signin_failures" in inspect(scratch).get_table_names()
    scratch.dispose()


def test_dashboard_pages_hold_no_script_and_no_inline_style(
    signed_in: TestClient, admin_settings: Settings
) -> None:
    sid = _add(admin_settings, "page@example.org", active=False)
    engine = _engine(admin_settings)
    seed_issue(engine, dt.date(2026, 5, 13), deliveries={sid: "failed"})
    engine.dispose()
    paths = [
        "/admin",
        "/admin/subscribers",
        f"/admin/subscribers/{sid}",
        "/admin/issues",
        "/admin/issues/2026-05-13",
        "/admin/audit",
        "/admin/login",
    ]
    for path in paths:
        r = signed_in.get(path)
        assert r.status_code == 200, path
        assert "<script" not in r.text and 'style="' not in r.text and "<style" not in r.text
        assert "script-src" not in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-store"
