"""Reader profiles (interests, example papers, favourite authors) through the CLI and CSV;
papers not in the database come from the replayed arXiv API; bad input stores nothing."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from newsletter.arxiv.replay import ReplayServer, demo_server
from newsletter.cli.main import register_commands
from newsletter.db import make_engine, session_scope
from newsletter.models import PaperRow
from newsletter.relevance.models import SubscriberExample, SubscriberProfile
from newsletter.relevance.parsing import authors_match, ids_in_export, parse_ids
from newsletter.relevance.profiles import profile_of, record_feedback
from subscribers import service
from subscribers.models import Subscriber


@pytest.fixture(scope="module")
def arxiv() -> Iterator[ReplayServer]:
    with demo_server() as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, database_url: str, arxiv: ReplayServer) -> Path:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "database_url": database_url,
                "categories": ["cs.AI", "cs.LG"],
                "arxiv": {"api_url": arxiv.api_url, "delay_seconds": 0, "max_retries": 0},
            }
        )
    )
    return path


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        register_commands(), ["subscribers", *args, "--config", str(config)]
    )
    return result.exit_code, result.stdout, result.stderr


def counts(config: Path) -> tuple[int, int, int, int]:
    url = json.loads(config.read_text())["database_url"]
    engine = make_engine(url)
    with session_scope(engine) as s:
        out = tuple(
            len(s.exec(select(m)).all())
            for m in (Subscriber, SubscriberProfile, SubscriberExample, PaperRow)
        )
    engine.dispose()
    return out  # type: ignore[return-value]


def test_cli_add_with_profile_fetches_unknown_papers(config: Path, arxiv: ReplayServer) -> None:
    a, b = arxiv.entries[0], arxiv.entries[1]
    code, out, err = run(
        config,
        "add",
        "ann@example.org",
        "--active",
        "--interests",
        "  reinforcement learning for  language models ",
        "--papers",
        f"{a.arxiv_id};https://arxiv.org/pdf/{b.arxiv_id}v1",
        "--authors",
        "Yann LeCun; Jürgen Schmidhuber",
    )
    assert code == 0, err
    id_lookups = [r for r in arxiv.requests if r.query.get("id_list")]
    assert id_lookups and set(id_lookups[-1].query["id_list"][0].split(",")) == {
        a.arxiv_id,
        b.arxiv_id,
    }
    engine = make_engine(json.loads(config.read_text())["database_url"])
    with session_scope(engine) as s:
        sub = s.exec(select(Subscriber)).one()
        assert sub.id is not None
        profile = profile_of(s, sub.id)
        assert profile.interests == "reinforcement learning for language models"
        assert profile.papers == (a.arxiv_id, b.arxiv_id)
        assert profile.authors == ("Yann LeCun", "Jürgen Schmidhuber")
        assert profile.examples[0].title == a.title
    engine.dispose()
    code, out, _ = run(config, "list", "--json")
    (listed,) = json.loads(out)
    assert listed["papers"] == [a.arxiv_id, b.arxiv_id] and listed["authors"][0] == "Yann LeCun"
    code, out, _ = run(config, "export")
    row = list(csv.DictReader(io.StringIO(out)))[0]
    assert row["papers"] == f"{a.arxiv_id};{b.arxiv_id}"
    assert row["authors"] == "Yann LeCun;Jürgen Schmidhuber"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--papers", "2604.19485;not-an-id"], "not arXiv identifiers"),
        (["--papers", "2604.19485;2101.00001"], "unknown arXiv paper(s): 2101.00001"),
        (["--interests", "   "], "interests are empty"),
    ],
)
def test_cli_bad_profile_stores_nothing(config: Path, flags: list[str], message: str) -> None:
    code, _, err = run(config, "add", "bob@example.org", "--active", *flags)
    assert code == 2 and message in " ".join(err.split())
    assert counts(config) == (0, 0, 0, 0)


def test_csv_import_with_profile_columns(config: Path, tmp_path: Path, arxiv: ReplayServer) -> None:
    a = arxiv.entries[2]
    f = tmp_path / "in.csv"
    f.write_text(
        "email,keywords,categories,status,interests,papers,authors\n"
        'one@example.org,llm,,active,"graph neural networks, molecules",'
        f"{a.arxiv_id},Ada Lovelace\n"
        "two@example.org,,,active,,2101.00001,\n"
        "three@example.org,,,active,,nonsense,\n"
        "four@example.org,agents,cs.AI,active,,,\n"
    )
    code, out, err = run(config, "import", str(f))
    assert code == 1
    assert "imported 2" in out and "bad rows 2" in out
    assert "line 3: unknown arXiv paper(s): 2101.00001" in err
    assert "line 4: not arXiv identifiers" in err
    code, out, _ = run(config, "export")
    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(out))}
    assert set(rows) == {"one@example.org", "four@example.org"}
    assert rows["one@example.org"]["interests"] == "graph neural networks, molecules"
    assert rows["one@example.org"]["papers"] == a.arxiv_id
    assert rows["four@example.org"]["papers"] == ""
    # One profile row and one example paper were stored, for the good row only.
    assert counts(config)[1:3] == (1, 1)


def test_old_four_column_files_still_import(config: Path, tmp_path: Path) -> None:
    f = tmp_path / "old.csv"
    f.write_text("email,keywords,categories,status\nold@example.org,x;y,cs.LG,active\n")
    code, out, _ = run(config, "import", str(f))
    assert code == 0 and "imported 1" in out
    assert counts(config)[:3] == (1, 0, 0)


def test_parsing_ids_exports_and_author_names() -> None:
    assert parse_ids("arXiv:2401.01234v2; https://arxiv.org/abs/hep-th/9901001") == [
        "2401.01234",
        "hep-th/9901001",
    ]
    bib = '@article{k, title={X}, eprint = "2301.00001", archivePrefix={arXiv}}\n'
    zotero = (
        'Key,Title,Url,Extra\nA,"T, x",https://arxiv.org/abs/2205.11111v3,"arXiv: 2206.22222"\n'
    )
    assert ids_in_export(bib) == ["2301.00001"]
    assert ids_in_export(zotero) == ["2205.11111", "2206.22222"]
    assert authors_match("Jürgen Schmidhuber", "J. Schmidhuber")
    assert authors_match("LeCun, Yann", "Yann LeCun")
    assert authors_match("Schmidhuber Jurgen", "Jürgen Schmidhuber")
    assert not authors_match("Yann LeCun", "Yoshua Bengio")
    assert not authors_match("Ann Smith", "Bob Smith")


def test_export_shows_the_profile_and_erase_deletes_it(config: Path, arxiv: ReplayServer) -> None:
    a = arxiv.entries[5]
    code, _, err = run(
        config,
        "add",
        "gone@example.org",
        "--active",
        "--interests",
        "x",
        "--papers",
        f"{a.arxiv_id};{arxiv.entries[6].arxiv_id}",
    )
    assert code == 0, err
    engine = make_engine(json.loads(config.read_text())["database_url"])
    with session_scope(engine) as s:
        sub = s.exec(select(Subscriber)).one()
        assert sub.id is not None
        record_feedback(s, subscriber_id=sub.id, arxiv_id=arxiv.entries[6].arxiv_id, sign=-1)
    with session_scope(engine) as s:
        sid = s.exec(select(Subscriber)).one().id
        assert sid is not None
        data = service.export(s, subscriber_id=sid)
        assert data["profile"] == {
            "interests": "x",
            "favourite_authors": [],
            "examples": [
                {"arxiv_id": a.arxiv_id, "sign": 1, "source": "profile"},
                {"arxiv_id": arxiv.entries[6].arxiv_id, "sign": -1, "source": "feedback"},
            ],
        }
        service.erase(s, subscriber_id=sid)
    engine.dispose()
    assert counts(config)[:3] == (0, 0, 0)
