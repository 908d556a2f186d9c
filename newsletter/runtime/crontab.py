"""Crontab expressions as users write them, turned into APScheduler 3 cron triggers (pure).

APScheduler 3's ``CronTrigger.from_crontab`` numbers weekdays from Monday = 0, so the crontab
``1-5`` (Monday to Friday) would fire Tuesday to Saturday. We translate numeric weekdays to
names first, so ``"40 5 * * 1-5"`` means what every crontab user expects.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

# crontab: 0 and 7 are Sunday.
_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NUMERIC = re.compile(r"^[0-9*/,\-]+$")


def _expand(part: str) -> list[int]:
    """One comma-separated item of a numeric weekday field -> the crontab day numbers."""
    base, _, step_text = part.partition("/")
    step = int(step_text) if step_text else 1
    if step < 1:
        raise ValueError(f"bad step in day-of-week {part!r}")
    if base == "*":
        lo, hi = 0, 6
    elif "-" in base:
        lo_text, hi_text = base.split("-", 1)
        lo, hi = int(lo_text), int(hi_text)
    else:
        lo = int(base)
        hi = 6 if step_text else lo
    if not (0 <= lo <= 7 and 0 <= hi <= 7 and lo <= hi):
        raise ValueError(f"day-of-week {part!r} is out of range 0-7")
    return list(range(lo, hi + 1, step))


def day_of_week_names(field: str) -> str:
    """Translate a crontab weekday field to APScheduler names; names and ``*`` pass through."""
    if field == "*" or not _NUMERIC.match(field):
        return field
    days = sorted({n % 7 for part in field.split(",") for n in _expand(part)})
    if not days:
        raise ValueError(f"day-of-week {field!r} selects no day")
    return ",".join(_NAMES[d] for d in days)


def crontab_trigger(expr: str, timezone: str) -> CronTrigger:
    """A CronTrigger for a five-field crontab in ``timezone``; ValueError names what is wrong."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"{expr!r} must have 5 fields: minute hour day month day-of-week")
    try:
        tz = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}") from exc
    minute, hour, day, month, dow = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=day_of_week_names(dow),
        timezone=tz,
    )


def next_fire_times(trigger: CronTrigger, now: dt.datetime, count: int) -> list[dt.datetime]:
    """The next ``count`` fire times after ``now`` (injected clock); `serve` logs the next."""
    out: list[dt.datetime] = []
    moment = now
    for _ in range(count):
        nxt = trigger.get_next_fire_time(None, moment)
        if nxt is None:
            break
        out.append(nxt)
        moment = nxt + dt.timedelta(microseconds=1)
    return out
