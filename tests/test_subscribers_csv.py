"""CSV formula injection (issue 10): every cell a spreadsheet would run is neutralised on
export and read back as it was on import."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from newsletter.cli.main import register_commands
from newsletter.config import Settings
from subscribers.csvio import FORMULA_STARTS, neutralise, restore

HOSTILE_EMAILS = ["=1+2@example.com", "+cmd@example.com", "-2+3@example.org", "'quoted@example.org"]
HOSTILE_KEYWORDS = ["-2+3+cmd|' /C calc'!A0", '=HYPERLINK("http://x")', "@SUM(1)", "+1"]


@given(st.text())
def test_neutralised_cells_never_start_a_formula_and_restore_exactly(cell: str) -> None:
    safe = neutralise(cell)
    assert not safe.startswith(FORMULA_STARTS)
    assert restore(safe) == cell


def _run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        register_commands(), ["subscribers", *args, "--config", str(config)]
    )
    return result.exit_code, result.stdout, result.stderr


def test_hostile_cells_round_trip_through_export_and_import(
    tmp_path: Path, make_settings: Callable[..., Settings], sqlite_template: Path
) -> None:
    configs = []
    for name in ("a", "b"):
        db = tmp_path / f"{name}.db"
        db.write_bytes(sqlite_template.read_bytes())
        config = tmp_path / f"{name}.json"
        config.write_text(json.dumps({"database_url": f"sqlite:///{db}", "categories": ["cs.AI"]}))
        configs.append(config)
    source = tmp_path / "in.csv"
    with source.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["email", "keywords", "categories", "status"])
        for email, keyword in zip(HOSTILE_EMAILS, HOSTILE_KEYWORDS, strict=True):
            writer.writerow([email, keyword, "cs.AI", "active"])
    # Plain cells from other tools are read as typed (only a leading ' is taken away).
    code, out, err = _run(configs[0], "import", str(source))
    assert code == 0, err
    code, exported, _ = _run(configs[0], "export")
    assert code == 0
    rows = list(csv.reader(io.StringIO(exported)))[1:]
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS), cell
    assert {r[0] for r in rows} == {
        neutralise(e) for e in HOSTILE_EMAILS if not e.startswith("'")
    } | {neutralise("quoted@example.org")}
    again = tmp_path / "again.csv"
    again.write_text(exported)
    assert _run(configs[1], "import", str(again))[0] == 0
    assert _run(configs[1], "export")[1] == exported
