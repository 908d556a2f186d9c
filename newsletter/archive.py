"""The Markdown archive: ``{archive_dir}/{YYYY-MM-DD}.md`` per issue plus a README index.

The layout follows the old bot's README (statistics block, then ``### N. [Title](link)`` and the
``**Authors**:`` ... ``**ArXiv ID**:`` lines). Templates live in ``templates/markdown/``; every
value they print passes through the Markdown escaper unless it is ``MdSafe`` (written by us).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from newsletter.config import Settings
from newsletter.domain import SUMMARY_SECTIONS, IssueEntry, IssueView, Summary
from newsletter.issue_store import IssueSummary
from newsletter.mdescape import MdSafe, md_block, md_inline, md_url
from newsletter.paths import templates_dir

INDEX_NAME = "README.md"
SECTION_LABELS = {
    "contributions": "Main contributions",
    "method": "Method and experimental setup",
    "results": "Main results",
    "conclusions": "Conclusions",
}


def _finalize(value: Any) -> Any:
    """Markdown autoescaping: anything not marked safe is escaped on output."""
    if isinstance(value, MdSafe):
        return value
    return md_inline("" if value is None else str(value))


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir() / "markdown"),
        autoescape=False,  # Markdown, not HTML: _finalize escapes instead
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def issue_filename(date: Any) -> str:
    return f"{date.isoformat()}.md"


def _summary_context(summary: Summary) -> dict[str, Any]:
    sections = [
        (SECTION_LABELS.get(name, name), md_block(summary.sections.get(name), keep_lines=True))
        for name in SUMMARY_SECTIONS
        if (summary.sections.get(name) or "").strip()
    ]
    return {"model": summary.model, "tldr": summary.tldr, "sections": sections}


def _entry_context(n: int, entry: IssueEntry, summary: Summary | None) -> dict[str, Any]:
    paper = entry.paper
    others = [c for c in paper.categories if c != paper.primary_category]
    category = paper.primary_category + (f" (also {', '.join(others)})" if others else "")
    kind = entry.announce_type + (" (updated)" if entry.is_update else "")
    return {
        "n": n,
        "title": paper.title,
        "url": md_url(paper.abs_url),
        "authors": ", ".join(paper.authors),
        "category": category,
        "published": paper.published.date().isoformat(),
        "score": f"{entry.score:.1f}",
        "type": kind,
        "arxiv_id": paper.versioned_id,
        "keywords": ", ".join(entry.matched_keywords) or "none",
        "abstract": md_block(paper.abstract),
        "summary": _summary_context(summary) if summary is not None else None,
    }


def render_issue(
    view: IssueView, settings: Settings, summaries: Mapping[str, Summary] | None = None
) -> str:
    """The issue's Markdown page (pure). ``summaries`` are keyed by arXiv id without version."""
    found = summaries or {}
    entries = [
        _entry_context(n, e, found.get(e.paper.arxiv_id)) for n, e in enumerate(view.digest, 1)
    ]
    return (
        _environment()
        .get_template("issue.md.j2")
        .render(
            site_name=settings.site_name,
            date=view.date.isoformat(),
            papers_found=view.papers_found,
            matched=sum(1 for e in view.pool if e.matched_keywords),
            selected=len(view.digest),
            categories=", ".join(view.categories),
            entries=entries,
        )
    )


def render_index(issues: Sequence[IssueSummary], settings: Settings) -> str:
    """The archive's README.md: every issue newest first, with links (pure)."""
    rows = sorted(issues, key=lambda i: i.date, reverse=True)
    return (
        _environment()
        .get_template("index.md.j2")
        .render(
            site_name=settings.site_name,
            issues=[
                {
                    "date": i.date.isoformat(),
                    "link": MdSafe(issue_filename(i.date)),
                    "papers_found": i.papers_found,
                    "papers_selected": i.papers_selected,
                }
                for i in rows
            ],
        )
    )


def atomic_write(path: Path, text: str) -> None:
    """Write via a temp file in the same directory and rename: readers never see half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_issue(
    settings: Settings, view: IssueView, summaries: Mapping[str, Summary] | None = None
) -> Path:
    """Write ``{archive_dir}/{date}.md``; returns its path."""
    path = Path(settings.archive_dir) / issue_filename(view.date)
    atomic_write(path, render_issue(view, settings, summaries))
    return path


def write_index(settings: Settings, issues: Sequence[IssueSummary]) -> Path:
    """Write ``{archive_dir}/README.md``; returns its path."""
    path = Path(settings.archive_dir) / INDEX_NAME
    atomic_write(path, render_index(issues, settings))
    return path
