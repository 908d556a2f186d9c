"""Plain data passed between pipeline stages; no I/O here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

ANNOUNCE_TYPES = ("new", "cross", "replace", "replace-cross")


@dataclass(frozen=True, slots=True)
class Paper:
    """One arXiv paper as announced, with the API's full metadata merged in."""

    arxiv_id: str  # without version, e.g. "2604.19009"
    version: int
    title: str
    abstract: str
    authors: tuple[str, ...]
    primary_category: str
    categories: tuple[str, ...]
    published: dt.datetime
    updated: dt.datetime | None = None
    announce_type: str = "new"
    comment: str | None = None
    journal_ref: str | None = None
    doi: str | None = None

    @property
    def versioned_id(self) -> str:
        return f"{self.arxiv_id}v{self.version}"

    @property
    def abs_url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv_id}"

    @property
    def pdf_url(self) -> str:
        return f"https://arxiv.org/pdf/{self.versioned_id}"

    @property
    def html_url(self) -> str:
        return f"https://arxiv.org/html/{self.versioned_id}"


@dataclass(frozen=True, slots=True)
class Announcement:
    """A day's announcement: its date and the papers in it, each once."""

    date: dt.date
    papers: tuple[Paper, ...]
    source: str = "rss"  # "rss" or "api"


@dataclass(frozen=True, slots=True)
class RankedPaper:
    """A paper with its score and the keywords that matched (why a reader got it)."""

    paper: Paper
    score: float
    matched_keywords: tuple[str, ...] = field(default_factory=tuple)


SUMMARY_SECTIONS = ("contributions", "method", "results", "conclusions")


@dataclass(frozen=True, slots=True)
class Summary:
    """A model's summary of one paper: a one-line TL;DR and four Markdown sections (untrusted)."""

    tldr: str
    sections: dict[str, str]
    model: str


@dataclass(frozen=True, slots=True)
class IssueEntry:
    """A paper as it stands in an issue: scored, with why it matched."""

    paper: Paper
    score: float
    matched_keywords: tuple[str, ...]
    rank: int | None  # position in the global digest (1-based); None: candidate pool only
    announce_type: str = "new"
    is_update: bool = False
    day: dt.date | None = None  # in a weekly e-mail: the issue the paper came from


@dataclass(frozen=True, slots=True)
class IssueView:
    """Everything readers see of one day's issue, read back from the database."""

    date: dt.date
    papers_found: int
    categories: tuple[str, ...]
    digest: tuple[IssueEntry, ...]  # the global digest, ranked
    pool: tuple[IssueEntry, ...]  # every candidate that passed the exclude list, fetch order
    status: str = "built"
    kind: str = "daily"  # "weekly": the days' issues merged for the weekly e-mail (issue 14)
    days: tuple[dt.date, ...] = ()  # a weekly view's days, oldest first
