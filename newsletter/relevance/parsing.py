"""Pure parsing of what readers give: arXiv ids and URLs, BibTeX and Zotero CSV exports,
author names (compared tolerant of initials, accents and order)."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

# New-style (2401.01234, optional version) and old-style (hep-th/9901001) identifiers.
_ID = r"(?:\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})"
_ID_RE = re.compile(rf"^(?:arxiv:)?(?P<id>{_ID})(?:v\d+)?$", re.IGNORECASE)
_URL_RE = re.compile(
    rf"^https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/(?P<id>{_ID})(?:v\d+)?(?:\.pdf)?/?$",
    re.IGNORECASE,
)
# Anywhere in a BibTeX or CSV export: an arXiv URL, "arXiv:ID", or an eprint field.
_FIND_RE = re.compile(
    rf"arxiv\.org/(?:abs|pdf|html)/(?P<u>{_ID})|arxiv[:\s]\s*(?P<a>\d{{4}}\.\d{{4,5}})"
    rf"|eprint\s*=\s*[{{\"]\s*(?P<e>{_ID})",
    re.IGNORECASE,
)
_BIB_ENTRY_RE = re.compile(r"@\s*[A-Za-z]+\s*[{(]")


class ParseError(ValueError):
    """Input a reader can fix; the message says which item and why."""


def arxiv_id(raw: str) -> str:
    """The bare identifier (no version) of an id, ``arXiv:`` id, or abs/pdf/html URL."""
    text = raw.strip()
    m = _ID_RE.match(text) or _URL_RE.match(text)
    if m is None:
        raise ParseError(f"{text[:80]!r} is not an arXiv identifier or arxiv.org abs/pdf URL")
    ident = m.group("id")
    return ident if "/" in ident else ident.lower()


def split_items(raw: str | Iterable[str] | None) -> list[str]:
    """``"a;b"`` or a list (each item may itself hold ``;``), stripped, empties dropped."""
    if raw is None:
        return []
    parts = [raw] if isinstance(raw, str) else list(raw)
    out: list[str] = []
    for part in parts:
        out.extend(p.strip() for p in part.replace("\n", ";").split(";") if p.strip())
    return out


def parse_ids(raw: str | Iterable[str] | None) -> list[str]:
    """Every item parsed; all errors reported at once (nothing is half-accepted)."""
    ids: list[str] = []
    bad: list[str] = []
    for item in split_items(raw):
        try:
            ids.append(arxiv_id(item))
        except ParseError:
            bad.append(item[:80])
    if bad:
        raise ParseError(
            "not arXiv identifiers or abs/pdf URLs: " + ", ".join(repr(b) for b in bad[:10])
        )
    return list(dict.fromkeys(ids))


def ids_in_export(text: str) -> list[str]:
    """arXiv ids found in a BibTeX file or a Zotero CSV export (URL, Extra, eprint fields)."""
    found: list[str] = []
    if not _BIB_ENTRY_RE.search(text) and "," in text.split("\n", 1)[0]:
        rows = csv.reader(io.StringIO(text))
        cells = (cell for row in rows for cell in row)
        haystack = "\n".join(cells)
    else:
        haystack = text
    for m in _FIND_RE.finditer(haystack):
        ident = m.group("u") or m.group("a") or m.group("e")
        found.append(ident if "/" in ident else ident.lower())
    return list(dict.fromkeys(found))


@dataclass(frozen=True, slots=True)
class AuthorKey:
    """A name reduced for matching: the last name and the first initial, accents and case gone."""

    last: str
    initial: str


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^a-z\s,\-]", " ", plain.lower().replace("ß", "ss"))


def author_keys(name: str) -> frozenset[AuthorKey]:
    """Keys under which a name may appear: "Last, First", "First Last", "F. Last", and the
    reversed order ("Last First") all share one key, so they match each other."""
    folded = _fold(name)
    if "," in folded:
        last, _, first = folded.partition(",")
        words = [w for w in re.split(r"[\s\-]+", first) if w]
        lasts = [" ".join(last.split())]
        firsts = words[:1]
    else:
        words = [w for w in folded.replace("-", " ").split() if w]
        if len(words) < 2:
            return frozenset({AuthorKey(words[0], "")}) if words else frozenset()
        lasts = [words[-1], words[0]]
        firsts = [words[0], words[-1]]
    return frozenset(
        AuthorKey(last, first[:1]) for last, first in zip(lasts, firsts, strict=False) if last
    ) or frozenset({AuthorKey(lasts[0], "")})


def authors_match(favourite: str, author: str) -> bool:
    """True when the two spellings can be the same person (same last name and first initial;
    a favourite given by last name alone matches any initial)."""
    fav = author_keys(favourite)
    got = author_keys(author)
    for f in fav:
        for g in got:
            if f.last == g.last and (not f.initial or not g.initial or f.initial == g.initial):
                return True
    return False
