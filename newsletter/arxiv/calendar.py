"""arXiv's announcement calendar: which submissions an announcement date covers (pure).

arXiv takes submissions until 14:00 US Eastern time each weekday and announces them at 20:00 the
same evening (Sunday evening for Friday's submissions); the announcement feed published at
midnight carries the next calendar day's date. So the feed dated D (Monday to Friday) holds the
papers submitted between the two deadlines before D's announcement:

- Monday D: Thursday 14:00 to Friday 14:00
- Tuesday D: Friday 14:00 to Monday 14:00
- Wednesday to Friday D: the previous weekday's 14:00 to the day before's 14:00

arXiv's holidays are not modelled: a window that spans a holiday simply returns what arXiv has.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

ARXIV_TZ = ZoneInfo("America/New_York")
DEADLINE = dt.time(14, 0)
ANNOUNCED_AT = dt.time(20, 0)


def is_announcement_day(day: dt.date) -> bool:
    """arXiv announces Monday to Friday (by feed date)."""
    return day.weekday() < 5


def _previous_weekday(day: dt.date) -> dt.date:
    day -= dt.timedelta(days=1)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def submission_window(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The [start, end) submission window, in UTC, of the announcement dated ``day``."""
    if not is_announcement_day(day):
        raise ValueError(f"{day.isoformat()} is a {day.strftime('%A')}: arXiv does not announce")
    end_day = _previous_weekday(day)
    start_day = _previous_weekday(end_day)
    start = dt.datetime.combine(start_day, DEADLINE, tzinfo=ARXIV_TZ)
    end = dt.datetime.combine(end_day, DEADLINE, tzinfo=ARXIV_TZ)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def announcement_time(day: dt.date) -> dt.datetime:
    """When the feed dated ``day`` was announced (20:00 US Eastern the weekday before), in UTC;
    for a weekend date, the announcement before it."""
    evening = _previous_weekday(day)
    return dt.datetime.combine(evening, ANNOUNCED_AT, tzinfo=ARXIV_TZ).astimezone(dt.UTC)


def announcement_date(submitted: dt.datetime) -> dt.date:
    """The feed date on which a paper submitted at ``submitted`` (aware) is announced."""
    local = submitted.astimezone(ARXIV_TZ)
    day = local.date()
    if day.weekday() >= 5 or local.time() >= DEADLINE:
        day += dt.timedelta(days=1)
        while day.weekday() >= 5:
            day += dt.timedelta(days=1)
    # Submitted before day's deadline: announced that evening, in the next weekday's feed.
    day += dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day
