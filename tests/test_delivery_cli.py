"""``newsletter send`` as a process: clear errors, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(
    sqlite_url: str, tmp_path: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NEWSLETTER_CONFIG": str(tmp_path / "config.json"),
        "NEWSLETTER_DATABASE_URL": sqlite_url,
        "NEWSLETTER_SECRET_KEY": "cli-Hq3Zt8Wm1Vx6Kp4Ns9Lb2Dg7Fj5Rc0",
        **env,
    }
    (tmp_path / "config.json").write_text("{}")
    return subprocess.run(
        [sys.executable, "-m", "newsletter", "send", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_send_without_an_issue_says_so(sqlite_url: str, tmp_path: Path) -> None:
    done = _run(sqlite_url, tmp_path, "--date", "2026-04-22")
    assert done.returncode == 1
    assert "no issue for 2026-04-22" in done.stderr


def test_sendgrid_without_key_is_a_config_error(sqlite_url: str, tmp_path: Path) -> None:
    done = _run(
        sqlite_url, tmp_path, "--date", "2026-04-22", NEWSLETTER_DELIVERY__BACKEND="sendgrid"
    )
    assert done.returncode == 2 and "SENDGRID_API_KEY" in done.stderr
