"""`newsletter demo`: all outputs under one directory, arXiv replayed locally, sample readers.

The demo runs the real pipeline end to end: the recorded day is fetched over HTTP from the
replay server, ranked, summarised (when a model is configured), archived, and mailed through the
file backend to a few sample subscribers whose HTML previews are written beside the outbox.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.engine import Engine

from newsletter.arxiv.replay import ReplayServer
from newsletter.config import Settings
from newsletter.db import session_scope, upgrade
from newsletter.email.preview import preview_email
from subscribers import service


@dataclass(frozen=True, slots=True)
class SampleReader:
    email: str
    keywords: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    max_papers: int | None = None
    include_summaries: bool = True


SAMPLE_READERS = (
    SampleReader("ada@example.org"),  # the global digest
    SampleReader("grace@example.org", ("reinforcement learning", "agent", "reward"), max_papers=5),
    SampleReader("alan@example.org", ("quantization", "KV cache", "inference"), ("cs.LG",)),
    SampleReader("edsger@example.org", ("graph", "theorem"), include_summaries=False),
)


def demo_settings(settings: Settings, out_dir: Path, server: ReplayServer) -> Settings:
    """The user's settings aimed at the replay server; SQLite, archive, outbox in out_dir.

    Without NEWSLETTER_SECRET_KEY the demo signs its links with a throw-away key.
    """
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
    secret = settings.secret_key or SecretStr(secrets.token_urlsafe(48))
    return settings.model_copy(
        update={
            "database_url": f"sqlite:///{out / 'newsletter.db'}",
            "archive_dir": str(out / "archive"),
            "arxiv": arxiv,
            "delivery": delivery,
            "secret_key": secret,
        }
    )


def reset_outputs(out_dir: Path) -> None:
    """Start each demo afresh: its database, outbox and previews (nothing else is touched)."""
    for name in ("newsletter.db", "newsletter.db-wal", "newsletter.db-shm"):
        (out_dir / name).unlink(missing_ok=True)
    for sub in ("outbox", "previews"):
        folder = out_dir / sub
        if folder.is_dir():
            for item in folder.iterdir():
                if item.suffix in (".eml", ".html", ".txt", ".tmp"):
                    item.unlink()


def seed_readers(engine: Engine, settings: Settings) -> None:
    """The sample subscribers, active, with their preferences."""
    upgrade(engine)
    cats = set(settings.categories)
    with session_scope(engine) as session:
        for reader in SAMPLE_READERS:
            added = service.add(
                session,
                settings=settings,
                email=reader.email,
                keywords=list(reader.keywords),
                categories=[c for c in reader.categories if c in cats],
                active=True,
            )
            if added.subscriber.id is None:
                raise RuntimeError(f"sample subscriber {reader.email} was not stored")
            service.update_preferences(
                session,
                settings=settings,
                subscriber_id=added.subscriber.id,
                keywords=list(reader.keywords),
                categories=[c for c in reader.categories if c in cats],
                max_papers=reader.max_papers,
                include_summaries=reader.include_summaries,
            )


def write_previews(engine: Engine, settings: Settings, out_dir: Path) -> list[Path]:
    """Each sample reader's e-mail as an HTML file a browser can open."""
    folder = out_dir.resolve() / "previews"
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    with session_scope(engine) as session:
        for reader in SAMPLE_READERS:
            preview = preview_email(session, settings, reader.email)
            path = folder / f"{reader.email.split('@')[0]}.html"
            path.write_text(preview.rendered.html, encoding="utf-8")
            paths.append(path)
    return paths
