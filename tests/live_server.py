"""`newsletter serve` in a subprocess for the browser tests: started, waited for, stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_env(url: str, settings: Mapping[str, str]) -> dict[str, str]:
    """The environment of a served app at ``url``: the machine's, no config file, ``settings``."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NEWSLETTER_BASE_URL": url,
        "NEWSLETTER_LOG_LEVEL": "WARNING",
        **settings,
    }
    env.pop("NEWSLETTER_CONFIG", None)
    return env


@contextmanager
def live_serve(
    port: int, env: Mapping[str, str], cwd: Path, ready_path: str = "/"
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``newsletter serve --no-scheduler`` on ``port`` until ``ready_path`` answers 200
    (a deadline of 30 s, else the test fails with the server's output); terminate it after."""
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "serve", "--host", "127.0.0.1", "--port", str(port)]
        + ["--no-scheduler"],
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + ready_path, timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"newsletter serve did not start:\n{out}")
        time.sleep(0.05)  # polling with the deadline above
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
