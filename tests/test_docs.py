"""Docs that tests keep true: the README documents every setting and every command."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from newsletter.cli.main import register_commands
from newsletter.config_docs import markdown_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(typer_app: typer.Typer, prefix: str = "newsletter") -> list[str]:
    names = [f"{prefix} {c.name or c.callback.__name__}" for c in typer_app.registered_commands]
    for group in typer_app.registered_groups:
        assert group.typer_instance is not None
        names += _commands(group.typer_instance, f"{prefix} {group.name}")
    return names


def test_readme_configuration_table_is_the_generated_one() -> None:
    block = re.search(
        r"<!-- config-table:start -->\n(.*?)\n<!-- config-table:end -->", README, re.S
    )
    assert block is not None, "README lost its configuration table markers"
    assert block.group(1) == markdown_table(), (
        "README's configuration table is stale: regenerate it with "
        "`python -m newsletter.config_docs`"
    )


def test_every_command_is_documented() -> None:
    commands = _commands(register_commands())
    assert {"newsletter run", "newsletter demo", "newsletter db upgrade"} <= set(commands)
    missing = [c for c in commands if f"`{c}" not in README]
    assert not missing, f"commands missing from the README: {missing}"


def test_quick_start_is_two_commands_and_ci_runs_the_test_one() -> None:
    quick = README.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in quick.strip().splitlines()] == [
        "make demo",
        "make test",
    ]
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
