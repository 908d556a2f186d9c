"""One body for every subscriber: the digest rendered once, cut into a frame and card sections.

The templates mark each card (``<!--nl:card-->…<!--nl:/card-->``), the "why you got it" block
inside it (``<!--nl:why-->…``), where the card list goes (``<!--nl:cards-->``) and the model
disclaimer (``<!--nl:note-->…``). The renderer renders ALL of the day's cards once, with sentinel
characters where per-subscriber values go (the keywords, the card's number in the text part);
``slice_body`` cuts that into:

- the frame: everything but the cards, with slots (``-cards-``, ``-intro-``, ``-subject-``…);
- sections: each card's static pieces (``-h3p0-``, ``-h3p1-`` for card 3 in HTML, ``-t3p…-`` in
  text), the pieces of the "why" line around the keywords, the disclaimer, and the pieces of the
  "N more papers in today's issue" link (``<!--nl:more-->…``) around its label.

A reader's cards that would take the HTML past ``HTML_BUDGET`` become that link
(``SharedBody.shown`` adds up the section sizes; nothing is expanded to measure).

``SharedBody.substitutions(selection)`` is one subscriber's slot values: their cards in their
order as section tags with their escaped keywords in between, their count, subject, preheader.
Keywords never touch a tag's hyphen (a non-key character always separates them), so no keyword
can complete a tag.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from markupsafe import escape

from newsletter.email import tags
from newsletter.email.selection import Selection
from newsletter.rhythm.catalogue import ENGLISH, Words

KW1, KW2, NUMBER, MARKER_RE = tags.KW1, tags.KW2, tags.NUMBER, tags.MARKER_RE
MORE = tags.MORE_SENTINEL  # where the "N more papers" label goes in the rendered body
FEEDBACK = tags.FEEDBACK_SENTINEL
_CARD_RE = re.compile(r"<!--nl:card-->(.*?)<!--nl:/card-->", re.DOTALL)
_NOTE_RE = re.compile(r"<!--nl:note-->(.*?)<!--nl:/note-->", re.DOTALL)
_MORE_RE = re.compile(r"<!--nl:more-->(.*?)<!--nl:/more-->", re.DOTALL)

_SLOT_RE = re.compile(rf"(<!--nl:why-->.*?<!--nl:/why-->|{NUMBER}|{FEEDBACK})", re.DOTALL)
_KEYISH = re.compile(r"[A-Za-z0-9_-]")

# Gmail clips HTML over ~102 KB (footer and unsubscribe link included): a reader's HTML stays
# under this many bytes; the cards past it become one "N more papers" link to the web archive.
HTML_BUDGET = 90_000
# Room kept in the budget for what is filled in per reader (links, subject, preheader, counts).
SLOT_ALLOWANCE = 3_000


def more_label(hidden: int, words: Words = ENGLISH) -> str:
    """The link text that stands for the cards past the budget, in the reader's language."""
    label = words.ngettext(
        "%(n)s more paper in today's issue", "%(n)s more papers in today's issue", hidden
    )
    return label % {"n": hidden}


Slot = Literal["num", "why", "fb"]


class SliceError(ValueError):
    """The rendered template does not have the structure the slicer needs."""


@dataclass(frozen=True, slots=True)
class Why:
    """How to write one part's "why you got it" line for any list of keywords.

    The line is ``open kw1 mid kw2 … close``; the boundary characters of each static piece stay
    in the substitution value (``lead``/``trail``) so a keyword always sits between two non-key
    characters, and the rest of each piece is a section (``key`` is empty when nothing is left).
    """

    open_key: str
    open_trail: str
    mid_lead: str
    mid_key: str
    mid_trail: str
    close_lead: str
    close_key: str

    def value(self, keywords: tuple[str, ...]) -> str:
        if not keywords:
            return ""
        mid = f"{self.mid_lead}{self.mid_key}{self.mid_trail}"
        return (
            f"{self.open_key}{self.open_trail}{mid.join(keywords)}{self.close_lead}{self.close_key}"
        )


@dataclass(frozen=True, slots=True)
class CardLayout:
    """One card in one part: its section keys in order, with a slot after each but the last."""

    pieces: tuple[str, ...]  # section key, or "" for an empty piece
    slots: tuple[Slot, ...]
    size: int = 0  # UTF-8 bytes of the pieces (the keywords and number not included)


@dataclass(frozen=True, slots=True)
class PartSlices:
    frame: str
    cards: dict[str, CardLayout]
    why: Why | None
    sections: dict[str, str]


def _boundary(text: str, where: str, at_start: bool) -> tuple[str, str]:
    """Split off the boundary character; it must not be one that could be part of a key."""
    if not text:
        raise SliceError(f"the {where} of the why line is empty")
    ch = text[0] if at_start else text[-1]
    if _KEYISH.match(ch):
        raise SliceError(f"the {where} of the why line must be next to punctuation or space")
    return (ch, text[1:]) if at_start else (ch, text[:-1])


