"""CSV import and export of subscribers (`email,keywords,categories,status`, then
`cadence,language` and the profile's `interests,papers,authors`; lists `;`-joined; files with
fewer columns still import: daily, the site's language, no profile).

Import validates every row, reports bad ones by line number and imports the rest in bulk
(one INSERT per chunk, not one round trip per row); existing and repeated addresses are skipped.

Export neutralises formulas (OWASP's CSV injection rule): a cell starting with ``=``, ``+``,
``-``, ``@``, tab or CR gets a leading ``'``, and so does one already starting with ``'``;
import removes one leading ``'``, so every cell reads back exactly as it was stored.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from sqlalchemy import insert
from sqlmodel import Session, col, select

from newsletter.config import Settings
from newsletter.models import utcnow
from newsletter.relevance.csvcols import (
    PROFILE_COLUMNS,
    ProfileCells,
    parse_profile_cells,
    profile_cells,
    resolve_rows,
    save_rows,
)
from newsletter.relevance.profiles import Fetch
from subscribers.errors import InvalidInput, SubscriberError
from subscribers.models import Consent, Subscriber, Suppression, new_link_key
from subscribers.rhythm import check_cadence, check_language
from subscribers.service import new_nonce
from subscribers.validation import (
    email_hash,
    mailbox_key,
    make_preferences,
    normalise_email,
    split_terms,
)

BASE_COLUMNS = ("email", "keywords", "categories", "status", "cadence", "language")
HEADER = (*BASE_COLUMNS, *PROFILE_COLUMNS)  # append new columns here
IMPORT_STATUSES = ("active", "pending")
CHUNK = 2000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def neutralise(cell: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula (reversed by ``restore``)."""
    if cell.startswith((*FORMULA_STARTS, QUOTE)):
        return QUOTE + cell
    return cell


def restore(cell: str) -> str:
    return cell[1:] if cell.startswith(QUOTE) else cell


@dataclass
class ImportReport:
    imported: int = 0
    existing: int = 0
    suppressed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def _parse_row(raw: dict[str, str | None], settings: Settings, now: dt.datetime) -> dict[str, Any]:
    row = {k: restore(v or "") for k, v in raw.items()}
    email = normalise_email(row.get("email") or "")
    prefs = make_preferences(
        keywords=split_terms(row.get("keywords") or "", ";"),
        categories=split_terms(row.get("categories") or "", ";"),
        allowed_categories=settings.categories,
    )
    status = (row.get("status") or "active").strip().lower()
    if status not in IMPORT_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(IMPORT_STATUSES)}, not {status!r}")
    return {
        "email": email,
        "email_key": mailbox_key(email),
        "link_key": new_link_key(),
        "status": status,
        "created_at": now,
        "status_changed_at": now,
        "confirmed_at": now if status == "active" else None,
        "unsubscribed_at": None,
        "keywords": list(prefs.keywords),
        "categories": list(prefs.categories),
        "max_papers": None,
        "include_summaries": True,
        "cadence": check_cadence(row.get("cadence")),
        "language": check_language(row.get("language"), settings),
        "token_nonce": new_nonce(),
        "_profile": parse_profile_cells(row, settings),
    }


def import_csv(
    session: Session,
    *,
    settings: Settings,
    source: Iterable[str],
    now: dt.datetime | None = None,
    fetch: Fetch | None = None,
) -> ImportReport:
    """``fetch`` looks up example papers missing from the database (rows naming papers arXiv
    does not know are reported as bad and not imported)."""
    now = now or utcnow()
    reader = csv.DictReader(source)
    fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    if "email" not in fields:
        raise InvalidInput(f"the first line must be the header {','.join(HEADER)}")
    unknown = [f for f in fields if f not in HEADER]
    if unknown:
        raise InvalidInput(f"unknown column(s) {', '.join(unknown)}; expected {','.join(HEADER)}")
    reader.fieldnames = fields
    report = ImportReport()
    existing = set(session.exec(select(Subscriber.email_key)).all())
    suppressed = set(session.exec(select(Suppression.email_hash)).all())
    seen: dict[str, int] = {}
    batch: list[dict[str, Any]] = []
    for row in reader:
        line = reader.line_num
        if None in row:  # more cells than header columns
            report.errors.append((line, "too many columns"))
            continue
        try:
            values = _parse_row(row, settings, now)
        except SubscriberError as exc:
            report.errors.append((line, exc.message))
            continue
        except csv.Error as exc:
            report.errors.append((line, str(exc)))
            continue
        email = values["email_key"]
        if email in seen:
            report.errors.append((line, f"duplicate of line {seen[email]}"))
            continue
        seen[email] = line
        if email in existing:
            report.existing += 1
            continue
        if email_hash(values["email"]) in suppressed:
            report.suppressed += 1
            continue
        batch.append({**values, "_line": line})
        if len(batch) >= CHUNK:
            report.imported += _insert(session, batch, now, fetch, report)
            batch = []
    if batch:
        report.imported += _insert(session, batch, now, fetch, report)
    return report


def _insert(
    session: Session,
    batch: list[dict[str, Any]],
    now: dt.datetime,
    fetch: Fetch | None,
    report: ImportReport,
) -> int:
    """Insert a chunk (rows naming unknown papers become errors); returns the rows inserted."""
    cells: list[ProfileCells | None] = [row.pop("_profile") for row in batch]
    lines: list[int] = [row.pop("_line") for row in batch]
    keep, bad = resolve_rows(session, cells, fetch)
    for index, message in bad.items():
        report.errors.append((lines[index], message))
    rows = [row for i, row in enumerate(batch) if i in keep]
    if not rows:
        return 0
    table = Subscriber.__table__  # type: ignore[attr-defined]
    ids = (
        session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
        .scalars()
        .all()
    )
    session.execute(
        insert(Consent.__table__),  # type: ignore[attr-defined]
        [
            {
                "subscriber_id": i,
                "action": "import",
                "at": now,
                "ip": None,
                "user_agent": None,
                "form": "csv",
            }
            for i in ids
        ],
    )
    save_rows(session, ids, [cells[i] for i in sorted(keep)], now)
    return len(ids)


def export_csv(session: Session, *, out: TextIO, status: str | None = None) -> int:
    """Write every subscriber (or those with ``status``) as CSV; returns the row count."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    query = select(Subscriber).order_by(col(Subscriber.id))
    if status is not None:
        query = query.where(Subscriber.status == status)
    count = 0
    chunk: list[Subscriber] = []
    for sub in session.exec(query.execution_options(yield_per=5000)):
        chunk.append(sub)
        if len(chunk) >= 5000:
            count += _write(session, writer, chunk)
            chunk = []
    return count + _write(session, writer, chunk)


def _write(session: Session, writer: Any, subs: list[Subscriber]) -> int:
    extra = profile_cells(session, [s.id for s in subs if s.id is not None])
    for sub in subs:
        base = [
            sub.email,
            ";".join(sub.keywords),
            ";".join(sub.categories),
            sub.status,
            sub.cadence,
            sub.language or "",
        ]
        cells = [*base, *extra.get(sub.id or 0, ("", "", ""))]
        writer.writerow([neutralise(c) for c in cells])
    return len(subs)
