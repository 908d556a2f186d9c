"""``Retry-After`` as the providers send it: delta-seconds or an HTTP date (RFC 9110 §10.2.3).

One parser for every outside service (arXiv, the model, SendGrid), so they all honour it alike.
"""

from __future__ import annotations

import datetime as dt
import email.utils


def retry_after_seconds(value: str | None, now: dt.datetime) -> float | None:
    """Seconds the server asks us to wait; None when the header is absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - now).total_seconds(), 0.0)