def _why(part: str, block: str, sections: dict[str, str]) -> Why:
    """The why block rendered with keywords KW1, KW2: ``open KW1 mid KW2 close``."""
    inner = block.removeprefix("<!--nl:why-->").removesuffix("<!--nl:/why-->")
    head, sep1, rest = inner.partition(KW1)
    mid, sep2, close = rest.partition(KW2)
    if not sep1 or not sep2:
        raise SliceError("the why block does not show the keywords")
    trail, open_text = _boundary(head, "start", at_start=False)
    lead, mid_rest = _boundary(mid, "middle", at_start=True)
    mid_trail, mid_text = _boundary(mid_rest, "middle", at_start=False) if mid_rest else ("", "")
    close_lead, close_text = _boundary(close, "end", at_start=True)
    keys: dict[str, str] = {}
    for which, text in (("o", open_text), ("m", mid_text), ("c", close_text)):
        if text:
            key = tags.why_key(part, which)
            sections[key] = text
            keys[which] = key
    return Why(
        open_key=keys.get("o", ""),
        open_trail=trail,
        mid_lead=lead,
        mid_key=keys.get("m", ""),
        mid_trail=mid_trail,
        close_lead=close_lead,
        close_key=keys.get("c", ""),
    )


def slice_part(part: str, rendered: str, card_ids: list[str], frame_slots: set[str]) -> PartSlices:
    """Cut one rendered part ("h" HTML or "t" text) into frame, card layouts and sections."""
    sections: dict[str, str] = {}
    blocks = _CARD_RE.findall(rendered)
    if len(blocks) != len(card_ids):
        raise SliceError(f"{len(blocks)} card blocks rendered for {len(card_ids)} papers")
    cards_slot = tags.CARDS if part == "h" else tags.TEXT_CARDS
    note_slot, note_key = (
        (tags.NOTE, tags.DISCLAIMER) if part == "h" else (tags.TEXT_NOTE, tags.TEXT_DISCLAIMER)
    )
    frame = _CARD_RE.sub("", rendered)
    if frame.count("<!--nl:cards-->") != 1 or len(_NOTE_RE.findall(frame)) != 1:
        raise SliceError("the template must mark the card list and the note exactly once")
    note = _NOTE_RE.search(frame)
    assert note is not None
    if note.group(1):
        sections[note_key] = note.group(1)
    frame = _NOTE_RE.sub(lambda _m: note_slot, frame).replace("<!--nl:cards-->", cards_slot)
    more_blocks = _MORE_RE.findall(frame)
    if len(more_blocks) != 1 or more_blocks[0].count(MORE) != 1:
        raise SliceError("the template must mark the 'more papers' link exactly once")
    for key, text in zip(tags.MORE_KEYS[part], more_blocks[0].split(MORE), strict=True):
        if text:  # SendGrid refuses an empty section
            sections[key] = text
    frame = _MORE_RE.sub(lambda _m: tags.MORE if part == "h" else tags.TEXT_MORE, frame)
    if MARKER_RE.search(frame):
        raise SliceError("an unknown <!--nl:…--> marker is left in the frame")
    why: Why | None = None
    layouts: dict[str, CardLayout] = {}
    for index, (arxiv_id, block) in enumerate(zip(card_ids, blocks, strict=True)):
        split = _SLOT_RE.split(block)
        pieces, found = split[0::2], split[1::2]
        slots: list[Slot] = []
        for token in found:
            if token == NUMBER:
                slots.append("num")
                continue
            if token == FEEDBACK:
                slots.append("fb")
                continue
            slots.append("why")
            this = _why(part, token, sections)
            if why is None:
                why = this
            elif this != why:
                raise SliceError("the why block differs between cards")
        keys: list[str] = []
        for n, text in enumerate(pieces):
            if MARKER_RE.search(text) or any(s in text for s in (KW1, KW2, NUMBER, FEEDBACK)):
                raise SliceError(f"card {arxiv_id}: a marker or sentinel is left in its text")
            key = tags.piece_key(part, index, n) if text else ""
            if key:
                sections[key] = text
            keys.append(key)
        size = sum(len(sections[k].encode()) for k in keys if k)
        layouts[arxiv_id] = CardLayout(tuple(keys), tuple(slots), size)
    for key, value in sections.items():
        tags.check_section(key, value)
    tags.check_frame(frame, frame_slots)
    return PartSlices(frame, layouts, why, sections)


@dataclass(frozen=True, slots=True)
class Slots:
    """What the frame's per-subscriber slots say for one count (computed by the renderer)."""

    subject: str
    preheader: str
    intro: str


