"""Untrusted text (model output, abstracts) made safe for HTML: Markdown → allow-listed HTML.

Only a small set of tags survives; links keep only http(s) URLs and get rel="nofollow noopener".
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = {"p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "code", "pre", "blockquote"}

_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).disable("image")


def markdown_to_safe_html(text: str, *, allow_links: bool = False) -> str:
    """Render Markdown with raw HTML disabled, then keep only allow-listed tags."""
    html = _md.render(text or "")
    tags = set(ALLOWED_TAGS)
    attributes: dict[str, set[str]] = {}
    if allow_links:
        tags.add("a")
        attributes["a"] = {"href"}
    return nh3.clean(
        html,
        tags=tags,
        attributes=attributes,
        url_schemes={"http", "https"},
        link_rel="nofollow noopener noreferrer",
    )
