"""`newsletter serve` says on start where the site is, where mail goes, when the digest runs and
which database it uses, without the database password."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest

from newsletter.config import settings_for_tests
from newsletter.runtime.startup_report import log_startup, startup_lines

MONDAY = dt.datetime(2026, 5, 4, 6, 0, tzinfo=dt.UTC)


def test_file_backend_says_where_the_mail_is_written_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = settings_for_tests(
        base_url="https://digest.example.org/",
        delivery={"outbox_dir": str(tmp_path / "outbox")},
        database_url="postgresql://news:s3cret-pw@db.internal:5432/news",
    )
    lines = startup_lines(s, scheduler=True, now=MONDAY)
    assert lines == [
        "site: https://digest.example.org",
        f"delivery: file backend: e-mails (confirmations included) are written as .eml files "
        f"to {tmp_path / 'outbox'}, not sent to anyone",
        "schedule: daily digest at cron '40 5 * * 1-5' (UTC); next run 2026-05-05T05:40+00:00",
        "database: postgresql+psycopg://news:***@db.internal:5432/news",
    ]
    with caplog.at_level(logging.INFO, logger="newsletter.cli.serve"):
        log_startup(s, scheduler=True)
    assert "s3cret" not in caplog.text
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and warned[0].startswith("delivery: file backend")


def test_smtp_sendgrid_and_no_scheduler() -> None:
    smtp = settings_for_tests(
        delivery={"backend": "smtp", "smtp_host": "mail.example.org", "smtp_user": "digest"},
        schedule={"enabled": False},
    )
    lines = startup_lines(smtp, scheduler=False, now=MONDAY)
    assert "delivery: SMTP to mail.example.org:587 (starttls) as digest" in lines
    assert "schedule: off (schedule.enabled is false): no daily digest from this process" in lines
    sendgrid = settings_for_tests(delivery={"backend": "sendgrid", "sandbox_mode": True})
    lines = startup_lines(sendgrid, scheduler=False, now=MONDAY)
    assert (
        "delivery: SendGrid at https://api.sendgrid.com in sandbox mode (validated, not delivered)"
        in lines
    )
    assert "schedule: off (--no-scheduler): no daily digest from this process" in lines
