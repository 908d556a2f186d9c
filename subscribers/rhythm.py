"""A reader's cadence (daily or weekly) and summary language: validation of what they ask for.

``None`` for the language means "the site's" (``ai_summary.language``); a stored language the
site no longer offers falls back to it too (``effective_language``).
"""

from __future__ import annotations

from newsletter.config import Settings
from subscribers.errors import InvalidInput
from subscribers.models import CADENCES


def check_cadence(value: str | None) -> str:
    """``daily`` (also for an empty value) or ``weekly``."""
    cadence = (value or "daily").strip().lower() or "daily"
    if cadence not in CADENCES:
        raise InvalidInput(
            f"cadence must be one of {', '.join(CADENCES)}, not {value!r}", "cadence"
        )
    return cadence


def check_language(value: str | None, settings: Settings) -> str | None:
    """One of ``ai_summary.languages`` (any case) as the site spells it; empty: the site's
    (stored as None so a reader who never chose follows the site)."""
    wanted = (value or "").strip()
    if not wanted:
        return None
    offered = settings.ai_summary.offered_languages
    for name in offered:
        if name.casefold() == wanted.casefold():
            return None if name == settings.ai_summary.language else name
    raise InvalidInput(f"language must be one of {', '.join(offered)}, not {wanted!r}", "language")


def effective_language(stored: str | None, settings: Settings) -> str:
    """The language a reader's e-mail uses: theirs while the site offers it, else the site's."""
    ai = settings.ai_summary
    if stored:
        for name in ai.offered_languages:
            if name.casefold() == stored.casefold():
                return name
    return ai.language
