"""The web archive: ``/archive`` (every issue, newest first), ``/archive/{date}`` (the issue as
a page, anchors per arXiv id so e-mails can link ``#<id>``) and ``/archive/{date}.md``."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from markupsafe import Markup
from starlette.responses import FileResponse, Response

from newsletter.archive import issue_filename
from newsletter.domain import IssueEntry, IssueView, Summary
from newsletter.issue_store import list_issues, load_issue
from newsletter.latex import latex_to_text, latex_to_text_markdown
from newsletter.sanitize import markdown_to_safe_html
from newsletter.summaries import cached_summaries
from newsletter.web.deps import SessionDep, SettingsDep
from newsletter.web.feedback_routes import feedback_base
from newsletter.web.pages import render

router = APIRouter()

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SECTION_TITLES = {
    "contributions": "Contributions",
    "method": "Method and setup",
    "results": "Results",
    "conclusions": "Conclusions",
}


def parse_issue_date(text: str) -> dt.date:
    """Only YYYY-MM-DD names an issue; anything else (``..``, slashes, other forms) is a 404."""
    if not _DATE.match(text):
        raise HTTPException(status_code=404)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise HTTPException(status_code=404) from None


def _entry_context(entry: IssueEntry, summary: Summary | None) -> dict[str, Any]:
    paper = entry.paper
    sections = []
    if summary is not None:
        for key, title in SECTION_TITLES.items():
            body = summary.sections.get(key, "")
            if body.strip():
                html = markdown_to_safe_html(latex_to_text_markdown(body))
                sections.append((title, Markup(html)))
    return {
        "id": paper.arxiv_id,
        "rank": entry.rank,
        "title": " ".join(latex_to_text(paper.title).split()),
        "authors": ", ".join(latex_to_text(a) for a in paper.authors),
        "primary_category": paper.primary_category,
        "categories": paper.categories,
        "score": f"{entry.score:.1f}",
        "keywords": entry.matched_keywords,
        "is_update": entry.is_update,
        "abstract": latex_to_text(paper.abstract),
        "abs_url": paper.abs_url,
        "pdf_url": paper.pdf_url,
        "html_url": paper.html_url,
        "tldr": latex_to_text_markdown(summary.tldr) if summary is not None else None,
        "sections": sections,
    }


def issue_context(view: IssueView, summaries: dict[str, Summary]) -> dict[str, Any]:
    """The page's data: the ranked digest first, then the rest of the day's candidates."""
    in_digest = {e.paper.arxiv_id for e in view.digest}
    others = [e for e in view.pool if e.paper.arxiv_id not in in_digest]
    others.sort(key=lambda e: -e.score)
    return {
        "date": view.date.isoformat(),
        "papers_found": view.papers_found,
        "categories": view.categories,
        "digest": [_entry_context(e, summaries.get(e.paper.arxiv_id)) for e in view.digest],
        "others": [_entry_context(e, summaries.get(e.paper.arxiv_id)) for e in others],
    }


@router.get("/archive")
def archive_index(request: Request, session: SessionDep) -> Response:
    issues = list_issues(session)
    return render(request, "web/archive_index.html", {"issues": issues}, with_csrf=False)


@router.get("/archive/{date}.md")
def archive_markdown(date: str, settings: SettingsDep) -> Response:
    day = parse_issue_date(date)
    path = Path(settings.archive_dir) / issue_filename(day)
    if not path.is_file():
        raise HTTPException(status_code=404)
    return FileResponse(path, media_type="text/markdown; charset=utf-8")


@router.get("/archive/{date}")
def archive_issue(
    date: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    lang: str = "",
    r: str = "",
) -> Response:
    """The issue's page; ``?lang=`` shows the summaries of another offered language (papers
    without one show the site language's). The page links the languages it has. ``?r=``
    carries a reader's feedback token (the e-mail's "view in browser" link): the cards then
    offer "More/Fewer like this" for that reader; a bad token is just ignored."""
    day = parse_issue_date(date)
    view = load_issue(session, day)
    if view is None:
        raise HTTPException(status_code=404)
    papers = [e.paper for e in view.pool]
    site = settings.ai_summary.language
    summaries = cached_summaries(session, settings, papers)
    have = [site] if summaries else []
    chosen = site
    for name in settings.ai_summary.offered_languages[1:]:
        found = cached_summaries(session, settings, papers, name)
        if found:
            have.append(name)
            if name.casefold() == lang.strip().casefold():
                chosen, summaries = name, {**summaries, **found}
    context = issue_context(view, summaries)
    context["languages"] = [
        {"name": name, "url": f"/archive/{day.isoformat()}?{urlencode({'lang': name})}"}
        for name in have
    ]
    context["language"] = chosen
    context["feedback_base"] = feedback_base(session, settings, r) if r else None
    return render(request, "web/archive_issue.html", context, with_csrf=False)
