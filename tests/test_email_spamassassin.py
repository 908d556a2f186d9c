"""SpamAssassin (Debian's, local rules only) gives the demo's e-mails nothing.

``scripts/test-deps.sh`` installs ``spamassassin``. The demo runs as a reader would start it
(the CLI, https base URL); a 30-card e-mail with TL;DRs and keyword chips on every card is
checked as well. Every rule that fires must score 0 or less, and so must the total.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from newsletter.email.headers import build_message, digest_headers, new_message_id
from newsletter.email.render import DigestRenderer
from tests.test_cli import _config, cli
from tests.test_email_render import LINKS, SETTINGS, TLDR_300, _budget_day, _personal

# What fires on a clean message that was never relayed; each scores 0 (or -0.0).
INFORMATIONAL = {"NO_RECEIVED", "NO_RELAYS", "HTML_MESSAGE"}
_ROW = re.compile(r"^\s*(-?\d+\.\d+)\s+([A-Z0-9_]+)\s", re.M)
_TOTAL = re.compile(r"Content analysis details:\s+\((-?\d+\.\d+) points")


def _spamassassin() -> str:
    found = shutil.which("spamassassin")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("spamassassin is missing: run scripts/test-deps.sh")
        pytest.skip("spamassassin is missing: run scripts/test-deps.sh")
    return found


def score(messages: list[bytes]) -> list[tuple[float, dict[str, float]]]:
    """Each message's total and fired rules, from one ``spamassassin -L -t --mbox`` run."""
    mbox = b"".join(
        b"From digest@example.org Thu Jan  1 00:00:00 2026\n"
        + re.sub(rb"(?m)^From ", b">From ", raw.replace(b"\r\n", b"\n"))
        + b"\n"
        for raw in messages
    )
    done = subprocess.run(
        [_spamassassin(), "-L", "-t", "--mbox"],
        input=mbox,
        capture_output=True,
        timeout=120,
        check=True,
    )
    reports = done.stdout.decode("utf-8", "replace").split("Content analysis details:")[1:]
    results = []
    for report in reports:
        table = report.split("\n\n", 2)[1]  # the rows, up to the blank line after them
        total = _TOTAL.search("Content analysis details:" + report)
        assert total is not None
        results.append(
            (float(total.group(1)), {m.group(2): float(m.group(1)) for m in _ROW.finditer(table)})
        )
    assert len(results) == len(messages)
    return results


def _dense_email() -> bytes:
    view, summaries, selection = _budget_day(TLDR_300)
    out = _personal(DigestRenderer(SETTINGS), view, selection, summaries)
    headers = digest_headers(
        SETTINGS,
        to="reader@example.org",
        unsubscribe_url=LINKS["unsubscribe_url"],
        message_id=new_message_id(SETTINGS, view.date, 7),
    )
    return bytes(build_message(SETTINGS, out, headers))


def test_demo_emails_and_a_dense_digest_score_nothing(tmp_path: Path) -> None:
    config = _config(tmp_path, base_url="https://digest.example.org")
    done = cli("demo", "--out", "out", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    demo = sorted((tmp_path / "out" / "outbox").glob("*.eml"))
    assert len(demo) >= 3
    messages = [p.read_bytes() for p in demo] + [_dense_email()]
    assert all(b"https://digest.example.org/unsubscribe/" in m for m in messages)
    for total, rules in score(messages):
        positive = {rule: points for rule, points in rules.items() if points > 0}
        assert positive == {}, rules
        assert set(rules) == INFORMATIONAL, rules
        assert total <= 0.0, rules
