"""The profile on the preferences page in headless Chromium against `newsletter serve`:
interests, a typed paper and a BibTeX upload (fetched from the replayed arXiv), authors;
remove an example; a 5 MB file is refused with a message and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.arxiv.replay import ReplayServer, demo_server
from newsletter.config import settings_for_tests
from newsletter.db import make_engine, session_scope
from subscribers import service
from subscribers.links import preferences_url
from subscribers.models import Subscriber
from tests.live_server import free_port, live_serve, serve_env
from tests.subscriber_helpers import SECRET, with_secret
from tests.test_web_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium

pytestmark = pytest.mark.browser


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], ReplayServer]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with demo_server() as arxiv:
        env = serve_env(
            url,
            {
                "NEWSLETTER_SECRET_KEY": SECRET,
                "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path}/web.db",
                "NEWSLETTER_CATEGORIES": "cs.AI,cs.LG",
                "NEWSLETTER_ARXIV__API_URL": arxiv.api_url,
                "NEWSLETTER_ARXIV__DELAY_SECONDS": "0",
            },
        )
        with live_serve(port, env, tmp_path):
            engine = make_engine(env["NEWSLETTER_DATABASE_URL"])  # migrated by the server
            with session_scope(engine) as session:
                service.add(
                    session, settings=settings_for_tests(), email="reader@example.org", active=True
                )
            engine.dispose()
            yield url, env, arxiv


def test_profile_on_the_preferences_page_in_chromium(
    site: tuple[str, dict[str, str], ReplayServer], tmp_path: Path, artifacts_dir: Path
) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    url, env, arxiv = site
    a, b = arxiv.entries[3], arxiv.entries[4]
    bib = tmp_path / "library.bib"
    bib.write_text(f"@article{{k, title={{{b.title}}}, eprint={{{b.arxiv_id}}}}}\n")
    huge = tmp_path / "huge.bib"
    huge.write_bytes(b"@misc{x, eprint={2604.19453}}\n" * 180_000)
    settings = with_secret(settings_for_tests(base_url=url))
    engine = make_engine(env["NEWSLETTER_DATABASE_URL"])
    with session_scope(engine) as session:
        reader = session.get(Subscriber, 1)
        assert reader is not None
        key = reader.link_key
    engine.dispose()
    prefs = preferences_url(settings, 1, key)
    shots = artifacts_dir / "relevance"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 1400})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(prefs)
            page.fill("#interests", "Graph neural networks <i>for</i> molecules")
            page.fill("#papers", f"https://arxiv.org/abs/{a.arxiv_id}v1")
            page.fill("#authors", "Ada Lovelace\nAlan Turing")
            page.set_input_files("#upload", str(bib))
            page.click("text=Save what you read")
            page.wait_for_selector("text=Your preferences are saved")
            page.screenshot(path=str(shots / "01-profile-saved.png"), full_page=True)
            assert page.input_value("#interests") == "Graph neural networks <i>for</i> molecules"
            assert page.input_value("#papers") == f"{a.arxiv_id}\n{b.arxiv_id}"
            assert page.input_value("#authors") == "Ada Lovelace\nAlan Turing"
            items = page.locator("ul.examples li")
            assert items.count() == 2
            assert " ".join(a.title.split()) in items.nth(0).inner_text()

            page.click(f"button[aria-label='Remove {a.arxiv_id}']")
            page.wait_for_selector("text=Your preferences are saved")
            assert page.locator("ul.examples li").count() == 1
            assert page.input_value("#papers") == b.arxiv_id

            page.set_input_files("#upload", str(huge))
            page.click("text=Save what you read")
            page.wait_for_selector("[role=alert]")
            assert "larger than" in page.inner_text("[role=alert]")
            page.screenshot(path=str(shots / "02-upload-too-large.png"), full_page=True)
            page.goto(prefs)
            assert page.locator("ul.examples li").count() == 1
            # The refused upload's 400 is the only error the browser reports (no CSP violation).
            assert [e for e in errors if "status of 400" not in e] == []
        finally:
            browser.close()
