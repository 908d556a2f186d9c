"""The schedule: fire times from an injected "now", the job store across restarts, misfire
catch-up within the grace time (once, coalesced) and not after it.

APScheduler 3 reads the wall clock inside its executor (the misfire check), so the catch-up
tests move the *stored fire time* relative to the real clock instead of moving the clock:
"down at 05:40, back at 06:10" is a stored fire time 30 minutes in the past.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobEvent
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import Engine

from newsletter.config import ConfigError, Settings, load_settings
from newsletter.db import make_engine
from newsletter.runtime.crontab import crontab_trigger, day_of_week_names, next_fire_times
from newsletter.runtime.scheduler import JOB_ID, JOBSTORE_TABLE, DigestScheduler, stored_next_run
from tests.fixtures_service import RecordingFire, wait_for

UTC = dt.UTC


def at(text: str, tz: str = "UTC") -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))


def test_default_cron_fires_weekdays_at_0540() -> None:
    trigger = crontab_trigger("40 5 * * 1-5", "UTC")
    friday_late = at("2026-05-01T07:00")
    fires = next_fire_times(trigger, friday_late, 6)
    assert [f.strftime("%a %H:%M") for f in fires] == [
        "Mon 05:40",
        "Tue 05:40",
        "Wed 05:40",
        "Thu 05:40",
        "Fri 05:40",
        "Mon 05:40",
    ]
    assert next_fire_times(trigger, at("2026-05-04T05:39"), 1) == [at("2026-05-04T05:40")]
    assert next_fire_times(trigger, at("2026-05-04T05:40"), 1) == [at("2026-05-04T05:40")]
    assert next_fire_times(trigger, at("2026-05-04T05:41"), 1) == [at("2026-05-05T05:40")]


def test_time_zone_and_daylight_saving() -> None:
    trigger = crontab_trigger("40 5 * * 1-5", "Europe/Berlin")
    before, after = next_fire_times(trigger, at("2026-03-26T12:00", "Europe/Berlin"), 2)
    assert before.astimezone(UTC).hour == 4  # CET, UTC+1
    assert after.astimezone(UTC).hour == 3  # CEST after 29 March, UTC+2
    assert after.strftime("%a") == "Mon"


@pytest.mark.parametrize(
    ("field", "names"),
    [
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("0,6", "sun,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("mon-fri", "mon-fri"),
        ("*", "*"),
    ],
)
def test_crontab_weekday_numbers_mean_what_cron_means(field: str, names: str) -> None:
    """APScheduler 3 counts Monday as 0; ``from_crontab("... 1-5")`` would fire Tue-Sat."""
    assert day_of_week_names(field) == names


def test_bad_schedule_settings_are_config_errors(tmp_path: object) -> None:
    for env in (
        {"NEWSLETTER_SCHEDULE__CRON": "40 5 * *"},
        {"NEWSLETTER_SCHEDULE__CRON": "99 5 * * 1-5"},
        {"NEWSLETTER_SCHEDULE__TIMEZONE": "Mars/Olympus"},
    ):
        with pytest.raises(ConfigError, match="schedule"):
            load_settings(None, environ=env)


@pytest.fixture
def sched_engine(sqlite_url: str) -> Iterator[Engine]:
    eng = make_engine(sqlite_url)
    yield eng
    eng.dispose()


def _set_stored_fire_time(settings: Settings, engine: Engine, when: dt.datetime) -> None:
    """As if the service had been down since ``when``: the job store still says ``when``."""
    first = DigestScheduler(settings, engine, fire=RecordingFire())
    first.start()
    first.shutdown()
    store = SQLAlchemyJobStore(engine=engine, tablename=JOBSTORE_TABLE)
    store.start(BackgroundScheduler(), "default")
    job = store.lookup_job(JOB_ID)
    assert job is not None
    job._modify(next_run_time=when)
    store.update_job(job)


def _events(sched: DigestScheduler) -> list[JobEvent]:
    seen: list[JobEvent] = []
    sched.scheduler.add_listener(seen.append, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)
    return seen


def test_restart_keeps_the_stored_schedule(
    make_settings: Callable[..., Settings], sched_engine: Engine
) -> None:
    settings = make_settings()
    s1 = DigestScheduler(settings, sched_engine, fire=RecordingFire())
    s1.start()
    planned = s1.next_run_time()
    s1.shutdown()
    assert planned is not None and planned > dt.datetime.now(UTC)
    assert stored_next_run(sched_engine) == planned
    s2 = DigestScheduler(settings, sched_engine, fire=RecordingFire())
    s2.start()
    try:
        assert s2.next_run_time() == planned
    finally:
        s2.shutdown()
    changed = DigestScheduler(
        make_settings(schedule={"cron": "0 7 * * 1-5"}), sched_engine, fire=RecordingFire()
    )
    changed.start()
    try:
        nxt = changed.next_run_time()
        assert nxt is not None and (nxt.hour, nxt.minute) == (7, 0)
    finally:
        changed.shutdown()


def test_down_at_fire_time_back_within_grace_runs_once(
    make_settings: Callable[..., Settings], sched_engine: Engine
) -> None:
    settings = make_settings(schedule={"misfire_grace_seconds": 3600})
    now = dt.datetime.now(UTC)
    _set_stored_fire_time(settings, sched_engine, now - dt.timedelta(minutes=30))
    fire = RecordingFire()
    sched = DigestScheduler(settings, sched_engine, fire=fire)
    seen = _events(sched)
    sched.start()
    try:
        wait_for(lambda: seen, what="the catch-up run")
        nxt = sched.next_run_time()
    finally:
        sched.shutdown()
    assert [e.code for e in seen] == [EVENT_JOB_EXECUTED]
    assert fire.calls == 1
    assert nxt is not None and nxt > now
    assert nxt == next_fire_times(sched.trigger, now, 1)[0]


def test_many_missed_fire_times_coalesce_into_one_run(
    make_settings: Callable[..., Settings], sched_engine: Engine
) -> None:
    now = dt.datetime.now(UTC)
    minute = (now + dt.timedelta(minutes=30)).minute  # hourly, next one ~30 min away
    settings = make_settings(
        schedule={"cron": f"{minute} * * * *", "misfire_grace_seconds": 6 * 3600}
    )
    _set_stored_fire_time(settings, sched_engine, now - dt.timedelta(hours=4, minutes=30))
    fire = RecordingFire()
    sched = DigestScheduler(settings, sched_engine, fire=fire)
    seen = _events(sched)
    sched.start()
    try:
        wait_for(lambda: seen, what="the coalesced run")
    finally:
        sched.shutdown()
    assert [e.code for e in seen] == [EVENT_JOB_EXECUTED]
    assert fire.calls == 1


def test_back_after_the_grace_time_skips_to_the_next_fire_time(
    make_settings: Callable[..., Settings], sched_engine: Engine
) -> None:
    settings = make_settings(schedule={"misfire_grace_seconds": 3600})
    now = dt.datetime.now(UTC)
    _set_stored_fire_time(settings, sched_engine, now - dt.timedelta(minutes=80))
    fire = RecordingFire()
    sched = DigestScheduler(settings, sched_engine, fire=fire)
    seen = _events(sched)
    sched.start()
    try:
        wait_for(lambda: seen, what="the missed event")
        nxt = sched.next_run_time()
    finally:
        sched.shutdown()
    assert [e.code for e in seen] == [EVENT_JOB_MISSED]
    assert fire.calls == 0
    assert nxt == next_fire_times(sched.trigger, now, 1)[0]  # the next weekday's 05:40


def test_one_scheduler_per_process(
    make_settings: Callable[..., Settings], sched_engine: Engine
) -> None:
    first = DigestScheduler(make_settings(), sched_engine, fire=RecordingFire())
    first.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            DigestScheduler(make_settings(), sched_engine, fire=RecordingFire()).start()
    finally:
        first.shutdown()
    assert isinstance(first.scheduler, BackgroundScheduler) and not first.scheduler.running
    assert threading.active_count() >= 1


def test_a_closing_scheduler_hands_out_no_due_job(
    make_settings: Callable[..., Settings], sched_engine: Engine
) -> None:
    """APScheduler looks for due jobs once more after ``shutdown``; the job store answers
    none then, so a run due at that moment stays due for the next start instead of being
    stored as done."""
    from newsletter.runtime.scheduler import _JobStore

    settings = make_settings()
    now = dt.datetime.now(UTC)
    _set_stored_fire_time(settings, sched_engine, now - dt.timedelta(seconds=5))
    closing = threading.Event()
    store = _JobStore(closing, engine=sched_engine, tablename=JOBSTORE_TABLE)
    store.start(BackgroundScheduler(), "default")
    assert [job.id for job in store.get_due_jobs(now)] == [JOB_ID]
    closing.set()
    assert store.get_due_jobs(now) == []
    assert stored_next_run(sched_engine) == now - dt.timedelta(seconds=5)
