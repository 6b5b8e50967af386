"""Figures for tests: the shipped ones, changed in memory or written to a file."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any

from pnyx.plan import figures as figs


def shipped_doc() -> dict[str, Any]:
    return tomllib.loads(figs.shipped_text())


def with_values(**values: float) -> figs.Figures:
    """The shipped figures with some values changed; keys spelt with ``__`` for dots."""
    base = figs.load()
    changed = dict(base.by_key)
    for name, value in values.items():
        key = name.replace("__", ".")
        changed[key] = dataclasses.replace(changed[key], value=float(value))
    return figs.Figures(changed, "test")


def dump(doc: dict[str, Any]) -> str:
    """A figures document as TOML (tables of strings, numbers and booleans)."""
    out = []
    for key, entry in doc.items():
        out.append(f"[{json.dumps(key)}]")
        for name, value in entry.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, str):
                text = json.dumps(value)
            else:
                text = repr(value)
            out.append(f"{name} = {text}")
        out.append("")
    return "\n".join(out)


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "figures.toml"
    path.write_text(dump(doc))
    return path
