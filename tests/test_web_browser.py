"""A person in headless Chromium against `newsletter serve`: sign up, confirm from the outbox,
change preferences, unsubscribe. Screenshots are kept in the artifacts directory (see conftest)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from newsletter.config import settings_for_tests
from tests.live_server import free_port, live_serve, serve_env
from tests.subscriber_helpers import SECRET, link_in, wait_for_outbox

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


def _require_chromium() -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is not installed (run scripts/test-deps.sh)")
        pytest.skip("Debian's chromium is not installed; run scripts/test-deps.sh")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`newsletter serve` in a subprocess on SQLite; yields its URL and the outbox folder."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    outbox_dir = tmp_path / "outbox"
    env = serve_env(
        url,
        {
            "NEWSLETTER_SECRET_KEY": SECRET,
            "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path}/web.db",
            "NEWSLETTER_DELIVERY__OUTBOX_DIR": str(outbox_dir),
            "NEWSLETTER_CATEGORIES": "cs.AI,cs.CL,cs.LG",
        },
    )
    with live_serve(port, env, tmp_path):
        yield url, outbox_dir


def test_signup_confirm_preferences_unsubscribe_in_chromium(
    server: tuple[str, Path], artifacts_dir: Path
) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    url, outbox_dir = server
    shots = artifacts_dir / "subscribers"
    shots.mkdir(parents=True, exist_ok=True)
    mail_settings = settings_for_tests(delivery={"outbox_dir": str(outbox_dir)})
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 1000})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url + "/")
            page.screenshot(path=str(shots / "01-home.png"), full_page=True)
            page.fill("#email", "Browser.User@Example.org")
            page.fill("#keywords", "diffusion models, <b>graphs</b>")
            page.check("input[name=categories][value='cs.LG']")
            page.click("button[type=submit]")
            page.wait_for_selector("text=Check your inbox")
            page.screenshot(path=str(shots / "02-check-inbox.png"), full_page=True)

            [msg] = wait_for_outbox(mail_settings, 1)
            assert msg["To"] == "Browser.User@example.org"
            page.goto(url + link_in(msg, "confirm"))
            page.screenshot(path=str(shots / "03-confirm.png"), full_page=True)
            page.click("text=Yes, subscribe me")
            page.wait_for_selector("h1:has-text('You are subscribed')")
            page.screenshot(path=str(shots / "04-subscribed.png"), full_page=True)

            page.click("text=Choose your preferences")
            assert page.input_value("#keywords") == "diffusion models, <b>graphs</b>"
            assert page.is_checked("input[name=categories][value='cs.LG']")
            page.fill("#keywords", "reinforcement learning")
            page.check("input[name=categories][value='cs.AI']")
            page.fill("#max_papers", "8")
            page.uncheck("input[name=include_summaries]")
            page.click("text=Save preferences")
            page.wait_for_selector("text=Your preferences are saved")
            assert page.input_value("#keywords") == "reinforcement learning"
            assert page.input_value("#max_papers") == "8"
            assert not page.is_checked("input[name=include_summaries]")
            page.screenshot(path=str(shots / "05-preferences-saved.png"), full_page=True)

            page.click("text=Unsubscribe")
            page.wait_for_selector("text=Stop sending")
            page.screenshot(path=str(shots / "06-unsubscribe.png"), full_page=True)
            page.click("button:has-text('Unsubscribe')")
            page.wait_for_selector("h1:has-text('You are unsubscribed')")
            page.screenshot(path=str(shots / "07-unsubscribed.png"), full_page=True)

            mobile = browser.new_page(viewport={"width": 375, "height": 800})
            mobile.goto(url + "/")
            width = mobile.evaluate("document.documentElement.scrollWidth")
            mobile.screenshot(path=str(shots / "08-home-375px.png"), full_page=True)
            assert width <= 375
            assert errors == []  # e.g. no CSP violation reported by the browser
        finally:
            browser.close()
    status = httpx.get(url + "/").status_code
    assert status == 200
