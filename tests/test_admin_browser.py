"""The operator in headless Chromium against `newsletter serve`: sign in with the token, every
dashboard page renders with no console error and no CSP violation (at 375 px too), the overview's
counts equal the database's, actions change the store and are recorded, CSV goes both ways, the
queued send runs, the session signs out and expires, a wrong token is throttled."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlmodel import Session, select

from newsletter.db import make_engine, session_scope
from newsletter.delivery.models import Delivery
from newsletter.web.admin.models import AdminAudit
from newsletter.web.admin.throttle import PER_CLIENT
from subscribers import csvio, service
from subscribers.models import Subscriber
from tests.admin_helpers import ADMIN_TOKEN, is_suppressed, seed_issue
from tests.live_server import free_port, live_serve, serve_env
from tests.subscriber_helpers import SECRET
from tests.test_web_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium

pytestmark = pytest.mark.browser
DAY = dt.date(2026, 5, 12)


@contextmanager
def serving(tmp_path: Path, session_hours: float = 12.0) -> Iterator[tuple[str, str]]:
    """`newsletter serve` with an admin token; yields its URL and database URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database_url = f"sqlite:///{tmp_path}/admin.db"
    env = serve_env(
        url,
        {
            "NEWSLETTER_SECRET_KEY": SECRET,
            "NEWSLETTER_ADMIN_TOKEN": ADMIN_TOKEN,
            "NEWSLETTER_WEB__ADMIN_SESSION_HOURS": str(session_hours),
            "NEWSLETTER_DATABASE_URL": database_url,
            "NEWSLETTER_DELIVERY__OUTBOX_DIR": str(tmp_path / "outbox"),
            "NEWSLETTER_CATEGORIES": "cs.AI,cs.CL,cs.LG",
        },
    )
    with live_serve(port, env, tmp_path, ready_path="/admin/login"):
        yield url, database_url


def _seed(database_url: str) -> dict[str, int]:
    """Subscribers in every state, an issue with two queued deliveries; returns some ids."""
    from newsletter.config import settings_for_tests

    settings = settings_for_tests(database_url=database_url, categories=["cs.AI", "cs.CL", "cs.LG"])
    rows = ["email,keywords,categories,status"]
    rows += [f"reader{i}@example.org,,cs.LG,active" for i in range(12)]
    rows += [f"waiting{i}@example.org,,,pending" for i in range(3)]
    rows.append("needle@example.org,<script>alert(1)</script>,,active")
    engine = make_engine(database_url)
    with session_scope(engine) as s:
        csvio.import_csv(s, settings=settings, source=rows)
        ids = {sub.email: sub.id or 0 for sub in s.exec(select(Subscriber))}
        service.unsubscribe(s, subscriber_id=ids["reader0@example.org"])
        service.suppress(s, reason="bounced", subscriber_id=ids["reader1@example.org"])
        service.suppress(s, reason="complained", subscriber_id=ids["reader2@example.org"])
    seed_issue(
        engine,
        DAY,
        papers=4,
        deliveries={ids["reader3@example.org"]: "queued", ids["reader4@example.org"]: "queued"},
        title="<em>Sparse</em> attention",
    )
    engine.dispose()
    return ids


def _truth(database_url: str) -> dict[str, int]:
    engine = make_engine(database_url)
    with Session(engine) as s:
        counts = service.count_by_status(s)
    engine.dispose()
    return counts


