"""SendGrid-style tags: the keys of per-subscriber substitutions and of message-level sections.

One e-mail body serves every subscriber: per subscriber, ``substitutions`` fill the frame's slots
(links, subject, counts, the list of cards) and the message-level ``sections`` expand the card tags
those values contain. SendGrid applies substitutions first, then sections; ``apply_tags`` does the
same locally (file and SMTP backends, previews), so every backend delivers the same bytes.

Every key is a hyphen-delimited token (``-cards-``, ``-h12p0-``). Untrusted text (titles,
abstracts, TL;DRs, keywords) is passed through ``defuse`` so it can never contain a key and be
turned into a link or a card.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Links (the placeholders the renderer has always used).
UNSUBSCRIBE = "-unsubscribe_url-"
PREFERENCES = "-preferences_url-"
FEEDBACK = "-feedback_token-"  # a reader's feedback token, in their cards (not in the frame)
# Frame slots filled per subscriber (h = HTML part, t = text part).
SUBJECT = "-subject-"
HTML_SUBJECT = "-hsubject-"
PREHEADER = "-preheader-"
INTRO, TEXT_INTRO = "-intro-", "-tintro-"
CARDS, TEXT_CARDS = "-cards-", "-tcards-"
NOTE, TEXT_NOTE = "-note-", "-tnote-"
MORE, TEXT_MORE = "-more-", "-tmore-"  # "N more papers in today's issue" or nothing
# Sections (message level, the same for everyone).
DISCLAIMER, TEXT_DISCLAIMER = "-hdisclaimer-", "-tdisclaimer-"
MORE_KEYS = {"h": ("-hmore0-", "-hmore1-"), "t": ("-tmore0-", "-tmore1-")}

_NAMES = (
    r"unsubscribe_url|preferences_url|feedback_token|subject|hsubject|preheader|t?intro|t?cards"
    r"|t?note|t?more|[ht]more[01]|[ht]disclaimer|[ht]\d+p\d+|[ht]w[omc]"
)
KEY_RE = re.compile(rf"-(?:{_NAMES})-", re.IGNORECASE)
# The same keys, kept by ``split``: text at even indexes, keys at odd ones.
_SPLIT_RE = re.compile(rf"(-(?:{_NAMES})-)", re.IGNORECASE)
# Text that could complete a key across a boundary: "-abc" before it, or "abc-" after it.
_OPEN_TAIL = re.compile(r"-[A-Za-z0-9_]*\Z")
_OPEN_HEAD = re.compile(r"\A[A-Za-z0-9_]*-")


# Sentinels (Unicode private use) rendered where per-subscriber values go, then cut out of the
# shared body, and the comments that mark its parts: untrusted text never carries either.
KW1, KW2, NUMBER, MORE_SENTINEL = "\ue101", "\ue102", "\ue103", "\ue104"
FEEDBACK_SENTINEL = "\ue105"  # where a reader's feedback token goes in a shared card
MARKER_RE = re.compile(r"<!--nl:/?[a-z]+-->")
_SENTINELS = dict.fromkeys(map(ord, (KW1, KW2, NUMBER, MORE_SENTINEL, FEEDBACK_SENTINEL)))
_MARKER_OPEN = re.compile(r"<!--(?=nl:)")


class TagError(ValueError):
    """Static text (template, configuration) would contain or complete a tag key."""


def piece_key(part: str, card: int, piece: int) -> str:
    """The section key of one static piece of one card (``part``: "h" or "t")."""
    return f"-{part}{card}p{piece}-"


def why_key(part: str, which: str) -> str:
    """Section keys of the "why you got it" line: open, middle (between keywords), close."""
    return f"-{part}w{which}-"


def defuse(text: str) -> str:
    """Untrusted text with every key-like token broken (hyphens become U+2010, which look alike),
    the shared body's sentinels dropped and its part markers broken."""
    text = _MARKER_OPEN.sub("<!\u2010-", text.translate(_SENTINELS))
    if "-" not in text:
        return text
    return KEY_RE.sub(lambda m: m.group().replace("-", "\u2010"), text)


def one_line(text: str) -> str:
    """Untrusted text on one line (whitespace collapsed), defused."""
    return defuse(" ".join(text.split()))


def keys_in(text: str) -> list[str]:
    return KEY_RE.findall(text)


def check_section(key: str, value: str) -> None:
    """A section value holds no key and cannot complete one with what is put next to it."""
    found = keys_in(value)
    if found:
        raise TagError(f"section {key} contains the tag {found[0]}")
    if _OPEN_TAIL.search(value) or _OPEN_HEAD.match(value):
        raise TagError(f"section {key} starts or ends with a tag-like fragment")


def check_frame(frame: str, slots: set[str]) -> None:
    """The frame holds only the expected slots, and nothing next to a slot can complete a key."""
    for m in KEY_RE.finditer(frame):
        if m.group() not in slots:
            raise TagError(f"the e-mail contains the tag {m.group()} outside a slot")
        if _OPEN_TAIL.search(frame, 0, m.start()) or _OPEN_HEAD.match(frame, m.end()):
            raise TagError(f"text next to {m.group()} could complete a tag")


def substitute(text: str, substitutions: Mapping[str, str]) -> str:
    """Every substitution in turn, as plain string replacement (a value may bring a later key)."""
    for key, value in substitutions.items():
        if key in text:
            text = text.replace(key, value)
    return text


def split_keys(text: str) -> list[str]:
    """``text`` cut at its keys: text at even indexes, keys at odd ones (``KEY_RE``'s matches)."""
    return _SPLIT_RE.split(text) if "-" in text else [text]


def expand(text: str, sections: Mapping[str, str]) -> str:
    """Every section tag in ``text`` replaced by its section (other tags are left as they are)."""
    if not sections or "-" not in text:
        return text
    parts = split_keys(text)
    parts[1::2] = [sections.get(k, k) for k in parts[1::2]]
    return "".join(parts)


def apply_tags(text: str, substitutions: Mapping[str, str], sections: Mapping[str, str]) -> str:
    """SendGrid's order: every substitution, then every section, as plain string replacement."""
    return expand(substitute(text, substitutions), sections)
