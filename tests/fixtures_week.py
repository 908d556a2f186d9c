"""Five announcement days replayed in order, for the cadence and language tests.

The recorded arXiv answer (newsletter/demo_data) is split into five days' worth of papers; the
replay server serves day k's feed and API answers while the pipeline runs with ``date`` and
``today`` = day k (as ``newsletter run --date D --today D`` does). E-mails go to the file
backend's outbox and are read back as raw .eml files.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlmodel import select

from newsletter.arxiv.replay import RecordedEntry, ReplayServer
from newsletter.config import Settings
from newsletter.db import make_engine, session_scope
from newsletter.pipeline import RunResult
from newsletter.runtime.runner import finish_day
from subscribers import service
from subscribers.models import Subscriber

MONDAY = dt.date(2026, 11, 23)
WEEK = tuple(MONDAY + dt.timedelta(days=k) for k in range(5))  # Monday to Friday
QUIET = Console(file=open("/dev/null", "w"), force_terminal=False)  # noqa: SIM115
ID_RE = re.compile(r"arXiv:(\d{4}\.\d{4,5})")


def day_entries(entries: list[RecordedEntry], k: int) -> list[RecordedEntry]:
    return entries[k::5]


def run_day(
    server: ReplayServer, all_entries: list[RecordedEntry], settings: Settings, k: int
) -> RunResult:
    """Serve day k's papers and run the pipeline for it."""
    server.entries = day_entries(all_entries, k)
    server.feed_date = WEEK[k]
    return finish_day(settings, date=WEEK[k], rebuild=True, today=WEEK[k], console=QUIET)


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str
    papers: tuple[str, ...]  # arXiv ids in the order of the e-mail


def outbox(directory: Path) -> list[Mail]:
    out = []
    for path in sorted(directory.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        msg: Any = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        out.append(
            Mail(
                str(msg["To"]),
                str(msg["Subject"]),
                text,
                html,
                tuple(dict.fromkeys(ID_RE.findall(text))),
            )
        )
    return out


def set_prefs(settings: Settings, address: str, **changes: Any) -> None:
    """The reader changes some preferences (as the preferences page does), keeping the rest."""
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        sub = session.exec(select(Subscriber).where(Subscriber.email == address)).one()
        current: dict[str, Any] = {
            "keywords": list(sub.keywords),
            "categories": list(sub.categories),
            "max_papers": sub.max_papers,
            "include_summaries": sub.include_summaries,
        }
        service.update_preferences(
            session, settings=settings, subscriber_id=sub.id or 0, **{**current, **changes}
        )
    engine.dispose()


def set_cadence(settings: Settings, address: str, cadence: str) -> None:
    set_prefs(settings, address, cadence=cadence)
