"""Pure input rules: e-mail addresses, preferences, lengths. No database, no I/O."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from newsletter.matching import normalise_terms
from subscribers.errors import InvalidInput

MAX_EMAIL = 254
MAX_KEYWORDS = 50
MAX_KEYWORD_LEN = 100
MAX_KEYWORDS_FIELD = 4000
MAX_PAPERS_LIMIT = 200
MAX_USER_AGENT = 512
MAX_IP = 64


def reject_control(value: str, field: str) -> None:
    """CR, LF and other control characters never get into a header, a file or a page."""
    if any(ch in value for ch in "\r\n\x00") or any(ord(ch) < 32 and ch != "\t" for ch in value):
        raise InvalidInput(f"{field} must be a single line without control characters", field)


def normalise_email(raw: str) -> str:
    """The one normal form of an address, made once at the door: syntax checked (no DNS), the
    domain lower-cased and IDNA-encoded (``bücher.de`` -> ``xn--bcher-kva.de``, valid in a
    ``To:`` header), the local part kept as typed (it is what the mailbox's owner wrote).
    Non-ASCII local parts are refused: they need SMTPUTF8, which we do not rely on."""
    if not isinstance(raw, str):
        raise InvalidInput("an e-mail address is required", "email")
    reject_control(raw, "email")
    value = raw.strip()
    if not value:
        raise InvalidInput("an e-mail address is required", "email")
    if len(value) > MAX_EMAIL:
        raise InvalidInput(f"an e-mail address has at most {MAX_EMAIL} characters", "email")
    local = value.rpartition("@")[0]
    if local and not local.isascii():
        raise InvalidInput(
            "addresses with non-ASCII characters before the @ (such as é or ü) are not "
            "supported; please use an ASCII address",
            "email",
        )
    try:
        info = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"{value!r} is not a valid e-mail address: {exc}", "email") from exc
    email = f"{info.local_part}@{info.ascii_domain.lower()}"
    if len(email) > MAX_EMAIL:
        raise InvalidInput(f"an e-mail address has at most {MAX_EMAIL} characters", "email")
    return email


def mailbox_key(email: str) -> str:
    """What makes two addresses one mailbox: the normal form, case-folded. Almost every mail
    server ignores case in the local part, so ``Ann@x.org`` and ``ann@x.org`` are one row."""
    return email.strip().lower()


def email_hash(email: str) -> str:
    """The suppression key: SHA-256 of the address, case-folded so that suppression errs on
    the side of not mailing (``Ann@x.org`` and ``ann@x.org`` are one mailbox almost everywhere)."""
    return hashlib.sha256(email.strip().casefold().encode("utf-8")).hexdigest()


def split_terms(raw: str | Sequence[str] | None, sep: str = ",") -> list[str]:
    """Form fields give "a, b\\nc"; the CLI and CSV give lists or ";"-joined strings."""
    if raw is None:
        return []
    if isinstance(raw, str):
        if len(raw) > MAX_KEYWORDS_FIELD:
            raise InvalidInput(f"at most {MAX_KEYWORDS_FIELD} characters of keywords", "keywords")
        parts: Iterable[str] = raw.replace("\r\n", "\n").replace("\n", sep).split(sep)
    else:
        parts = raw
    return [p for p in (s.strip() for s in parts) if p]


@dataclass(frozen=True, slots=True)
class Preferences:
    keywords: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    max_papers: int | None = None
    include_summaries: bool = True


def check_keywords(terms: Sequence[str]) -> list[str]:
    for term in terms:
        reject_control(term, "keywords")
        if len(term) > MAX_KEYWORD_LEN:
            raise InvalidInput(f"a keyword has at most {MAX_KEYWORD_LEN} characters", "keywords")
    out = normalise_terms(terms)
    if len(out) > MAX_KEYWORDS:
        raise InvalidInput(f"at most {MAX_KEYWORDS} keywords", "keywords")
    return out


def check_categories(values: Sequence[str], allowed: Sequence[str]) -> list[str]:
    known = set(allowed)
    out: list[str] = []
    for value in values:
        reject_control(value, "categories")
        if value not in known:
            raise InvalidInput(
                f"unknown category {value[:40]!r}; choose from {', '.join(allowed)}", "categories"
            )
        if value not in out:
            out.append(value)
    return out


def check_max_papers(value: int | str | None, site_max: int) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("the number of papers must be a whole number", "max_papers") from exc
    upper = min(site_max, MAX_PAPERS_LIMIT)
    if not 1 <= number <= upper:
        raise InvalidInput(f"the number of papers must be between 1 and {upper}", "max_papers")
    return number


def make_preferences(
    *,
    keywords: str | Sequence[str] | None,
    categories: Sequence[str] | None,
    allowed_categories: Sequence[str],
    max_papers: int | str | None = None,
    site_max_papers: int = MAX_PAPERS_LIMIT,
    include_summaries: bool = True,
) -> Preferences:
    return Preferences(
        keywords=tuple(check_keywords(split_terms(keywords))),
        categories=tuple(check_categories(list(categories or []), allowed_categories)),
        max_papers=check_max_papers(max_papers, site_max_papers),
        include_summaries=bool(include_summaries),
    )


def clip(value: str | None, limit: int) -> str | None:
    """Request metadata (IP, user agent) is stored clipped and without control characters."""
    if value is None:
        return None
    cleaned = "".join(ch if ch.isprintable() else " " for ch in value)
    return cleaned[:limit]
