"""`newsletter subscribers ...`: add, list, import (with bad rows), export, remove."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli.main import register_commands


@pytest.fixture
def config(tmp_path: Path, sqlite_url: str) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"database_url": sqlite_url, "categories": ["cs.AI", "cs.LG"]}))
    return path


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        register_commands(), ["subscribers", *args, "--config", str(config)]
    )
    return result.exit_code, result.stdout, result.stderr


def listed(config: Path, *args: str) -> list[dict[str, object]]:
    code, out, _ = run(config, "list", "--json", *args)
    assert code == 0
    rows: list[dict[str, object]] = json.loads(out)
    return rows


def test_add_list_remove(config: Path) -> None:
    assert run(config, "add", "Ann@Example.ORG", "--keywords", "LLM, agents", "--active")[0] == 0
    assert run(config, "add", "bob@example.org", "--categories", "cs.AI")[0] == 0
    code, out, _ = run(config, "add", "Ann@example.org")
    assert code == 0 and "already exists" in out
    rows = listed(config)
    assert [(r["email"], r["status"], r["keywords"], r["categories"]) for r in rows] == [
        ("Ann@example.org", "active", ["LLM", "agents"], []),
        ("bob@example.org", "pending", [], ["cs.AI"]),
    ]
    assert [r["email"] for r in listed(config, "--status", "pending")] == ["bob@example.org"]
    assert run(config, "list", "--status", "nope")[0] == 2
    code, out, _ = run(config, "list")
    assert "Ann@example.org\tactive" in out
    assert run(config, "remove", "bob@example.org")[0] == 0
    assert run(config, "remove", "bob@example.org")[0] == 1
    assert [r["email"] for r in listed(config)] == ["Ann@example.org"]


def test_add_refuses_bad_input(config: Path) -> None:
    code, _, err = run(config, "add", "not an address")
    assert code == 2 and "not a valid e-mail address" in err
    code, _, err = run(config, "add", "a@example.org", "--categories", "math.AG")
    assert code == 2 and "unknown category" in err
    run(config, "remove", "c@example.org", "--suppress")
    code, _, err = run(config, "add", "c@example.org")
    assert code == 1 and "suppressed" in err
    assert listed(config) == []


def test_import_reports_bad_rows_and_imports_the_rest(config: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "in.csv"
    csv_file.write_text(
        "email,keywords,categories,status\n"
        "ok1@example.org,LLM;agents,cs.AI;cs.LG,active\n"
        "not-an-email,,,\n"
        "ok2@example.org,,,pending\n"
        "ok3@example.org,,hep-th,\n"
        "OK1@example.org,,,\n"  # the same mailbox in other case: a duplicate
        "ok1@EXAMPLE.org,,,\n"
        "ok4@example.org,,,unsubscribed\n"
        '"ok5@example.org","multi\nline",,\n'
        "ok6@example.org,,,active,extra\n"
        "ok7@example.org\n",
        encoding="utf-8",
    )
    code, out, err = run(config, "import", str(csv_file))
    assert code == 1
    assert "imported 4, already present 0, suppressed 0, bad rows 6" in out
    assert "line 3:" in err and "not a valid e-mail address" in err
    assert "line 5:" in err and "unknown category" in err
    assert "line 6: duplicate of line 2" in err
    assert "line 7: duplicate of line 2" in err
    assert "line 8:" in err and "status must be one of" in err
    assert "line 11: too many columns" in err
    rows = {r["email"]: r for r in listed(config)}
    assert set(rows) == {
        "ok1@example.org",
        "ok2@example.org",
        "ok5@example.org",
        "ok7@example.org",
    }
    assert rows["ok1@example.org"]["keywords"] == ["LLM", "agents"]
    assert rows["ok1@example.org"]["categories"] == ["cs.AI", "cs.LG"]
    assert rows["ok2@example.org"]["status"] == "pending"
    assert rows["ok5@example.org"]["keywords"] == ["multi", "line"]
    assert rows["ok7@example.org"]["status"] == "active"
    # Importing again never duplicates.
    code, out, _ = run(config, "import", str(csv_file))
    assert "imported 0, already present 4" in out
    assert len(listed(config)) == 4


def test_import_refuses_a_file_without_the_header(config: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a@example.org,x,,\n")
    code, _, err = run(config, "import", str(bad))
    assert code == 2 and "header" in err
    latin = tmp_path / "latin.csv"
    latin.write_bytes("email\nj\xf6rg@example.org\n".encode("latin-1"))
    code, _, err = run(config, "import", str(latin))
    assert code == 2 and "UTF-8" in err
    assert run(config, "import", str(tmp_path / "missing.csv"))[0] == 2


def test_import_skips_suppressed_addresses(config: Path, tmp_path: Path) -> None:
    run(config, "remove", "gone@example.org", "--suppress")
    f = tmp_path / "in.csv"
    f.write_text("email\ngone@example.org\nnew@example.org\n")
    code, out, _ = run(config, "import", str(f))
    assert code == 0 and "imported 1, already present 0, suppressed 1" in out


def test_export_round_trips_through_import(config: Path, tmp_path: Path) -> None:
    f = tmp_path / "in.csv"
    rows = ["email,keywords,categories,status"] + [
        f"user{i}@example.org,kw{i};shared,cs.AI,{'pending' if i % 3 == 0 else 'active'}"
        for i in range(500)
    ]
    f.write_text("\n".join(rows) + "\n")
    assert run(config, "import", str(f))[0] == 0
    code, out, _ = run(config, "export")
    assert code == 0
    exported = list(csv.reader(io.StringIO(out)))
    assert exported[0] == [
        *("email", "keywords", "categories", "status", "cadence", "language"),
        *("interests", "papers", "authors"),
    ]
    # An old file (no cadence/language/profile columns) imports as daily readers in the site's
    # language, without a profile.
    assert sorted(",".join(r) for r in exported[1:]) == sorted(f"{r},daily,,,," for r in rows[1:])
    out_file = tmp_path / "out.csv"
    assert run(config, "export", "--out", str(out_file))[0] == 0
    assert out_file.read_text() == out


def test_cadence_and_language_from_the_cli_and_csv(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    db = tmp_path / "subs.db"
    config.write_text(
        json.dumps(
            {
                "database_url": f"sqlite:///{db}",
                "ai_summary": {"language": "English", "languages": ["English", "Chinese"]},
            }
        )
    )
    code, out, _ = run(
        config, "add", "w@example.org", "--active", "--cadence", "weekly", "--language", "chinese"
    )
    assert code == 0, out
    code, _, err = run(config, "add", "x@example.org", "--cadence", "monthly")
    assert code != 0 and "cadence must be one of daily, weekly" in err
    code, _, err = run(config, "add", "y@example.org", "--language", "Klingon")
    assert code != 0 and "language must be one of English, Chinese" in err
    f = tmp_path / "in.csv"
    f.write_text(
        "email,cadence,language\n"
        "a@example.org,weekly,English\n"
        "b@example.org,,Chinese\n"
        "c@example.org,hourly,\n"
    )
    code, out, err = run(config, "import", str(f))
    assert code == 1 and "imported 2" in out and "line 4: cadence must be one of" in err
    code, out, _ = run(config, "export")
    rows = {r[0]: r[4:6] for r in csv.reader(io.StringIO(out))}
    assert rows["w@example.org"] == ["weekly", "Chinese"]
    (listed_w,) = [r for r in listed(config) if r["email"] == "w@example.org"]
    assert (listed_w["cadence"], listed_w["language"]) == ("weekly", "Chinese")
    assert rows["a@example.org"] == ["weekly", ""]  # the site's language is stored as "theirs"
    assert rows["b@example.org"] == ["daily", "Chinese"]
    assert "c@example.org" not in rows
