"""Untrusted text (model output, abstracts) made safe for HTML: Markdown → allow-listed HTML.

Two layers, so a gap in one is caught by the other: markdown-it renders with raw HTML off
(``<script>`` comes out as visible text), images become their alt text and headings become bold
paragraphs; nh3 then keeps only ``ALLOWED_TAGS`` and no attribute at all, except ``href`` on
``<a>`` when links are allowed, and then only absolute ``http(s)`` URLs with ``rel=nofollow``.
Without links (e-mail), link markup keeps its text, and URLs written out as text are replaced,
so a prompt injection cannot put a clickable address into a message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

ALLOWED_TAGS = frozenset(
    {"p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "code", "pre", "blockquote"}
)
LINK_REL = "nofollow noopener noreferrer"
LINK_REMOVED = "(link removed)"

_SAFE_HREF = re.compile(r"^https?://[^\s/]", re.IGNORECASE)
# Addresses written out as text; in HTML text they end at whitespace or the next tag.
_TEXT_URL = re.compile(r"(?:\b[a-z][a-z0-9+.\-]*://|\bwww\.)[^\s<]*", re.IGNORECASE)


def _image_as_alt(
    _renderer: Any, tokens: Sequence[Token], idx: int, _options: OptionsDict, _env: EnvType
) -> str:
    """An image becomes its alt text: model output never loads anything."""
    token = tokens[idx]
    alt = "".join(child.content for child in token.children or [] if child.type == "text")
    return escapeHtml(alt)


def _heading_open(*_: Any) -> str:
    return "<p><strong>"


def _heading_close(*_: Any) -> str:
    return "</strong></p>\n"


def _make_renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False})
    md.add_render_rule("image", _image_as_alt)
    md.add_render_rule("heading_open", _heading_open)
    md.add_render_rule("heading_close", _heading_close)
    return md


_md = _make_renderer()


def _keep_http_href(tag: str, attribute: str, value: str) -> str | None:
    """Only absolute http(s) links survive; relative and protocol-relative ones are dropped."""
    if attribute != "href":
        return value  # only nh3's own rel="..." gets here: nothing else is allowed
    return value if tag == "a" and _SAFE_HREF.match(value) else None


def _clean(html: str, *, allow_links: bool) -> str:
    tags = set(ALLOWED_TAGS)
    attributes: dict[str, set[str]] = {}
    if allow_links:
        tags.add("a")
        attributes["a"] = {"href"}
    cleaned = nh3.clean(
        html,
        tags=tags,
        clean_content_tags={"script", "style"},
        attributes=attributes,
        attribute_filter=_keep_http_href,
        url_schemes={"http", "https"},
        link_rel=LINK_REL,
        strip_comments=True,
    )
    if not allow_links:
        cleaned = _TEXT_URL.sub(LINK_REMOVED, cleaned)
    return cleaned


def markdown_to_safe_html(text: str, *, allow_links: bool = False) -> str:
    """Render untrusted Markdown as HTML made only of ``ALLOWED_TAGS`` (plus safe links if asked).

    ``allow_links=False`` is for e-mail: no ``<a>`` at all and no URL left in the text.
    """
    return _clean(_md.render(text or ""), allow_links=allow_links)


def inline_markdown_to_safe_html(text: str, *, allow_links: bool = False) -> str:
    """Like ``markdown_to_safe_html`` for one line (a TL;DR): no ``<p>`` around it."""
    return _clean(_md.renderInline(text or ""), allow_links=allow_links)
