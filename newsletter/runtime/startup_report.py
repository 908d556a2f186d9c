"""What ``newsletter serve`` is about to do, said once on start: where the site is, where mail
goes, when the digest runs and which database it uses (never a password). Which config file was
read is said by every command already (``newsletter.cli.app.get_settings``)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from newsletter.config import Settings
from newsletter.db import display_url
from newsletter.runtime.crontab import crontab_trigger, next_fire_times

log = logging.getLogger("newsletter.cli.serve")


def delivery_line(settings: Settings) -> str:
    """The backend and where it delivers."""
    d = settings.delivery
    if d.backend == "file":
        return (
            f"delivery: file backend: e-mails (confirmations included) are written as .eml files "
            f"to {Path(d.outbox_dir).absolute()}, not sent to anyone"
        )
    if d.backend == "smtp":
        user = f" as {d.smtp_user}" if d.smtp_user else ""
        return f"delivery: SMTP to {d.smtp_host}:{d.smtp_port} ({d.smtp_security}){user}"
    sandbox = " in sandbox mode (validated, not delivered)" if d.sandbox_mode else ""
    return f"delivery: SendGrid at {d.sendgrid_host}{sandbox}"


def schedule_line(settings: Settings, *, scheduler: bool, now: dt.datetime) -> str:
    s = settings.schedule
    if not scheduler:
        why = "--no-scheduler" if s.enabled else "schedule.enabled is false"
        return f"schedule: off ({why}): no daily digest from this process"
    trigger = crontab_trigger(s.cron, s.timezone)
    upcoming = next_fire_times(trigger, now, 1)
    when = f"; next run {upcoming[0].isoformat(timespec='minutes')}" if upcoming else ""
    return f"schedule: daily digest at cron {s.cron!r} ({s.timezone}){when}"


def startup_lines(
    settings: Settings, *, scheduler: bool, now: dt.datetime | None = None
) -> list[str]:
    """The report, one fact a line (pure: tests read it without starting a server)."""
    return [
        f"site: {settings.base_url}",
        delivery_line(settings),
        schedule_line(settings, scheduler=scheduler, now=now or dt.datetime.now(dt.UTC)),
        f"database: {display_url(settings.database_url)}",
    ]


def log_startup(settings: Settings, *, scheduler: bool) -> None:
    """Log the report; the file backend is a warning (nobody gets the mail it 'sends')."""
    for line in startup_lines(settings, scheduler=scheduler):
        level = logging.WARNING if line.startswith("delivery: file") else logging.INFO
        log.log(level, "%s", line)
