"""A PDF's text, extracted locally with pypdf: provider-neutral full-text summaries."""

from __future__ import annotations

import io
import re

from pypdf import PdfReader

_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n{3,}")


class PdfTextError(Exception):
    """The PDF could not be read, or holds no text (a scan, say)."""


def pdf_text(data: bytes, max_chars: int) -> str:
    """The first ``max_chars`` characters of the PDF's text, whitespace tidied."""
    try:
        reader = PdfReader(io.BytesIO(data))
        parts: list[str] = []
        total = 0
        for page in reader.pages:
            text = page.extract_text() or ""
            parts.append(text)
            total += len(text)
            if total >= max_chars:
                break
    except Exception as exc:  # pypdf raises many types on malformed files
        raise PdfTextError(f"cannot read the PDF ({type(exc).__name__}: {exc})") from exc
    text = _SPACES.sub(" ", "\n".join(parts).replace("\x00", ""))
    text = _BLANK_LINES.sub("\n\n", "\n".join(line.strip() for line in text.split("\n"))).strip()
    if not text:
        raise PdfTextError("the PDF holds no extractable text")
    return text[:max_chars]
