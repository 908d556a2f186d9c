"""arXiv's subject classes (``categories.tsv`` beside this module, with its provenance), to
check configured categories and suggest the one a typo meant."""

from __future__ import annotations

import difflib
from functools import cache
from pathlib import Path

TAXONOMY_FILE = Path(__file__).resolve().parent / "categories.tsv"


@cache
def arxiv_categories() -> dict[str, str]:
    """Identifier -> name, e.g. ``{"cs.LG": "Machine Learning", ...}`` (archives included)."""
    out: dict[str, str] = {}
    for line in TAXONOMY_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            ident, name = line.split("\t", 1)
            out[ident] = name
    return out


def unknown_category_message(value: str) -> str | None:
    """None for a real arXiv category; else what is wrong and the closest real one."""
    known = arxiv_categories()
    if value in known:
        return None
    by_fold = {k.casefold(): k for k in known}
    close = [by_fold[value.casefold()]] if value.casefold() in by_fold else []
    close = close or difflib.get_close_matches(value, list(known), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}, {known[close[0]]}?)" if close else ""
    return (
        f"{value!r} is not an arXiv category{hint}; see https://arxiv.org/category_taxonomy "
        "for the list, e.g. 'cs.LG' or 'hep-th'"
    )
