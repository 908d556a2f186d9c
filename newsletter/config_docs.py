"""The README's configuration table, generated from the settings model so the two never drift."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from newsletter.config import ENV_PREFIX, Settings


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return ""
    return "`" + json.dumps(value) + "`"


def iter_settings(
    model: type[BaseModel] = Settings, prefix: str = ""
) -> Iterator[tuple[str, str, str, str]]:
    """(dotted key, default, environment variable, description) for every leaf setting."""
    for name, field in model.model_fields.items():
        ann = field.annotation
        key = f"{prefix}{name}"
        env = ENV_PREFIX + key.upper().replace(".", "__")
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from iter_settings(ann, f"{key}.")
            continue
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        desc = field.description or ""
        if extra.get("secret"):
            desc += " (secret: environment only)"
        yield key, _default(field), f"`{env}`", desc


def markdown_table() -> str:
    rows = ["| key | default | environment variable | meaning |", "|---|---|---|---|"]
    for key, default, env, desc in iter_settings():
        rows.append(f"| `{key}` | {default} | {env} | {desc} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
