"""Who must not be mailed, asked of the database right before each wave.

The rule is the subscriber module's, asked through its one query
(``subscribers.mailable.mailable_rows``): a subscriber is mailable only while ``active`` and not
suppressed. Suppressing is ``subscribers.service.suppress``.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.engine import Connection
from sqlmodel import Session

from subscribers.mailable import mailable_rows
from subscribers.validation import email_hash

__all__ = ["blocked_ids", "email_hash"]


def blocked_ids(session: Session | Connection, subscriber_ids: Iterable[int]) -> set[int]:
    """Those of ``subscriber_ids`` who must not be mailed now (not active, gone, or suppressed)."""
    ids = list(dict.fromkeys(subscriber_ids))
    return set(ids) - {r.id for r in mailable_rows(session, ids=ids)}
