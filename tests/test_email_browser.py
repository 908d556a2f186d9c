"""The rendered digest in a real browser (Debian's chromium): fits a phone and a desktop."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from newsletter.config import settings_for_tests
from newsletter.email.render import (
    DigestRenderer,
    link_substitutions,
    personalise,
    shared_content,
)
from newsletter.email.selection import SubscriberPrefs, select_all
from newsletter.email.shared import with_feedback
from tests.fixtures_email import make_view, recorded_papers, summary, with_title

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LINKS = {
    "unsubscribe_url": "https://digest.example.org/unsubscribe/tok-u",
    "preferences_url": "https://digest.example.org/preferences/tok-p",
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"chromium not found at {CHROMIUM}")
        pytest.skip(f"chromium not found at {CHROMIUM} (run scripts/test-deps.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _digest_html() -> tuple[str, list[str]]:
    """A realistic digest: 6 recorded papers, a long unbreakable title, one TL;DR with Markdown."""
    papers = recorded_papers()
    papers[0] = with_title(
        papers[0], papers[0].title + " Supercalifragilistic" + "X" * 60 + " $\\mathcal{O}(n^2)$"
    )
    view = make_view(papers)
    settings = settings_for_tests(
        base_url="https://digest.example.org",
        email={"postal_address": "Example Lab, 1 Main Street, 12345 Springfield"},
    )
    prefs = SubscriberPrefs(
        id=1,
        email="reader@example.org",
        keywords=("reinforcement learning", "LLM", "diffusion", "graph neural network"),
        max_papers=6,
    )
    selection = select_all(view, [prefs], settings)[1]
    first = selection.entries[0].paper.arxiv_id
    tldr = (
        "Trains an LLM to reason over **text-rich networks** with reinforcement learning alone, "
        "no supervised warm-up; beats SFT baselines on *six* benchmarks."
    )
    # Exactly what a reader gets: the shared body, their substitutions, then the sections.
    body = DigestRenderer(settings).shared(view, {first: summary(tldr)}, True)
    subs = with_feedback({**body.substitutions(selection), **link_substitutions(LINKS)}, "7.sig")
    html = personalise(shared_content(body), subs).html
    expected = [*LINKS.values(), f"{settings.base_url}/archive"]
    for e in selection.entries:
        p = e.paper
        expected += [
            p.abs_url,
            p.pdf_url,
            p.html_url,
            f"{settings.base_url}/archive/{view.date.isoformat()}#{p.arxiv_id}",
        ]
    return html, expected


@pytest.mark.parametrize("width", [375, 800])
def test_digest_fits_viewport_and_keeps_every_link(
    browser: Any, artifacts_dir: Path, width: int
) -> None:
    html, expected = _digest_html()
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    outside: list[str] = []

    def block(route: Any) -> None:
        outside.append(route.request.url)
        route.abort()

    page.route("http*://**", block)
    page.set_content(html, wait_until="load")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    inner_width = page.evaluate("window.innerWidth")
    hrefs = set(page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"))
    page.screenshot(path=str(artifacts_dir / f"email-digest-{width}px.png"), full_page=True)
    (artifacts_dir / "email-digest.html").write_text(html, encoding="utf-8")
    context.close()

    assert scroll_width <= inner_width, f"horizontal scrolling at {width}px"
    missing = [u for u in expected if u not in hrefs]
    assert not missing, missing
    assert outside == [], f"the e-mail loads remote resources: {outside}"


_CONTRAST = """
(pairs) => {
  const rgb = (s) => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = (c) => {
    const [r, g, b] = c.map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => {
    const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  return pairs.map(([fg, bg]) => {
    const f = document.querySelector(fg), b = document.querySelector(bg);
    return [fg, ratio(rgb(getComputedStyle(f).color), rgb(getComputedStyle(b).backgroundColor))];
  });
}
"""
# Text and the box it sits on: title, body, metadata, chip, TL;DR, links.
_PAIRS = [
    [".ti a", ".box"],
    [".au", ".box"],
    [".meta", ".box"],
    [".chip", ".chip"],
    [".tldr p:not(.lbl)", ".tldr"],
    [".links a", ".box"],
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_digest_keeps_contrast_in_light_and_dark_mode(
    browser: Any, artifacts_dir: Path, scheme: str
) -> None:
    html, _ = _digest_html()
    assert 'content="light dark" name=color-scheme' in html
    for width in (375, 800):
        context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
        page = context.new_page()
        page.set_content(html, wait_until="load")
        ratios = dict(page.evaluate(_CONTRAST, _PAIRS))
        box = page.eval_on_selector(".box", "e => getComputedStyle(e).backgroundColor")
        page.screenshot(
            path=str(artifacts_dir / f"email-digest-{width}px-{scheme}.png"), full_page=True
        )
        context.close()
        assert (box == "rgb(255, 255, 255)") is (scheme == "light"), box
        low = {sel: round(r, 2) for sel, r in ratios.items() if r < 4.5}
        assert not low, f"text below WCAG AA contrast in {scheme} mode: {low}"
