"""LaTeX reaches readers as Unicode (e-mail, web issue page, feeds); the Markdown archive keeps
the source. Checked on the recorded days in tests/data and through the real app."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from newsletter.archive import render_issue
from newsletter.config import Settings
from newsletter.db import make_engine
from newsletter.email.render import DigestRenderer, personalise
from newsletter.email.selection import SubscriberPrefs, select_all
from newsletter.latex import latex_to_text, latex_to_text_markdown
from newsletter.web.app import create_app
from tests.fixtures_email import make_view, recorded_papers, summary
from tests.fixtures_service import add_issue, add_paper
from tests.test_email_render import LINK_SUBS, SETTINGS
from tests.test_web_service import DAY, Tags, with_secrets

DATA = Path(__file__).resolve().parent / "data"
RECORDED = [
    DATA / "email" / "cs_lg_50_2026-04-21.xml",
    DATA / "arxiv" / "zotero-arxiv-daily_atom_cs.AI_2025-08-20_86entries_TRUNCATED.xml",
    DATA / "arxiv" / "distill_rss2_cs.LG_2026-04-27_3items_TRIMMED.xml",
]
# What must never reach a reader: LaTeX escapes, commands, and a "$" that is not a price.
LEFTOVER = re.compile(r"\\%|\\times|\\emph\{|\\[A-Za-z]+|\$(?![\d])")


@pytest.mark.parametrize(
    ("latex", "text"),
    [
        ("FG$^2$-GDN", "FG²-GDN"),
        ("up to 41.5\\% less", "up to 41.5% less"),
        ("by $2\\times$ to $20 \\times$.", "by 2× to 20×."),
        ("$O(\\max\\{\\omega^{-2}, n\\})$", "O(max{ω⁻², n})"),
        ("a \\emph{new} \\textsf{TS-Agent}", "a new TS-Agent"),
        ("$\\beta_t$ and $x_{10}$", "βₜ and x₁₀"),
        ("$a \\le b$, $\\mathcal{O}(\\sqrt{T})$", "a ≤ b, 𝒪(√(T))"),
        ("costs $800 per sample", "costs $800 per sample"),
        ("100% sure", "100% sure"),
        ("plain_text with ~ and ^", "plain_text with ~ and ^"),
    ],
)
def test_latex_becomes_unicode_text(latex: str, text: str) -> None:
    assert latex_to_text(latex) == text


def test_markdown_keeps_its_markup_and_loses_its_latex() -> None:
    md = "**Bold**: $O(n^2)$ vs 41.5\\% less, `code_x`"
    assert latex_to_text_markdown(md) == "**Bold**: O(n²) vs 41.5% less, `code_x`"


@given(st.text(alphabet=st.sampled_from("ab $\\{}^_%&#~-1"), max_size=40))
def test_any_text_converts_without_error(text: str) -> None:
    assert isinstance(latex_to_text(text), str)
    assert isinstance(latex_to_text_markdown(text), str)


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.name)
def test_recorded_days_read_without_latex(path: Path) -> None:
    entries = feedparser.parse(path).entries
    with_latex = 0
    for entry in entries:
        for source in (entry.title, entry.get("summary", "")):
            with_latex += "$" in source or "\\" in source
            shown = latex_to_text(source)
            assert not LEFTOVER.search(shown), (shown, LEFTOVER.search(shown))
    assert with_latex > 0  # the day does exercise the conversion


def _latex_day() -> tuple[Any, dict[str, Any], Any]:
    papers = [p for p in recorded_papers() if "$" in p.title + p.abstract or "\\" in p.abstract]
    view = make_view(papers, digest_ids=[p.arxiv_id for p in papers])
    summaries = {p.arxiv_id: summary("A $2\\times$ speed-up, 41.5\\% less memory.") for p in papers}
    return view, summaries, papers


def test_email_shows_unicode_maths() -> None:
    view, summaries, papers = _latex_day()
    assert any("FG$^2$-GDN" in p.title for p in papers)
    reader = SubscriberPrefs(1, "r@example.org", max_papers=len(papers))
    selection = select_all(view, [reader], SETTINGS)[1]
    renderer = DigestRenderer(SETTINGS)
    for include in (True, False):
        out = personalise(renderer.render(view, selection, summaries if include else {}), LINK_SUBS)
        text = "".join(Tags(out.html).text)
        assert "FG²-GDN" in text and "FG²-GDN" in out.text
        assert ("2× speed-up, 41.5% less memory" in text) is include
        for shown in (text, out.text, out.subject):
            assert not LEFTOVER.search(shown), LEFTOVER.search(shown)


def test_markdown_archive_keeps_the_latex_source() -> None:
    view, summaries, _ = _latex_day()
    md = render_issue(view, SETTINGS, summaries)
    # The source as written (backslash-escaped by newsletter.mdescape), never the Unicode form.
    assert "FG\\$^2\\$-GDN" in md and "FG²" not in md


@pytest.fixture
def latex_site(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    settings = with_secrets(make_settings())
    engine: Engine = make_engine(settings.database_url)
    _, _, papers = _latex_day()
    for p in papers:
        add_paper(engine, p.arxiv_id, title=p.title, abstract=p.abstract, authors=p.authors)
    add_issue(engine, DAY, [(p.arxiv_id, 1.0, [], n) for n, p in enumerate(papers, 1)])
    with TestClient(create_app(settings, engine=engine, migrate=False)) as client:
        yield client
    engine.dispose()


def test_web_issue_page_and_feeds_show_unicode_maths(latex_site: TestClient) -> None:
    page = Tags(latex_site.get(f"/archive/{DAY.isoformat()}").text)
    text = "".join(page.text)
    assert "FG²-GDN" in text
    assert not LEFTOVER.search(text), LEFTOVER.search(text)
    for path in ("/feed.xml", "/feed.atom"):
        parsed = feedparser.parse(latex_site.get(path).content)
        assert parsed.bozo == 0
        shown = " ".join(f"{e.title} {e.summary}" for e in parsed.entries)
        assert "FG²-GDN" in shown
        assert not LEFTOVER.search(shown), LEFTOVER.search(shown)
