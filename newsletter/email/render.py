"""The digest e-mail's HTML and plain text, rendered once per distinct body.

``templates/email/digest.mjml`` is MJML with Jinja: control flow sits in ``<mj-raw>`` so MJML
passes it through. MJML is compiled by the ``mjml`` package once per process (cached by path and
modification time); the compiled HTML becomes a Jinja template with autoescaping, rendered per
body. Links that differ per subscriber are left as SendGrid-style placeholders
(``PLACEHOLDERS``) so one rendered body serves every subscriber with the same papers;
``personalise`` fills them in for backends without substitutions (file, SMTP, previews).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape
from markupsafe import Markup, escape
from mjml import mjml_to_html

from newsletter.config import Settings
from newsletter.domain import IssueEntry, IssueView, Summary
from newsletter.email.selection import Selection
from newsletter.paths import templates_dir
from newsletter.sanitize import markdown_to_safe_html

PLACEHOLDERS: dict[str, str] = {
    "unsubscribe_url": "-unsubscribe_url-",
    "preferences_url": "-preferences_url-",
}
SNIPPET_CHARS = 400
AUTHORS_SHOWN = 3


class TemplateError(Exception):
    """The e-mail template does not compile or does not render."""


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """One e-mail body; ``html`` and ``text`` may still hold ``PLACEHOLDERS``."""

    subject: str
    html: str
    text: str


def email_templates_dir() -> Path:
    return templates_dir() / "email"


_compile_lock = threading.Lock()
_compiled: dict[tuple[str, int], str] = {}


def _mjml_to_html(source: str) -> tuple[str, list[str]]:
    result = mjml_to_html(source)
    return result.html, [str(e) for e in result.errors]


def compiled_html(path: Path) -> str:
    """The MJML file compiled to HTML (still holding Jinja), once per process and file version."""
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    with _compile_lock:
        if key not in _compiled:
            html, errors = _mjml_to_html(path.read_text(encoding="utf-8"))
            if errors:
                raise TemplateError(f"{path}: MJML errors: {'; '.join(errors)}")
            _compiled[key] = html
        return _compiled[key]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The first ``limit`` characters of ``text`` on one line, cut at a word, with an ellipsis."""
    flat = _one_line(text)
    if len(flat) <= limit:
        return flat
    cut = flat[: limit + 1].rsplit(" ", 1)[0] if " " in flat[:limit] else flat[:limit]
    return cut.rstrip(" ,;:.") + "…"


def authors_line(authors: tuple[str, ...], shown: int = AUTHORS_SHOWN) -> str:
    names = [_one_line(a) for a in authors if a.strip()]
    if len(names) <= shown + 1:
        return ", ".join(names)
    return ", ".join(names[:shown]) + " et al."


def format_date(day: dt.date) -> str:
    return f"{day:%A}, {day.day} {day:%B %Y}"


def subject_line(settings: Settings, day: dt.date, count: int) -> str:
    """``email.subject_template`` with {date} and {count}, on one line."""
    try:
        subject = settings.email.subject_template.format(date=day.isoformat(), count=count)
    except (KeyError, IndexError, ValueError) as exc:
        raise TemplateError(
            f"email.subject_template {settings.email.subject_template!r} may use only "
            f"{{date}} and {{count}}: {exc!r}"
        ) from exc
    return _one_line(subject)


def _paper_context(
    settings: Settings,
    view: IssueView,
    entry: IssueEntry,
    matched: tuple[str, ...],
    summary: Summary | None,
) -> dict[str, Any]:
    paper = entry.paper
    tldr = summary.tldr.strip() if summary is not None and summary.tldr else ""
    return {
        "arxiv_id": paper.arxiv_id,
        "title": _one_line(paper.title),
        "abs_url": paper.abs_url,
        "pdf_url": paper.pdf_url,
        "html_url": paper.html_url,
        "archive_url": f"{settings.base_url}/archive/{view.date.isoformat()}#{paper.arxiv_id}",
        "authors": authors_line(paper.authors),
        "primary_category": paper.primary_category,
        "matched": list(matched),
        "is_update": entry.is_update,
        "tldr_html": Markup(markdown_to_safe_html(tldr)) if tldr else None,
        "tldr_text": _one_line(tldr),
        "snippet": "" if tldr else snippet(paper.abstract),
    }


class DigestRenderer:
    """Renders digests with one settings object; the MJML is compiled at most once per process."""

    def __init__(self, settings: Settings, template_dir: Path | None = None):
        self.settings = settings
        self.template_dir = template_dir or email_templates_dir()
        self._env = Environment(
            loader=FileSystemLoader(self.template_dir),
            autoescape=select_autoescape(
                enabled_extensions=("html", "mjml"),
                disabled_extensions=("txt",),
                default_for_string=True,
                default=True,
            ),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self._html_template: tuple[str, Template] | None = None

    def _html(self) -> Template:
        source = compiled_html(self.template_dir / "digest.mjml")
        if self._html_template is None or self._html_template[0] is not source:
            self._html_template = (source, self._env.from_string(source))
        return self._html_template[1]

    def context(
        self, view: IssueView, selection: Selection, summaries: Mapping[str, Summary]
    ) -> dict[str, Any]:
        """Everything the templates show, as plain values (escaping is the templates' job)."""
        s = self.settings
        papers = [
            _paper_context(
                s,
                view,
                entry,
                selection.matched.get(entry.paper.arxiv_id, ()),
                summaries.get(entry.paper.arxiv_id) if selection.include_summaries else None,
            )
            for entry in selection.entries
        ]
        count = len(papers)
        if papers:
            first = papers[0]["title"]
            more = f" and {count - 1} more" if count > 1 else ""
            preheader = snippet(f"{first}{more}", 140)
        else:
            preheader = "Nothing matched your interests in today's announcement."
        return {
            "site_name": s.site_name,
            "date": format_date(view.date),
            "date_iso": view.date.isoformat(),
            "count": count,
            "papers_found": view.papers_found,
            "categories": ", ".join(view.categories),
            "preheader": preheader,
            "subject": subject_line(s, view.date, count),
            "papers": papers,
            "has_summaries": any(p["tldr_html"] for p in papers),
            "archive_url": f"{s.base_url}/archive/{view.date.isoformat()}",
            "archive_index_url": f"{s.base_url}/archive",
            "site_url": s.base_url,
            "from_name": s.email.from_name,
            "from_email": s.email.from_email,
            "postal_address": s.email.postal_address,
            **PLACEHOLDERS,
        }

    def render(
        self, view: IssueView, selection: Selection, summaries: Mapping[str, Summary]
    ) -> RenderedEmail:
        ctx = self.context(view, selection, summaries)
        html = self._html().render(ctx)
        text = self._env.get_template("digest.txt").render(ctx)
        return RenderedEmail(subject=ctx["subject"], html=html, text=text)


def personalise(rendered: RenderedEmail, links: Mapping[str, str]) -> RenderedEmail:
    """Fill the placeholders with one subscriber's links (escaped for the HTML part)."""
    missing = [k for k in PLACEHOLDERS if k not in links]
    if missing:
        raise ValueError(f"links missing for placeholders: {', '.join(missing)}")
    html, text = rendered.html, rendered.text
    for key, placeholder in PLACEHOLDERS.items():
        url = links[key]
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"{key} must be an http(s) URL")
        html = html.replace(placeholder, str(escape(url)))
        text = text.replace(placeholder, url)
    return replace(rendered, html=html, text=text)
