"""The keyword matcher shared by ranking, subscriber selection and feed filters (pure).

Two modes: ``word`` (case-insensitive whole words and phrases; a trailing plural ``s``/``es`` is
allowed, so ``LLM`` matches ``LLMs`` and ``LLM-based`` but ``RL`` does not match ``world``) and
``substring`` (the old bot's ``k.lower() in text.lower()``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

MatchMode = Literal["word", "substring"]

_SEPARATOR = r"[\s\-_/]+"


@lru_cache(maxsize=65536)
def _word_pattern(term: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in re.split(r"[\s\-_/]+", term.strip()) if w]
    body = _SEPARATOR.join(words)
    return re.compile(rf"(?<![^\W_]){body}(?:e?s)?(?![^\W_])", re.IGNORECASE)


def term_in_text(term: str, text: str, mode: MatchMode) -> bool:
    """Whether one keyword occurs in ``text`` under ``mode``."""
    if mode == "substring":
        return term.lower() in text.lower()
    return _word_pattern(term).search(text) is not None


@dataclass(frozen=True, slots=True)
class KeywordMatcher:
    """A fixed list of terms matched in one mode; ``find`` keeps the terms' order."""

    terms: tuple[str, ...]
    mode: MatchMode = "word"

    def find(self, text: str) -> tuple[str, ...]:
        if self.mode == "substring":
            lowered = text.lower()
            return tuple(t for t in self.terms if t.lower() in lowered)
        return tuple(t for t in self.terms if _word_pattern(t).search(text))

    def any(self, text: str) -> bool:
        if self.mode == "substring":
            lowered = text.lower()
            return any(t.lower() in lowered for t in self.terms)
        return any(_word_pattern(t).search(text) for t in self.terms)


def matcher(terms: Iterable[str], mode: MatchMode = "word") -> KeywordMatcher:
    return KeywordMatcher(tuple(dict.fromkeys(t for t in terms if t.strip())), mode)


def normalise_terms(terms: Sequence[str]) -> list[str]:
    """Trim, drop empties and case-insensitive duplicates, keeping the first spelling."""
    seen: set[str] = set()
    out: list[str] = []
    for term in terms:
        t = " ".join(term.split())
        if t and t.lower() not in seen:
            seen.add(t.lower())
            out.append(t)
    return out