@dataclass(frozen=True, slots=True)
class SharedBody:
    """The day's body for one variant (with or without TL;DRs), shared by every subscriber.

    ``subject``/``html``/``text`` hold slots and ``sections`` the card pieces: together with one
    subscriber's ``substitutions`` they make that subscriber's e-mail (``render.personalise``).
    """

    subject: str
    html: str
    text: str
    sections: dict[str, str]
    html_cards: dict[str, CardLayout]
    text_cards: dict[str, CardLayout]
    html_why: Why | None
    text_why: Why | None
    has_tldr: frozenset[str]
    slots_for: Callable[[Selection], Slots]
    words: Words = ENGLISH  # the reader language's fixed words (the "N more papers" link)

    def _bytes(self, key: str) -> int:
        return len(self.sections.get(key, "").encode())

    def _why_bytes(self) -> tuple[int, int]:
        """Bytes of the "why" line around the keywords, and between two keywords."""
        why = self.html_why
        if why is None:
            return 0, 0
        around = self._bytes(why.open_key) + self._bytes(why.close_key)
        around += len(f"{why.open_trail}{why.close_lead}".encode())
        between = self._bytes(why.mid_key) + len(f"{why.mid_lead}{why.mid_trail}".encode())
        return around, between

    def shown(self, selection: Selection) -> int:
        """How many of the reader's cards fit in ``HTML_BUDGET`` (the rest become a link)."""
        base = len(self.html.encode()) + self._bytes(tags.DISCLAIMER) + SLOT_ALLOWANCE
        around, between = self._why_bytes()
        sizes = []
        for entry in selection.entries:
            layout = self.html_cards.get(entry.paper.arxiv_id)
            keywords = selection.matched.get(entry.paper.arxiv_id, ())
            why = 0
            if keywords:
                shown = sum(len(_keyword(k, html=True).encode()) for k in keywords)
                why = around + shown + between * (len(keywords) - 1)
            sizes.append((layout.size if layout else 0) + why + 4)
        if base + sum(sizes) <= HTML_BUDGET:
            return len(sizes)
        total = base + sum(self._bytes(k) for k in tags.MORE_KEYS["h"]) + 64
        for n, size in enumerate(sizes):
            total += size
            if total > HTML_BUDGET:
                return n
        return len(sizes)

    def substitutions(self, selection: Selection) -> dict[str, str]:
        """One subscriber's slot values (links not included: see ``render.link_substitutions``)."""
        html_cards: list[str] = []
        text_cards: list[str] = []
        shown = self.shown(selection)
        for position, entry in enumerate(selection.entries[:shown], start=1):
            arxiv_id = entry.paper.arxiv_id
            if arxiv_id not in self.html_cards:
                raise KeyError(f"paper {arxiv_id} is not in the day's pool")
            keywords = selection.matched.get(arxiv_id, ())
            html_cards.append(
                _card(self.html_cards[arxiv_id], self.html_why, keywords, position, html=True)
            )
            text_cards.append(
                _card(self.text_cards[arxiv_id], self.text_why, keywords, position, html=False)
            )
        slots = self.slots_for(selection)
        shows_tldr = any(e.paper.arxiv_id in self.has_tldr for e in selection.entries[:shown])
        hidden = len(selection.entries) - shown
        label = more_label(hidden, self.words) if hidden else ""
        h0, h1 = (k if k in self.sections else "" for k in tags.MORE_KEYS["h"])
        t0, t1 = (k if k in self.sections else "" for k in tags.MORE_KEYS["t"])
        return {
            tags.SUBJECT: slots.subject,
            tags.HTML_SUBJECT: str(escape(slots.subject)),
            tags.PREHEADER: str(escape(slots.preheader)),
            tags.INTRO: str(escape(slots.intro)),
            tags.TEXT_INTRO: slots.intro,
            tags.CARDS: "".join(html_cards),
            tags.TEXT_CARDS: "".join(text_cards),
            tags.NOTE: tags.DISCLAIMER if shows_tldr and tags.DISCLAIMER in self.sections else "",
            tags.TEXT_NOTE: (
                tags.TEXT_DISCLAIMER if shows_tldr and tags.TEXT_DISCLAIMER in self.sections else ""
            ),
            tags.MORE: f"{h0}{escape(label)}{h1}" if hidden else "",
            tags.TEXT_MORE: f"{t0}{label}{t1}" if hidden else "",
        }


@functools.lru_cache(maxsize=4096)
def _keyword(keyword: str, *, html: bool) -> str:
    """A matched keyword as a card shows it (readers share keywords: each is made once)."""
    text = tags.one_line(keyword)
    return str(escape(text)) if html else text


def _card(
    layout: CardLayout, why: Why | None, keywords: tuple[str, ...], position: int, *, html: bool
) -> str:
    out: list[str] = []
    for n, key in enumerate(layout.pieces):
        out.append(key)
        if n < len(layout.slots):
            if layout.slots[n] == "num":
                out.append(str(position))
            elif layout.slots[n] == "fb":
                out.append(tags.FEEDBACK)  # the reader's token, put in by ``with_feedback``
            elif why is not None:
                out.append(why.value(tuple(_keyword(k, html=html) for k in keywords)))
    return "".join(out)


def with_feedback(substitutions: Mapping[str, str], token: str) -> dict[str, str]:
    """One reader's substitutions with their feedback token: in their cards (shared by
    readers with the same selection, so filled per reader here) and as a substitution of its
    own (for a body whose cards were expanded beforehand)."""
    out = {**substitutions, tags.FEEDBACK: token}
    for key in (tags.CARDS, tags.TEXT_CARDS):
        if key in out:
            out[key] = out[key].replace(tags.FEEDBACK, token)
    return out
