"""The e-mail's fixed words in the reader's language: a gettext catalogue kept with Babel.

Catalogues are ``newsletter/rhythm/locales/<locale>/LC_MESSAGES/messages.po`` (English is the
source language and needs none). They are compiled to gettext's binary form when first used, in
memory, so there is no ``.mo`` file to forget to rebuild; ``tests/test_catalogue.py`` checks that
every message the templates and this package use has a translation in each catalogue.
A language without a catalogue (or a message without a translation) reads English.
"""

from __future__ import annotations

import datetime as dt
import functools
import gettext
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_skeleton
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DOMAIN = "messages"


def _english_names() -> dict[str, str]:
    return {name.casefold(): code for code, name in Locale("en").languages.items()}


def locale_for(language: str) -> str | None:
    """The locale code of a language as the settings name it ("Chinese", "zh", "zh_CN")."""
    wanted = language.strip()
    if not wanted:
        return None
    code = _english_names().get(wanted.casefold())
    if code is not None:
        return code
    try:
        return Locale.parse(wanted.replace("-", "_")).language
    except (ValueError, UnknownLocaleError):
        return None


def catalogue_path(locale: str) -> Path:
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def available_locales() -> list[str]:
    """Locales with a catalogue (English, the source language, is always available)."""
    if not LOCALES_DIR.is_dir():
        return []
    return sorted(p.name for p in LOCALES_DIR.iterdir() if catalogue_path(p.name).is_file())


@functools.lru_cache(maxsize=32)
def _translations(locale: str) -> gettext.NullTranslations:
    path = catalogue_path(locale)
    if not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=locale, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@dataclass(frozen=True, slots=True)
class Words:
    """One language's fixed words: ``gettext``/``ngettext`` and its date format."""

    language: str
    locale: str | None
    gettext: Callable[[str], str]
    ngettext: Callable[[str, str, int], str]

    def date(self, day: dt.date) -> str:
        """The issue's date as the language writes it (English: "Friday, 6 November 2026")."""
        if self.locale in (None, "en") or self.locale not in available_locales():
            return f"{day:%A}, {day.day} {day:%B %Y}"
        return format_date(day, format="full", locale=self.locale)

    def short_date(self, day: dt.date) -> str:
        """A card's day label in a weekly e-mail (English: "Tue 3 Nov")."""
        if self.locale in (None, "en") or self.locale not in available_locales():
            return f"{day:%a} {day.day} {day:%b}"
        return format_skeleton("MMMEd", day, locale=self.locale)


@functools.lru_cache(maxsize=32)
def words_for(language: str | None) -> Words:
    """The fixed words of ``language`` (None or unknown: English)."""
    locale = locale_for(language or "")
    tr = _translations(locale) if locale else gettext.NullTranslations()
    return Words(language or "", locale, tr.gettext, tr.ngettext)


ENGLISH = words_for(None)
