"""Settings for `newsletter demo`: all outputs under one directory, arXiv replayed locally."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from newsletter.config import Settings


class ReplayServer(Protocol):
    rss_url: str
    api_url: str
    pdf_url: str


def demo_settings(settings: Settings, out_dir: Path, server: ReplayServer) -> Settings:
    """The user's settings aimed at the replay server; SQLite, archive, outbox in out_dir."""
    out = out_dir.resolve()
    arxiv = settings.arxiv.model_copy(
        update={
            "rss_url": server.rss_url,
            "api_url": server.api_url,
            "pdf_url": server.pdf_url,
            "delay_seconds": 0.0,
        }
    )
    delivery = settings.delivery.model_copy(
        update={"backend": "file", "outbox_dir": str(out / "outbox")}
    )
    return settings.model_copy(
        update={
            "database_url": f"sqlite:///{out / 'newsletter.db'}",
            "archive_dir": str(out / "archive"),
            "arxiv": arxiv,
            "delivery": delivery,
        }
    )
