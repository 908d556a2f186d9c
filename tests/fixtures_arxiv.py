"""Helpers for the arXiv tests: a fake clock, recorded files, settings pointing at a server."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsletter.arxiv.replay import RecordedEntry, demo_recording_path, load_recording
from newsletter.config import ArxivSettings, Settings, settings_for_tests

ARXIV_DATA = Path(__file__).resolve().parent / "data" / "arxiv"
ATOM_FEED = ARXIV_DATA / "zotero-arxiv-daily_atom_cs.AI_2025-08-20_86entries_TRUNCATED.xml"
RSS_FEED = ARXIV_DATA / "distill_rss2_cs.LG_2026-04-27_3items_TRIMMED.xml"
EMPTY_PAGE = ARXIV_DATA / "arxivpy_idlist-0000.0000_empty_totalResults0_2026-04-12.xml"
ERROR_PAGE = ARXIV_DATA / "arxivpy_idlist-abc_error_http400_2026-04-12.xml"
SINGLE_PAGE = ARXIV_DATA / "arxivpy_idlist-1707.08567_single_2026-04-12.xml"
RATE_EXCEEDED = ARXIV_DATA / "arxiv_api_rate_limited_body_RateExceeded.txt"


@dataclass
class FakeClock:
    """A monotonic clock that only moves when told to, or when someone sleeps."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def recorded_entries() -> list[RecordedEntry]:
    return load_recording(demo_recording_path())


def arxiv_settings(base_url: str, **overrides: Any) -> ArxivSettings:
    values: dict[str, Any] = {
        "rss_url": f"{base_url}/rss/",
        "api_url": f"{base_url}/api/query",
        "pdf_url": f"{base_url}/pdf/",
        "delay_seconds": 3,
        "backoff_seconds": 5,
        "max_backoff_seconds": 60,
        "max_retries": 2,
        "timeout_seconds": 5,
    }
    values.update(overrides)
    return ArxivSettings.model_validate(values)


def source_settings(base_url: str, **overrides: Any) -> Settings:
    arxiv = arxiv_settings(base_url, delay_seconds=0).model_dump()
    arxiv.update(overrides.pop("arxiv", {}))
    values: dict[str, Any] = {"categories": ["cs.LG"], "arxiv": arxiv}
    values.update(overrides)
    return settings_for_tests(**values)
