"""Golden files: compare against tests/unit/media/golden/, or rewrite them when the
environment variable PNYX_UPDATE_GOLDEN=1 is set (then review the diff)."""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("PNYX_UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"missing golden {path}; run with PNYX_UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(encoding="utf-8")