def _wait_for(check, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        time.sleep(0.1)


def test_the_operator_dashboard_in_chromium(tmp_path: Path, artifacts_dir: Path) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    shots = artifacts_dir / "admin"
    shots.mkdir(parents=True, exist_ok=True)
    with serving(tmp_path) as (url, database_url):
        ids = _seed(database_url)
        needle = ids["needle@example.org"]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1100, "height": 1000})
                page = context.new_page()
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))

                page.goto(url + "/admin")
                assert page.url == url + "/admin/login"
                page.fill("#token", ADMIN_TOKEN)
                page.click("button[type=submit]")
                page.wait_for_selector("h1:has-text('Overview')")
                page.screenshot(path=str(shots / "01-overview.png"), full_page=True)
                truth = _truth(database_url)
                for status in ("active", "pending", "unsubscribed", "bounced", "complained"):
                    cell = page.text_content(f"td[data-status={status}]")
                    assert int(cell or "-1") == truth.get(status, 0), status
                assert int(page.text_content("td[data-status=total]") or 0) == 16
                assert page.locator("#activity svg polyline").count() == 5
                assert "No postal address" in (page.text_content("#warnings") or "")

                page.click("header nav >> text=Subscribers")
                page.fill("#q", "needle")
                page.click("form.search button")
                page.wait_for_selector("#result-count:has-text('1 subscriber')")
                page.screenshot(path=str(shots / "02-search.png"), full_page=True)
                page.click("#results a")
                page.wait_for_selector("h1:has-text('needle@example.org')")
                assert "<script>alert(1)</script>" in (page.text_content("#profile") or "")
                page.click("#do-suppress")
                page.wait_for_selector("text=Suppressed: this address will not be mailed again.")
                assert page.text_content("#sub-status") == "unsubscribed"
                page.screenshot(path=str(shots / "03-subscriber.png"), full_page=True)
                engine = make_engine(database_url)
                with Session(engine) as s:
                    assert is_suppressed(s, email="needle@example.org")
                    log = s.exec(select(AdminAudit).where(AdminAudit.subscriber_id == needle)).all()
                    assert [a.action for a in log] == ["suppress"]

                page.goto(url + f"/admin/subscribers/{ids['waiting0@example.org']}")
                page.check("#confirm-erase")
                page.click("#do-erase")
                page.wait_for_selector("h1:has-text('erased')")
                with Session(engine) as s:
                    assert s.get(Subscriber, ids["waiting0@example.org"]) is None

                page.goto(url + "/admin/subscribers")
                with page.expect_download() as download:
                    page.click("#export-all")
                exported = Path(download.value.path()).read_text(encoding="utf-8")
                assert exported.splitlines()[0] == ",".join(csvio.HEADER)
                assert len(exported.splitlines()) == 16  # header + 15 (one was erased)
                upload = tmp_path / "more.csv"
                upload.write_text("email,keywords,categories,status\nfresh@example.org,,,active\n")
                page.set_input_files("#file", str(upload))
                page.click("#csv button[type=submit]")
                page.wait_for_selector("#import-report")
                assert "Imported 1," in (page.text_content("#import-report") or "")

                page.click("header nav >> text=Issues")
                page.click(f"text={DAY.isoformat()}")
                page.wait_for_selector(f"h1:has-text('Issue of {DAY.isoformat()}')")
                assert "<em>Sparse</em> attention 0" in (page.text_content("#papers") or "")
                page.screenshot(path=str(shots / "04-issue-before.png"), full_page=True)
                page.click("#send-queued")

                active = _truth(database_url)["active"]  # reader3..11 and fresh@
                assert active == 10

                def sent() -> bool:
                    with Session(engine) as s:
                        states = [d.status for d in s.exec(select(Delivery))]
                    return states.count("sent") == active

                _wait_for(sent)
                page.goto(url + f"/admin/issues/{DAY.isoformat()}")
                page.wait_for_selector("#send-result")
                page.screenshot(path=str(shots / "05-issue-sent.png"), full_page=True)
                engine.dispose()

                page.click("header nav >> text=Overview")  # 10 sent, 1 complaint, 1 bounce
                warnings = page.text_content("#warnings") or ""
                assert (
                    "Spam complaint rate 10.00 %" in warnings and "Bounce rate 10.00 %" in warnings
                )

                page.click("header nav >> text=Audit")
                audit = page.text_content("#audit") or ""
                for action in ("sign-in", "suppress", "erase", "export", "import", "send"):
                    assert action in audit, action

                mobile = context.new_page()  # same cookies
                mobile.set_viewport_size({"width": 375, "height": 800})
                mobile.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                for n, path in enumerate(
                    [
                        "/admin",
                        "/admin/subscribers",
                        f"/admin/subscribers/{needle}",
                        "/admin/issues",
                        f"/admin/issues/{DAY.isoformat()}",
                        "/admin/audit",
                    ]
                ):
                    mobile.goto(url + path)
                    assert mobile.url == url + path  # the session cookie is shared
                    width = mobile.evaluate("document.documentElement.scrollWidth")
                    mobile.screenshot(path=str(shots / f"06-mobile-{n}.png"), full_page=True)
                    assert width <= 375, (path, width)
                assert errors == []  # no console error, no CSP violation on any page

                page.click("header nav >> text=Sign out")
                page.wait_for_selector("h1:has-text('Operator sign-in')")
                for path in ("/admin", "/admin/subscribers", "/admin/audit"):
                    page.goto(url + path)
                    assert page.url == url + "/admin/login", path

                for _ in range(PER_CLIENT):
                    page.fill("#token", "guess-" + ADMIN_TOKEN)
                    page.click("button[type=submit]")
                    page.wait_for_selector("text=That is not the admin token.")
                page.fill("#token", ADMIN_TOKEN)
                page.click("button[type=submit]")
                page.wait_for_selector("text=Too many failed sign-ins.")
                page.screenshot(path=str(shots / "07-throttled.png"), full_page=True)
                page.goto(url + "/admin")
                assert page.url == url + "/admin/login"
            finally:
                browser.close()


def test_the_session_expires_in_chromium(tmp_path: Path) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with serving(tmp_path, session_hours=0.0005) as (url, _), sync_playwright() as pw:  # 1.8 s
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url + "/admin/login")
            page.fill("#token", ADMIN_TOKEN)
            page.click("button[type=submit]")
            page.wait_for_selector("h1:has-text('Overview')")

            def signed_out() -> bool:
                page.goto(url + "/admin/subscribers")
                return page.url == url + "/admin/login"

            _wait_for(signed_out, timeout=15)
        finally:
            browser.close()
