"""The digest e-mail's HTML and plain text: one shared body per issue and variant.

``templates/email/digest.mjml`` is MJML with Jinja: control flow sits in ``<mj-raw>`` so MJML
passes it through. MJML is compiled by the ``mjml`` package once per process (cached by path and
modification time) and minified (``finish_html``); the compiled HTML becomes a Jinja template
with autoescaping. Titles, authors, abstracts and TL;DRs have their LaTeX rendered as Unicode
(``newsletter.latex``). It is rendered
ONCE per issue and variant (with or without TL;DRs) with every card of the day's pool, then cut
into a frame and card sections (``newsletter.email.shared``). Each subscriber's e-mail is that
body plus their SendGrid-style ``substitutions`` (links, subject, counts, their cards in their
order); ``personalise`` applies them (then the sections) exactly as SendGrid does, for the file
and SMTP backends and previews.
"""

from __future__ import annotations

import datetime as dt
import textwrap
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import minify_html
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape
from markupsafe import Markup, escape
from mjml import mjml_to_html

from newsletter.config import Settings
from newsletter.domain import IssueEntry, IssueView, Summary
from newsletter.email import tags
from newsletter.email.selection import Selection
from newsletter.email.shared import (
    FEEDBACK,
    KW1,
    KW2,
    MARKER_RE,
    MORE,
    NUMBER,
    SharedBody,
    SliceError,
    Slots,
    more_label,
    slice_part,
)
from newsletter.latex import latex_to_text, latex_to_text_markdown
from newsletter.paths import templates_dir
from newsletter.rhythm.catalogue import ENGLISH, Words, words_for
from newsletter.sanitize import markdown_to_safe_html

PLACEHOLDERS: dict[str, str] = {
    "unsubscribe_url": tags.UNSUBSCRIBE,
    "preferences_url": tags.PREFERENCES,
}
SNIPPET_CHARS = 400
AUTHORS_SHOWN = 3


class TemplateError(Exception):
    """The e-mail template does not compile or does not render."""


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """One e-mail body. ``subject``/``html``/``text`` may hold substitution keys (the links, and
    in a shared body every per-subscriber slot); ``sections`` expand the card tags those
    substitutions bring (empty once personalised)."""

    subject: str
    html: str
    text: str
    sections: Mapping[str, str] = field(default_factory=dict)


def email_templates_dir() -> Path:
    return templates_dir() / "email"


_compile_lock = threading.Lock()
_compiled: dict[tuple[str, int], str] = {}


def _mjml_to_html(source: str) -> tuple[str, list[str]]:
    result = mjml_to_html(source)
    return result.html, [str(e) for e in result.errors]


_COLOR_SCHEME = (
    '<meta name="color-scheme" content="light dark">'
    '<meta name="supported-color-schemes" content="light dark">'
)


def finish_html(html: str) -> str:
    """The compiled template as sent: the dark-mode metas MJML cannot write, then minified
    (``minify-html``) with the Jinja syntax, our ``<!--nl:…-->`` markers, Outlook's conditional
    comments and every closing tag kept. Done once per template version, so the per-issue
    render and ``render_direct`` share exactly the same bytes."""
    with_meta = html.replace("<head>", f"<head>{_COLOR_SCHEME}", 1)
    minified: str = minify_html.minify(
        with_meta,
        keep_comments=True,
        keep_closing_tags=True,
        keep_html_and_head_opening_tags=True,
        preserve_brace_template_syntax=True,
        minify_css=True,
    )
    return minified


def compiled_html(path: Path) -> str:
    """The MJML file compiled to HTML (still holding Jinja), once per process and file version."""
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    with _compile_lock:
        if key not in _compiled:
            try:
                html, errors = _mjml_to_html(path.read_text(encoding="utf-8"))
            except (OSError, ValueError, AttributeError, TypeError) as exc:
                raise TemplateError(f"{path}: not a valid MJML document: {exc}") from exc
            if errors:
                raise TemplateError(f"{path}: MJML errors: {'; '.join(errors)}")
            _compiled[key] = finish_html(html)
        return _compiled[key]


