from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

from fixtures_pipeline import recorded_papers, retyped
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from newsletter.archive import render_index, render_issue, write_index, write_issue
from newsletter.config import Settings
from newsletter.domain import IssueEntry, IssueView, Paper, Summary
from newsletter.issue_store import IssueSummary
from newsletter.mdescape import md_block, md_inline

D = dt.date(2026, 4, 21)
# The tags our own templates produce; anything else in the HTML came from data.
OWN_TAGS = {
    "h1",
    "h2",
    "h3",
    "h4",
    "p",
    "ul",
    "li",
    "strong",
    "a",
    "hr",
    "br",
    "details",
    "summary",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
_md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])

HOSTILE_TITLE = (
    "AM$^3$Safety <script>alert(1)</script> [x](javascript:alert(1)) **bold** ($\\lambda$)"
)
HOSTILE_ABSTRACT = (
    "We study\nRL (see https://evil.example/x and www.evil.example).\n\n"
    "# Not a heading\n1. not a list\n<img src=x onerror=alert(1)>\n"
    "| a | b |\n---\n```\ncode\n```\n&lt;b&gt; [link][1]\n\n[1]: https://evil.example"
)


def _entry(paper: Paper, rank: int | None, score: float = 11.0) -> IssueEntry:
    return IssueEntry(paper=paper, score=score, matched_keywords=("LLM", "RL"), rank=rank)


def _view(papers: list[Paper]) -> IssueView:
    entries = tuple(_entry(p, i) for i, p in enumerate(papers, 1))
    return IssueView(
        date=D, papers_found=50, categories=("cs.AI", "cs.LG"), digest=entries, pool=entries
    )


def _tags(html: str) -> set[str]:
    return set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", html))


def _hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


def test_issue_page_has_the_old_bots_layout(make_settings: Callable[..., Settings]) -> None:
    paper = recorded_papers()[0]
    text = render_issue(_view([paper]), make_settings())
    assert "- **Date**: 2026-04-21" in text
    assert "- **Papers announced**: 50" in text
    assert "- **Categories**: cs.AI, cs.LG" in text
    assert f"### 1. [{md_inline(paper.title)}](https://arxiv.org/abs/{paper.arxiv_id})" in text
    lines = text.splitlines()
    start = lines.index("**Authors**: " + md_inline(", ".join(paper.authors)) + "  ")
    assert [line.split(":")[0] for line in lines[start : start + 7]] == [
        "**Authors**",
        "**Category**",
        "**Published**",
        "**Score**",
        "**Type**",
        "**ArXiv ID**",
        "**Matched keywords**",
    ]
    assert all(line.endswith("  ") for line in lines[start : start + 6])
    assert "**Score**: 11.0  " in lines and "**Published**: 2026-04-21  " in lines
    assert f"**ArXiv ID**: {paper.versioned_id}  " in lines
    assert "**Matched keywords**: LLM, RL" in lines
    assert "#### Abstract" in lines and "<details>" not in text


def test_hostile_title_and_abstract_render_as_text(
    make_settings: Callable[..., Settings], artifacts_dir: Path
) -> None:
    paper = retyped(
        recorded_papers()[0],
        title=HOSTILE_TITLE,
        abstract=HOSTILE_ABSTRACT,
        authors=("A <b>Bad</b> [Author](http://x)", "B_b*"),
    )
    summary = Summary(
        tldr="TL;DR with <script>x</script> and [a link](https://evil.example)",
        sections={
            "contributions": "- one\n- two <iframe>",
            "results": "## heading\n**ok**",
            "method": "",
            "conclusions": "javascript:alert(1)",
        },
        model="qwen-long",
    )
    text = render_issue(_view([paper]), make_settings(), {paper.arxiv_id: summary})
    (artifacts_dir / "archive-hostile.md").write_text(text, encoding="utf-8")
    html = _md.render(text)
    assert _tags(html) <= OWN_TAGS
    assert "<script" not in html and "<img" not in html and "<iframe" not in html
    assert _hrefs(html) == [paper.abs_url]
    assert html.count("<h3>") == 1 and html.count("<h1>") == 1  # no injected heading
    assert "<table>" not in html and "<pre>" not in html and "<ol" not in html
    # readable: the title's characters are all there, in order
    plain = re.sub(r"<[^>]+>", "", html)
    assert "AM$^3$Safety &lt;script&gt;alert(1)&lt;/script&gt;" in plain
    assert "($\\lambda$)" in plain and "We study RL (see https://evil.example/x" in plain
    assert "<summary>AI summary (qwen-long)</summary>" in html
    assert "- one<br />\n- two &lt;iframe&gt;" in html


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80))
def test_any_title_survives_rendering_as_plain_text(title: str) -> None:
    html = _md.render(f"### 1. [{md_inline(title)}](https://arxiv.org/abs/1)\n\n{md_block(title)}")
    assert _tags(html) <= {"h3", "a", "p"}
    assert _hrefs(html) == ["https://arxiv.org/abs/1"]
    heading = re.search(r"<a [^>]*>(.*)</a>", html, re.S)
    assert heading is not None
    folded = " ".join(re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", title).split())
    unescaped = re.sub(r"<[^>]+>", "", heading.group(1))
    for old, new in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&amp;", "&")):
        unescaped = unescaped.replace(old, new)
    assert unescaped == folded


def test_written_files_and_index(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    s = make_settings()
    papers = list(recorded_papers()[:3])
    path = write_issue(s, _view(papers))
    assert path == Path(s.archive_dir) / "2026-04-21.md"
    assert path.read_text(encoding="utf-8").count("\n### ") == 3
    issues = [
        IssueSummary(D, 50, 3, 40, "built"),
        IssueSummary(D + dt.timedelta(days=1), 60, 5, 55, "built"),
    ]
    index = write_index(s, issues)
    text = index.read_text(encoding="utf-8")
    assert text.index("[2026-04-22](2026-04-22.md)") < text.index("[2026-04-21](2026-04-21.md)")
    assert "| [2026-04-22](2026-04-22.md) | 60 | 5 |" in text
    assert not list(Path(s.archive_dir).glob("*.tmp"))
    assert render_index([], s).count("|") == 8  # header only
