"""A model's reply turned into a validated summary (pure; no I/O).

Providers differ: some ignore ``response_format`` and wrap the JSON in prose or a code fence,
some nest the sections, some return lists. We take the first JSON object in the reply, normalise
the common shapes, validate with pydantic, and keep the TL;DR to one short line.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from newsletter.domain import SUMMARY_SECTIONS

TLDR_MAX_WORDS = 30
TLDR_MAX_CHARS = 240  # for scripts written without spaces between words
SECTION_MAX_CHARS = 6000
_ELLIPSIS = "…"
_SENTENCE_END = re.compile(r"[.!?。！？](?=\s|$)")


class ReplyError(ValueError):
    """The reply is not a usable summary; the reason is short enough for a log line."""


class SummaryReply(BaseModel):
    """What we ask the model for: a TL;DR and the four sections, all strings."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    tldr: str = Field(min_length=1)
    contributions: str = Field(min_length=1)
    method: str = Field(min_length=1)
    results: str = Field(min_length=1)
    conclusions: str = Field(min_length=1)

    @field_validator("contributions", "method", "results", "conclusions", mode="before")
    @classmethod
    def _join_lists(cls, value: Any) -> Any:
        """A list of points becomes a Markdown bullet list."""
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return "\n".join(f"- {v.strip()}" for v in value if v.strip())
        return value

    @field_validator("tldr", mode="before")
    @classmethod
    def _tldr_text(cls, value: Any) -> Any:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return " ".join(value)
        return value

    def sections(self) -> dict[str, str]:
        return {name: _clip(getattr(self, name)) for name in SUMMARY_SECTIONS}


def _key(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


def _flatten(obj: dict[str, Any]) -> dict[str, Any]:
    """Accept ``{"tldr":…, "sections": {…}}`` and spellings such as ``TL;DR`` or ``Results``."""
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        if _key(key) == "sections" and isinstance(value, dict):
            flat.update({_key(k): v for k, v in value.items()})
        else:
            flat.setdefault(_key(key), value)
    return flat


def extract_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``, whether bare, fenced, or surrounded by prose."""
    stripped = text.strip().lstrip("\ufeff")
    try:
        whole = json.loads(stripped)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict):
        return whole
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", stripped):
        try:
            obj, _end = decoder.raw_decode(stripped, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    raise ReplyError("the reply holds no complete JSON object")


def shorten_tldr(text: str) -> str:
    """One line of at most ``TLDR_MAX_WORDS`` words, cut at a sentence end when one is near."""
    line = " ".join(text.split())
    words = line.split(" ")
    if len(words) <= TLDR_MAX_WORDS and len(line) <= TLDR_MAX_CHARS:
        return line
    if len(words) > TLDR_MAX_WORDS:
        head = " ".join(words[:TLDR_MAX_WORDS])
    else:
        head = line[:TLDR_MAX_CHARS]
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] >= len(head) // 2:
        return head[: ends[-1]]
    return head.rstrip(" ,;:.-–—") + _ELLIPSIS


def _clip(text: str) -> str:
    text = text.replace("\x00", "")
    if len(text) <= SECTION_MAX_CHARS:
        return text
    return text[:SECTION_MAX_CHARS].rstrip() + _ELLIPSIS


def parse_reply(content: str | None) -> tuple[str, dict[str, str]]:
    """``(tldr, sections)`` from the model's reply, or ``ReplyError`` saying what was wrong."""
    if not content or not content.strip():
        raise ReplyError("the reply is empty")
    obj = _flatten(extract_json_object(content))
    try:
        reply = SummaryReply.model_validate(obj)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'reply'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        raise ReplyError(f"the JSON reply is not a summary ({problems})") from exc
    return shorten_tldr(reply.tldr.replace("\x00", "")), reply.sections()