_defuse = tags.defuse  # untrusted text never holds a tag (it would become a link or a card)
_one_line = tags.one_line


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


def format_date(day: dt.date, words: Words = ENGLISH) -> str:
    return words.date(day)


def subject_line(
    settings: Settings, day: dt.date, count: int, words: Words = ENGLISH, *, weekly: bool = False
) -> str:
    """``email.subject_template`` (translated when the catalogue has it) with {date} and
    {count}, on one line; a weekly e-mail's is marked as such."""
    template = words.gettext(settings.email.subject_template)
    try:
        subject = template.format(date=day.isoformat(), count=count)
    except (KeyError, IndexError, ValueError) as exc:
        raise TemplateError(
            f"email.subject_template {settings.email.subject_template!r} may use only "
            f"{{date}} and {{count}}: {exc!r}"
        ) from exc
    if weekly:
        subject = words.gettext("Weekly: %(subject)s") % {"subject": subject}
    return _one_line(subject)


def intro_line(view: IssueView, count: int, words: Words = ENGLISH) -> str:
    """The counts sentence under the date."""
    _ = words.gettext
    values = {"count": count, "found": view.papers_found, "cats": ", ".join(view.categories)}
    if view.kind == "weekly":
        if not count:
            return (
                _(
                    "Nothing matched your interests among the %(found)s papers announced in "
                    "%(cats)s this week."
                )
                % values
            )
        return (
            words.ngettext(
                "%(count)s paper for you, the best of %(found)s announced in %(cats)s this week.",
                "%(count)s papers for you, the best of %(found)s announced in %(cats)s this week.",
                count,
            )
            % values
        )
    if not count:
        return (
            _("Nothing matched your interests among the %(found)s papers announced in %(cats)s.")
            % values
        )
    return (
        words.ngettext(
            "%(count)s paper for you, picked from %(found)s announced in %(cats)s.",
            "%(count)s papers for you, picked from %(found)s announced in %(cats)s.",
            count,
        )
        % values
    )


def wrap(text: str, width: int = 72) -> str:
    """Plain-text paragraphs wrapped at ``width`` without breaking words or hyphens."""
    return "\n".join(textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False))


def _paper_static(
    settings: Settings,
    view: IssueView,
    entry: IssueEntry,
    summary: Summary | None,
    words: Words = ENGLISH,
) -> dict[str, Any]:
    """A paper's card without the subscriber's matches: the same in every body that shows it."""
    paper = entry.paper
    day = entry.day or view.date
    tldr = (
        _defuse(latex_to_text_markdown(summary.tldr.strip()))
        if summary is not None and summary.tldr
        else ""
    )
    abstract = "" if tldr else snippet(latex_to_text(paper.abstract))
    return {
        "arxiv_id": paper.arxiv_id,
        "title": _one_line(latex_to_text(paper.title)),
        "abs_url": paper.abs_url,
        "pdf_url": paper.pdf_url,
        "html_url": paper.html_url,
        "archive_url": f"{settings.base_url}/archive/{day.isoformat()}#{paper.arxiv_id}",
        "day": words.short_date(entry.day) if entry.day else "",
        "authors": authors_line(tuple(latex_to_text(a) for a in paper.authors)),
        "primary_category": paper.primary_category,
        "is_update": entry.is_update,
        # Markdown may spell a tag with escapes or entities: defuse what it produced too.
        "tldr_html": Markup(_defuse(markdown_to_safe_html(tldr))) if tldr else None,
        "snippet": abstract,
        "text_body": wrap(
            words.gettext("TL;DR: %(tldr)s") % {"tldr": _one_line(tldr)} if tldr else abstract
        ),
    }


