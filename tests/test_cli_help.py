"""Every command's help as a person reads it: flags without values, readable metavars, `-h`,
`--version`; and the one date type's messages (in-process: typer parses before any command runs)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from newsletter import __version__
from newsletter.cli.main import register_commands

# What typer prints when it guesses a metavar from a Python type instead of being told one.
GUESSED = re.compile(r"<bool>|<str>|<int>|<path>|<list\[|list\[str\]|\{[a-zA-Z_]+\}|BOOLEAN")


def _commands(app: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    for command in app.registered_commands:
        out.append((*prefix, command.name or ""))
    for group in app.registered_groups:
        assert group.typer_instance is not None and group.name is not None
        out += _commands(group.typer_instance, (*prefix, group.name))
    return out


COMMANDS = _commands(register_commands())


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(register_commands(), list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stdout + result.stderr


def test_every_command_is_listed() -> None:
    names = {" ".join(c) for c in COMMANDS}
    assert {"run", "demo", "send", "preview", "serve", "db upgrade", "subscribers add"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "newsletter")
def test_help_shows_flags_without_values_and_readable_metavars(command: tuple[str, ...]) -> None:
    code, long_help = invoke(*command, "--help")
    short_code, short_help = invoke(*command, "-h")
    assert code == short_code == 0
    assert short_help == long_help and "-h" in long_help
    assert GUESSED.search(long_help) is None, long_help


def test_flags_take_no_value_and_options_show_what_they_take() -> None:
    _, run_help = invoke("run", "--help")
    assert re.search(r"--no-send\s+Build the issue", run_help)
    assert re.search(r"--debug\s+Show tracebacks", run_help)
    assert re.search(r"--date\s+YYYY-MM-DD", run_help) and re.search(r"--config\s+FILE", run_help)
    for command in ("send", "preview"):
        assert re.search(r"--date\s+YYYY-MM-DD", invoke(command, "--help")[1])
    _, add_help = invoke("subscribers", "add", "--help")
    assert "[OPTIONS] EMAIL" in add_help and re.search(r"--keywords\s+TERMS", add_help)


def test_version() -> None:
    assert invoke("--version") == (0, f"newsletter {__version__}\n")


@pytest.mark.parametrize(
    "command",
    [("run", "--no-send"), ("send",), ("preview", "--email", "a@b.org", "--out", "x.html")],
)
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-02-30", "February 2026 has no day 30 (it has 28 days)"),
        ("2025-02-29", "February 2025 has no day 29 (it has 28 days)"),
        ("2026-04-31", "April 2026 has no day 31 (it has 30 days)"),
        ("2026-00-10", "there is no month 0 (months are 01 to 12)"),
        ("22.04.2026", "'22.04.2026' is not a date: write it as YYYY-MM-DD, e.g. 2026-04-22"),
    ],
)
def test_one_date_type_says_what_is_wrong(
    command: tuple[str, ...], value: str, message: str
) -> None:
    code, output = invoke(*command, "--date", value)
    assert code == 2
    assert message in " ".join(output.replace("│", " ").split())


def test_the_shared_cli_module_and_subscribers_import_no_command_module() -> None:
    """No cycle: commands import ``cli.app``; only ``cli.main`` imports them."""
    code = (
        "import sys, newsletter.cli.app, subscribers.cli; "
        "print(sorted(m for m in sys.modules if m in ('newsletter.cli.main', 'newsletter.cli.db', "
        "'newsletter.cli.pipeline', 'newsletter.cli.delivery', 'newsletter.cli.email', "
        "'newsletter.cli.serve')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
