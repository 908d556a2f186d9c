"""Reading our output with parsers no one here wrote: Node's ``mailparser`` for messages.

``scripts/test-deps.sh`` installs mailparser under ``build/node-mail``; without it the tests that
need it are skipped, except under ``CI=true`` where a missing tool is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAILPARSER_MODULES = ROOT / "build" / "node-mail" / "node_modules"


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing: run scripts/test-deps.sh")
    pytest.skip(f"{what} is missing: run scripts/test-deps.sh")


def mailparser(raw: bytes) -> dict[str, Any]:
    """What Node's mailparser reads from one raw message (see tests/mailparse.js)."""
    node = shutil.which("node")
    if node is None or not (MAILPARSER_MODULES / "mailparser").is_dir():
        _missing("node with mailparser")
    env = {**os.environ, "NODE_PATH": str(MAILPARSER_MODULES)}
    done = subprocess.run(
        [str(node), str(ROOT / "tests" / "mailparse.js")],
        input=raw,
        capture_output=True,
        env=env,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def raw_header_lines(raw: bytes, name: str) -> list[bytes]:
    """The header's physical lines exactly as sent (its first line and continuation lines)."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    prefix = name.lower().encode() + b":"
    for n, line in enumerate(head):
        if line.lower().startswith(prefix):
            lines = [line]
            for more in head[n + 1 :]:
                if more[:1] not in (b" ", b"\t"):
                    break
                lines.append(more)
            return lines
    raise AssertionError(f"no {name} header in the message")
