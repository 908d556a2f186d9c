"""Untrusted text (titles, abstracts, authors, model output) made inert for Markdown (pure).

Every Markdown or HTML special character is backslash-escaped, so a title like ``AM$^3$Safety``
or ``<script>`` reads as itself, never as markup, math, a link or a tag; whitespace and newlines
are folded so a field cannot start a heading, list or code block of its own.
"""

from __future__ import annotations

import re
from urllib.parse import quote

# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that act.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|<>$^~&])")
_LINE_START = re.compile(r"^(\s*)([-+=]|\d+(?=[.)]))")
_URL_SCHEME = re.compile(r"(?i)\b(https?|ftp|mailto|javascript|data):")
_WWW = re.compile(r"(?i)\bwww\.")
_PARAGRAPH = re.compile(r"\n\s*\n")


class MdSafe(str):
    """Text already escaped (or written by us); the template environment passes it unchanged."""

    __slots__ = ()


def _escape_run(text: str) -> str:
    text = _SPECIAL.sub(r"\\\1", text)
    # Stop autolinkers (GitHub's "extended autolinks") from turning text into links.
    text = _URL_SCHEME.sub(lambda m: m.group(1) + "\\:", text)
    return _WWW.sub(lambda m: m.group(0)[:3] + "\\.", text)


def _escape_marker(m: re.Match[str]) -> str:
    lead, marker = m.group(1), m.group(2)
    if marker.isdigit():  # "1." or "1)" would start an ordered list: escape what follows
        return lead + marker + "\\"
    return lead + "\\" + marker


def md_inline(text: str | None) -> MdSafe:
    """Inert inline Markdown (never at a line start): whitespace and newlines folded to spaces."""
    folded = " ".join((text or "").split())
    return MdSafe(_escape_run(folded))


def _md_line(text: str) -> str:
    """An inert line that may start a line of the page (list and heading markers escaped)."""
    return _LINE_START.sub(_escape_marker, md_inline(text))


def md_block(text: str | None, *, keep_lines: bool = False) -> MdSafe:
    """Paragraphs of inert Markdown; ``keep_lines`` keeps line breaks (for model output)."""
    paragraphs = [p for p in _PARAGRAPH.split((text or "").strip()) if p.strip()]
    out: list[str] = []
    for para in paragraphs:
        if keep_lines:
            lines = [_md_line(line) for line in para.splitlines() if line.strip()]
            out.append("  \n".join(lines))
        else:
            out.append(_md_line(para))
    return MdSafe("\n\n".join(out))


def md_url(url: str) -> MdSafe:
    """A URL safe inside ``(...)`` of a Markdown link: only http(s), specials percent-encoded."""
    if not url.lower().startswith(("http://", "https://")):
        return MdSafe("#")
    return MdSafe(quote(url, safe=":/?=&#%.~-_+,;@"))
