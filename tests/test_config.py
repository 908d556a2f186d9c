"""Every configuration error path, through load_settings and through the CLI (exit code 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_pipeline import repo_config

from newsletter.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parent.parent

# (config file content, the line the error must contain)
BAD_FILES: list[tuple[dict[str, object], str]] = [
    ({"max_papers": -3}, "max_papers = -3: must be >= 1"),
    ({"max_papers": 5000}, "max_papers = 5000: must be <= 2000"),
    ({"max_papers": "ten"}, "max_papers = 'ten': must be a whole number"),
    ({"min_score": "high"}, "min_score = 'high': must be a number"),
    ({"min_score": -1}, "min_score = -1: must be >= 0"),
    ({"days_back": 0}, "days_back = 0: must be >= 1"),
    (
        {"keyword_match": "words"},
        "keyword_match = 'words': allowed 'word' or 'substring' (did you mean 'word'?)",
    ),
    (
        {"announce_types": ["new", "replaced"]},
        "announce_types[1] = 'replaced': allowed 'new', 'cross', 'replace' or 'replace-cross' "
        "(did you mean 'replace'?)",
    ),
    ({"announce_types": "new"}, "announce_types = 'new': must be a list"),
    ({"categories": ["cs.LG", "machine learning"]}, "'machine learning' is not an arXiv category"),
    ({"categories": []}, "categories = []: at least one category is required"),
    ({"keywords": ["LLM", "  "]}, 'keywords = ["LLM", "  "]: terms must not be empty'),
    ({"enable_deduplication": "maybe"}, "enable_deduplication = 'maybe': must be true or false"),
    (
        {"deduplication_methods": ["id", "doi"]},
        "deduplication_methods[1] = 'doi': allowed 'id', 'title' or 'link'",
    ),
    ({"base_url": "example.org"}, "base_url = 'example.org': must start with http:// or https://"),
    ({"arxiv": {"delay_seconds": -1}}, "arxiv.delay_seconds = -1: must be >= 0"),
    ({"arxiv": "fast"}, "arxiv = 'fast': must be an object"),
    ({"ai_summary": {"max_workers": 0}}, "ai_summary.max_workers = 0: must be >= 1"),
    ({"delivery": {"backend": "smtps"}}, "delivery.backend = 'smtps': allowed 'file', 'sendgrid'"),
    ({"log_level": "debug"}, "log_level = 'debug': allowed 'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
    ({"max_paper": 3}, "unknown key 'max_paper' (did you mean 'max_papers'?)"),
    ({"arxiv": {"rss_ur": "x"}}, "unknown key 'arxiv.rss_ur' (did you mean 'rss_url'?)"),
    ({"colour": "blue"}, "unknown key 'colour'; allowed keys: categories, keywords"),
    ({"secret_key": "abc"}, "'secret_key' is a secret and is read only from the environment"),
]


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(("data", "message"), BAD_FILES)
def test_bad_values_and_unknown_keys_are_named(
    tmp_path: Path, data: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, data), environ={})
    assert message in str(err.value)
    if "secret" in message:
        assert "abc" not in str(err.value)


def test_several_errors_are_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, {"max_papers": 0, "days_back": 0}), environ={})
    lines = str(err.value).splitlines()
    assert lines[0] == f"config: invalid settings in {tmp_path / 'config.json'}:"
    assert lines[1:] == ["  max_papers = 0: must be >= 1", "  days_back = 0: must be >= 1"]


def test_unreadable_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"max_papers": 3,}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"is not valid JSON \(line 1, column 18\)"):
        load_settings(broken, environ={})
    with pytest.raises(ConfigError, match="must hold a JSON object"):
        load_settings(_write(tmp_path, ["a"]), environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.json", environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(None, environ={"NEWSLETTER_CONFIG": str(tmp_path / "nope.json")})


def test_the_old_bots_config_loads_with_a_notice_for_its_extra_keys(tmp_path: Path) -> None:
    old = {**repo_config(), "fetch_ratings": True, "display_limit": 10}
    notices: list[str] = []
    s = load_settings(_write(tmp_path, old), environ={}, notices=notices)
    assert s.categories == ["cs.AI", "cs.CL", "cs.DC", "cs.LG"]
    assert len(s.keywords) == 30 and s.keywords[2] == "RL"
    assert (s.max_papers, s.days_back, s.min_score) == (30, 7, 2.5)
    assert s.exclude_keywords == ["survey", "review", "tutorial"]
    assert s.ai_summary.model == "qwen-long" and s.ai_summary.max_workers == 3
    assert s.keyword_match == "word" and s.announce_types == ["new", "cross"]
    assert len(notices) == 2 and all(len(n.splitlines()) == 1 for n in notices)
    assert "'fetch_ratings'" in notices[0] and "'display_limit'" in notices[1]


def test_environment_overrides(tmp_path: Path) -> None:
    env = {
        "NEWSLETTER_DATABASE_URL": "postgresql://u@db/x",
        "NEWSLETTER_ARCHIVE_DIR": "/srv/archive",
        "NEWSLETTER_ARXIV__RSS_URL": "http://127.0.0.1:1/rss/",
        "NEWSLETTER_ARXIV__API_URL": "http://127.0.0.1:1/api/query",
        "NEWSLETTER_ARXIV__DELAY_SECONDS": "0.5",
        "NEWSLETTER_MAX_PAPERS": "12",
        "NEWSLETTER_KEYWORD_MATCH": "substring",
        "NEWSLETTER_CATEGORIES": "cs.LG, stat.ML",
        "NEWSLETTER_ANNOUNCE_TYPES": '["new", "replace"]',
        "NEWSLETTER_AI_SUMMARY__ENABLED": "true",
        "NEWSLETTER_SECRET_KEY": "s3cret",
    }
    s = load_settings(_write(tmp_path, repo_config()), environ=env)
    assert s.database_url == "postgresql://u@db/x" and s.archive_dir == "/srv/archive"
    assert (s.arxiv.rss_url, s.arxiv.api_url) == (
        "http://127.0.0.1:1/rss/",
        "http://127.0.0.1:1/api/query",
    )
    assert s.arxiv.delay_seconds == 0.5 and s.max_papers == 12 and s.keyword_match == "substring"
    assert s.categories == ["cs.LG", "stat.ML"] and s.announce_types == ["new", "replace"]
    assert s.ai_summary.enabled is True and s.ai_summary.model == "qwen-long"
    assert s.secret_key is not None and s.secret_key.get_secret_value() == "s3cret"


def test_a_bad_environment_value_names_its_variable(tmp_path: Path) -> None:
    env = {"NEWSLETTER_ARXIV__DELAY_SECONDS": "-2"}
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, {}), environ=env)
    assert "arxiv.delay_seconds = '-2': must be >= 0 (from NEWSLETTER_ARXIV__DELAY_SECONDS)" in str(
        err.value
    )


@pytest.mark.parametrize(
    ("var", "hint"),
    [
        ("NEWSLETTER_MAX_PAPRS", " (did you mean NEWSLETTER_MAX_PAPERS?)"),
        ("NEWSLETTER_DELIVERY__BACKND", " (did you mean NEWSLETTER_DELIVERY__BACKEND?)"),
        ("NEWSLETTER_MAX_PAPERS__X", " (did you mean NEWSLETTER_MAX_PAPERS?)"),
        ("NEWSLETTER_SECRET", " (did you mean NEWSLETTER_SECRET_KEY?)"),
        ("NEWSLETTER_COLOUR", ""),
    ],
)
def test_an_unknown_newsletter_variable_is_an_error_with_a_suggestion(
    tmp_path: Path, var: str, hint: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, {}), environ={var: "file"})
    assert f"environment variable {var} matches no setting{hint};" in str(err.value)


def test_documented_variables_that_are_not_settings_are_accepted(tmp_path: Path) -> None:
    env = {
        "NEWSLETTER_CONFIG": str(_write(tmp_path, {})),
        "NEWSLETTER_SECRET_KEY": "k" * 32,
        "NEWSLETTER_ADMIN_TOKEN": "t" * 32,
        "NEWSLETTER_SMTP_PASSWORD": "pw",
        "NEWSLETTER_DELIVERY": '{"backend": "smtp"}',
        "SENDGRID_API_KEY": "SG.x",
    }
    s = load_settings(None, environ=env)
    assert s.smtp_password is not None and s.admin_token is not None
    assert s.delivery.backend == "smtp" and s.config_file == tmp_path / "config.json"


@pytest.mark.parametrize(
    ("categories", "message"),
    [
        (
            ["cs.LGG"],
            "categories = [\"cs.LGG\"]: 'cs.LGG' is not an arXiv category (did you mean"
            " 'cs.LG', Machine Learning?)",
        ),
        (["cs.lg"], "'cs.lg' is not an arXiv category (did you mean 'cs.LG', Machine Learning?)"),
        (["hep-th", "physics.optic"], "(did you mean 'physics.optics', Optics?)"),
    ],
)
def test_categories_are_checked_against_arxivs_taxonomy(
    tmp_path: Path, categories: list[str], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, {"categories": categories}), environ={})
    assert message in str(err.value)
    ok = load_settings(_write(tmp_path, {"categories": ["math", "hep-th", "stat.ML"]}), environ={})
    assert ok.categories == ["math", "hep-th", "stat.ML"]


@pytest.mark.parametrize("key", ["from_email", "reply_to"])
def test_sender_addresses_are_validated(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, {"email": {key: "nope"}}), environ={})
    assert f"email.{key} = 'nope': not an e-mail address such as 'digest@example.org'" in str(
        err.value
    )
    good = load_settings(_write(tmp_path, {"email": {key: "news@lab.example.org"}}), environ={})
    assert getattr(good.email, key) == "news@lab.example.org"


def test_relative_paths_in_a_config_file_follow_the_file_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    config = site / "config.json"
    config.write_text(
        json.dumps(
            {
                "database_url": "sqlite:///data/news.db?timeout=5",
                "archive_dir": "./pages",
                "delivery": {"outbox_dir": "../mail"},
                "ai_summary": {"prompt_file": "prompt.md"},
            }
        ),
        encoding="utf-8",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    s = load_settings(config, environ={})
    assert s.database_url == f"sqlite:///{site}/data/news.db?timeout=5"
    assert s.archive_dir == str(site / "pages")
    assert s.delivery.outbox_dir == str(tmp_path / "mail")
    assert s.ai_summary.prompt_file == str(site / "prompt.md")
    # The defaults a file leaves in place live beside it too; the environment's follow the cwd.
    (site / "bare.json").write_text("{}", encoding="utf-8")
    bare = load_settings(site / "bare.json", environ={"NEWSLETTER_DELIVERY__OUTBOX_DIR": "./out"})
    assert bare.database_url == f"sqlite:///{site}/data/newsletter.db"
    assert bare.archive_dir == str(site / "archive") and bare.delivery.outbox_dir == "./out"
    assert bare.config_file == site / "bare.json"
    # Absolute paths and other databases are left alone; without a file, the cwd's defaults.
    pg = load_settings(
        _write(tmp_path, {"database_url": "postgresql://u@db/x", "archive_dir": "/srv/a"}),
        environ={},
    )
    assert (pg.database_url, pg.archive_dir) == ("postgresql://u@db/x", "/srv/a")
    none = load_settings(None, environ={})
    assert none.config_file is None and none.archive_dir == "./archive"


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "newsletter", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_bad_file_stops_the_cli_with_exit_2(tmp_path: Path) -> None:
    """One of each kind (bound, literal, list item, unknown, nested unknown, secret) through the
    real CLI; every path above goes through the same loader, tested in-process."""
    for i in [0, 6, 7, 20, 21, 23]:
        (tmp_path / f"bad{i}.json").write_text(json.dumps(BAD_FILES[i][0]), encoding="utf-8")
        done = _cli(tmp_path, "run", "--no-send", "--config", str(tmp_path / f"bad{i}.json"))
        assert done.returncode == 2, (BAD_FILES[i], done.stderr)
        assert BAD_FILES[i][1] in done.stderr
        assert "Traceback" not in done.stderr


def test_cli_missing_and_broken_config_exit_2(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    missing = _cli(tmp_path, "run", "--config", "nope.json")
    broken = _cli(tmp_path, "demo", "--config", "broken.json")
    assert missing.returncode == broken.returncode == 2
    assert "config: file nope.json does not exist" in missing.stderr
    assert "broken.json is not valid JSON" in broken.stderr


def test_cli_names_its_config_file_and_refuses_a_mistyped_variable(tmp_path: Path) -> None:
    """The user's story: `subscribers list --config /elsewhere/config.json` run from another
    folder uses the database beside that file, and says which file it read."""
    site = tmp_path / "site"
    site.mkdir()
    config = site / "config.json"
    config.write_text(json.dumps({"categories": ["cs.LG"]}), encoding="utf-8")
    added = _cli(tmp_path, "subscribers", "add", "a@example.org", "--config", str(config))
    assert added.returncode == 0, added.stderr
    assert f"config: loaded {config}" in added.stderr
    assert (site / "data" / "newsletter.db").exists() and not (tmp_path / "data").exists()
    listed = _cli(site.parent, "subscribers", "list", "--config", "site/config.json")
    assert "a@example.org\tpending" in listed.stdout and "1 subscriber(s)" in listed.stderr
    assert "alembic" not in listed.stderr  # Alembic's lines only with --debug
    bare = _cli(tmp_path, "subscribers", "list")
    assert "config: no config file (./config.json not found)" in bare.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="200", NEWSLETTER_DELIVERY__BACKND="smtp")
    typo = subprocess.run(
        [sys.executable, "-m", "newsletter", "subscribers", "list", "--config", str(config)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert typo.returncode == 2
    assert "NEWSLETTER_DELIVERY__BACKND matches no setting (did you mean " in typo.stderr