_HTML_SLOTS = {
    tags.HTML_SUBJECT,
    tags.PREHEADER,
    tags.INTRO,
    tags.CARDS,
    tags.NOTE,
    tags.MORE,
    tags.UNSUBSCRIBE,
    tags.PREFERENCES,
    tags.FEEDBACK,
}
_TEXT_SLOTS = {
    tags.TEXT_INTRO,
    tags.TEXT_CARDS,
    tags.TEXT_NOTE,
    tags.TEXT_MORE,
    tags.UNSUBSCRIBE,
    tags.PREFERENCES,
    tags.FEEDBACK,
}


class DigestRenderer:
    """Renders digests with one settings object; the MJML is compiled at most once per process.

    ``shared`` renders the day's body once per variant; ``render`` gives one selection's e-mail
    from it (links still as ``PLACEHOLDERS``); ``render_direct`` renders the template for one
    selection the slow way (the naive benchmark, and the reference the tests compare with).
    """

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
        self._html_template: Template | None = None
        self._cards: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._shared: dict[tuple[int, int, bool, str], tuple[object, object, SharedBody]] = {}
        self._lock = threading.Lock()

    def _html(self) -> Template:
        """The compiled template, looked up once per renderer (a new renderer sees edits)."""
        if self._html_template is None:
            source = compiled_html(self.template_dir / "digest.mjml")
            try:
                self._html_template = self._env.from_string(source)
            except jinja2.TemplateError as exc:
                raise TemplateError(f"digest.mjml: Jinja error: {exc}") from exc
        return self._html_template

    def _card(
        self, view: IssueView, entry: IssueEntry, summary: Summary | None, words: Words
    ) -> dict[str, Any]:
        """Per-paper context, computed once per (issue, paper, summary, language) and reused by
        every body."""
        paper = entry.paper
        tldr = summary.tldr if summary is not None else None
        key = (view.date, paper.arxiv_id, paper.version, paper.title, tldr, entry.day, words)
        card = self._cards.get(key)
        if card is None:
            if len(self._cards) > 50_000:
                self._cards.clear()
            card = self._cards[key] = _paper_static(self.settings, view, entry, summary, words)
        return card

    def _paper(
        self,
        view: IssueView,
        entry: IssueEntry,
        summaries: Mapping[str, Summary],
        include_summaries: bool,
        words: Words = ENGLISH,
    ) -> dict[str, Any]:
        summary = summaries.get(entry.paper.arxiv_id) if include_summaries else None
        return self._card(view, entry, summary, words)

    def _frame_context(self, view: IssueView, words: Words = ENGLISH) -> dict[str, Any]:
        s = self.settings
        date = format_date(view.date, words)
        if view.kind == "weekly":
            date = words.gettext("Your week to %(date)s") % {"date": date}
        return {
            "_": words.gettext,
            "lang": words.locale or "en",
            "site_name": s.site_name,
            "date": date,
            "date_iso": view.date.isoformat(),
            "papers_found": view.papers_found,
            "categories": ", ".join(view.categories),
            "archive_url": f"{s.base_url}/archive/{view.date.isoformat()}",
            "archive_index_url": f"{s.base_url}/archive",
            "site_url": s.base_url,
            "from_name": s.email.from_name,
            "from_email": s.email.from_email,
            "postal_address": s.email.postal_address,
            "feedback_key": tags.FEEDBACK,  # the reader's feedback token, in the frame
            **PLACEHOLDERS,
        }

    def slots(self, view: IssueView, selection: Selection, words: Words = ENGLISH) -> Slots:
        """The per-subscriber sentences: subject, preheader, counts line."""
        count = len(selection.entries)
        if count:
            first = _one_line(latex_to_text(selection.entries[0].paper.title))
            more = words.gettext(" and %(n)s more") % {"n": count - 1} if count > 1 else ""
            preheader = snippet(f"{first}{more}", 140)
        else:
            preheader = words.gettext("Nothing matched your interests in today's announcement.")
        return Slots(
            subject=subject_line(
                self.settings, view.date, count, words, weekly=view.kind == "weekly"
            ),
            preheader=preheader,
            intro=intro_line(view, count, words),
        )

    def _render_parts(self, ctx: dict[str, Any]) -> tuple[str, str]:
        try:
            html = self._html().render(ctx)
            text = self._env.get_template("digest.txt").render({**ctx, **ctx.pop("_text", {})})
        except jinja2.TemplateError as exc:
            raise TemplateError(f"digest template: {exc}") from exc
        return html, text

    def shared(
        self,
        view: IssueView,
        summaries: Mapping[str, Summary],
        include_summaries: bool,
        language: str | None = None,
    ) -> SharedBody:
        """The day's body for one variant (with or without TL;DRs, in one reader language):
        every card of the pool rendered once, then sliced."""
        words = words_for(language)
        key = (id(view), id(summaries), include_summaries, words.language)
        with self._lock:
            hit = self._shared.get(key)
            if hit is not None and hit[0] is view and hit[1] is summaries:
                return hit[2]
        entries: dict[str, IssueEntry] = {}
        for entry in (*view.pool, *view.digest):
            entries.setdefault(entry.paper.arxiv_id, entry)
        papers = [
            {
                **self._paper(view, e, summaries, include_summaries, words),
                "matched": [KW1, KW2],
                "number": NUMBER,
            }
            for e in entries.values()
        ]
        subject_line(self.settings, view.date, 0)  # a bad subject template fails here, clearly
        ctx = {
            **self._frame_context(view, words),
            "subject": tags.HTML_SUBJECT,
            "preheader": tags.PREHEADER,
            "intro": tags.INTRO,
            "count": 0,
            "papers": papers,
            "more_label": MORE,
            "has_summaries": True,
            "feedback_token": FEEDBACK,
            "_text": {"intro": tags.TEXT_INTRO},
        }
        html, text = self._render_parts(ctx)
        ids = list(entries)
        try:
            h = slice_part("h", html, ids, _HTML_SLOTS)
            t = slice_part("t", text, ids, _TEXT_SLOTS)
        except (SliceError, tags.TagError) as exc:
            raise TemplateError(f"digest template cannot be shared: {exc}") from exc
        body = SharedBody(
            subject=tags.SUBJECT,
            html=h.frame,
            text=t.frame,
            sections={**h.sections, **t.sections},
            html_cards=h.cards,
            text_cards=t.cards,
            html_why=h.why,
            text_why=t.why,
            has_tldr=frozenset(i for i, p in zip(ids, papers, strict=True) if p["tldr_html"]),
            slots_for=lambda selection: self.slots(view, selection, words),
            words=words,
        )
        with self._lock:
            if len(self._shared) > 16:
                self._shared.clear()
            self._shared[key] = (view, summaries, body)
        return body

    def render(
        self,
        view: IssueView,
        selection: Selection,
        summaries: Mapping[str, Summary],
        language: str | None = None,
    ) -> RenderedEmail:
        """One selection's e-mail from the shared body; the links stay ``PLACEHOLDERS``."""
        body = self.shared(view, summaries, selection.include_summaries, language)
        return personalise(shared_content(body), body.substitutions(selection))

    def render_direct(
        self,
        view: IssueView,
        selection: Selection,
        summaries: Mapping[str, Summary],
        language: str | None = None,
    ) -> RenderedEmail:
        """The template rendered for this selection alone (the naive way; a test reference); the
        cards past the budget are cut where the shared body cuts them."""
        words = words_for(language)
        shared = self.shared(view, summaries, selection.include_summaries, language)
        shown = shared.shown(selection)
        hidden = len(selection.entries) - shown
        papers = [
            {
                **self._paper(view, entry, summaries, selection.include_summaries, words),
                "matched": [_one_line(k) for k in selection.matched.get(entry.paper.arxiv_id, ())],
                "number": n,
            }
            for n, entry in enumerate(selection.entries[:shown], start=1)
        ]
        slots = self.slots(view, selection, words)
        ctx = {
            **self._frame_context(view, words),
            "subject": slots.subject,
            "preheader": slots.preheader,
            "intro": slots.intro,
            "count": len(selection.entries),
            "papers": papers,
            "more_label": more_label(hidden, words) if hidden else "",
            "has_summaries": any(p["tldr_html"] for p in papers),
            "feedback_token": tags.FEEDBACK,
        }
        html, text = self._render_parts(ctx)
        return RenderedEmail(
            subject=slots.subject, html=MARKER_RE.sub("", html), text=MARKER_RE.sub("", text)
        )


