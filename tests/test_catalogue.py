"""The e-mail's message catalogue: every translatable word has a translation, and the catalogue
compiles (Babel is the tool that reads the templates and writes the binary form)."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from newsletter.rhythm.catalogue import (
    LOCALES_DIR,
    available_locales,
    catalogue_path,
    locale_for,
    words_for,
)

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}


def _extracted() -> set[str]:
    with (LOCALES_DIR / "babel.cfg").open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_every_message_of_the_templates_and_code_is_translated() -> None:
    wanted = _extracted()
    assert {"Unsubscribe", "Why you got it:", "Weekly: %(subject)s"} <= wanted
    assert available_locales() == ["zh"]
    for locale in available_locales():
        with catalogue_path(locale).open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        translated = {
            (m.id[0] if isinstance(m.id, tuple) else m.id)
            for m in catalog
            if m.id and all(m.string if isinstance(m.string, tuple) else (m.string,))
        }
        missing = sorted(wanted - translated)
        assert not missing, f"{locale}: untranslated: {missing}"
        assert not catalog.fuzzy
        for message in catalog:  # placeholders survive translation
            if message.id and message.python_format:
                source = message.id[0] if isinstance(message.id, tuple) else message.id
                strings = message.string if isinstance(message.string, tuple) else (message.string,)
                for string in strings:
                    assert sorted(_names(source)) == sorted(_names(string)), source
        out = io.BytesIO()
        write_mo(out, catalog)
        out.seek(0)
        assert read_mo(out).get("Unsubscribe") is not None


def _names(text: str) -> list[str]:
    return re.findall(r"%\((\w+)\)s", text)


def test_languages_find_their_catalogue_and_fall_back_to_english() -> None:
    assert locale_for("Chinese") == locale_for("zh") == locale_for("zh_CN") == "zh"
    zh, en, klingon = words_for("Chinese"), words_for("English"), words_for("Klingon")
    assert zh.gettext("Unsubscribe") == "退订"
    assert en.gettext("Unsubscribe") == klingon.gettext("Unsubscribe") == "Unsubscribe"
    day = dt.date(2026, 11, 27)
    assert en.date(day) == klingon.date(day) == "Friday, 27 November 2026"
    assert zh.date(day) == "2026年11月27日星期五"
    assert zh.gettext("An operator's own subject {date}") == "An operator's own subject {date}"