def shared_content(body: SharedBody) -> RenderedEmail:
    """The shared body as backends take it: slots in the parts, card pieces in ``sections``."""
    return RenderedEmail(body.subject, body.html, body.text, body.sections)


def link_substitutions(links: Mapping[str, str]) -> dict[str, str]:
    """One subscriber's links as substitutions. They go raw into the HTML (as with SendGrid),
    so they must be http(s) URLs that need no HTML escaping. Sections are applied after the
    substitutions, so a signed token that happens to spell a tag (``-t1p2-`` in base64url)
    gets that tag's hyphens percent-encoded (``%2D``): the same URL once decoded."""
    missing = [k for k in PLACEHOLDERS if k not in links]
    if missing:
        raise ValueError(f"links missing for placeholders: {', '.join(missing)}")
    out: dict[str, str] = {}
    for key, placeholder in PLACEHOLDERS.items():
        url = links[key]
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"{key} must be an http(s) URL")
        if str(escape(url)) != url:
            raise ValueError(f"{key} contains characters that need HTML escaping")
        out[placeholder] = tags.KEY_RE.sub(lambda m: m.group().replace("-", "%2D"), url)
    return out


def personalise(content: Any, substitutions: Mapping[str, str]) -> RenderedEmail:
    """One reader's e-mail: substitutions first, then sections, as SendGrid applies them.

    ``content`` is a ``RenderedEmail`` or anything with ``subject``/``html``/``text`` (and
    optionally ``sections``). Every backend that builds messages itself goes through here.
    """
    sections: Mapping[str, str] = getattr(content, "sections", None) or {}
    return RenderedEmail(
        subject=tags.apply_tags(content.subject, substitutions, sections),
        html=tags.apply_tags(content.html, substitutions, sections),
        text=tags.apply_tags(content.text, substitutions, sections),
    )


@dataclass(frozen=True, slots=True)
class Expander:
    """A shared body made ready to be expanded for many readers (``personalise``'s result for
    a fraction of its CPU): the body's own section tags are expanded once and the parts cut at
    the keys once, so per reader only the slot values are scanned, and each part is filled in
    one pass instead of one copy of the e-mail per substitution.

    The same bytes as ``personalise`` (tests compare the two) because a shared body's section
    values hold no key and cannot complete one (``tags.check_section``) and nothing next to a
    slot can complete one (``tags.check_frame``): expanding before or after substituting meets
    the same tags, and a part's keys are where plain replacement finds them. When a value brings
    a key that is itself substituted, the replacements run in turn, as ``personalise`` does.
    """

    parts: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]  # subject, html, text
    sections: Mapping[str, str]

    @classmethod
    def of(cls, content: RenderedEmail) -> Expander:
        s = content.sections
        subject, html, text = (
            tuple(tags.split_keys(tags.expand(part, s)))
            for part in (content.subject, content.html, content.text)
        )
        return cls((subject, html, text), s)

    def personalise(self, substitutions: Mapping[str, str]) -> RenderedEmail:
        values: dict[str, str] = {}
        chained = False
        for key, value in substitutions.items():
            pieces = tags.split_keys(value)
            found = pieces[1::2]
            chained = chained or any(k in substitutions for k in found)
            pieces[1::2] = [self.sections.get(k, k) for k in found]
            values[key] = "".join(pieces)
        subject, html, text = (self._fill(parts, values, chained) for parts in self.parts)
        return RenderedEmail(subject=subject, html=html, text=text)

    @staticmethod
    def _fill(parts: tuple[str, ...], values: Mapping[str, str], chained: bool) -> str:
        if chained:
            return tags.substitute("".join(parts), values)
        filled = list(parts)
        filled[1::2] = [values.get(k, k) for k in parts[1::2]]
        return "".join(filled)
