"""The rehearsal network for the multi-host tests (``tests/support/netlab.py``).

These tests need root and network namespaces. Where a lab cannot be built they skip
locally and FAIL under CI=true: CI must never pass by skipping what it was meant to test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import netlab
from tests.support.procs import IN_CI, require_binary


def require_lab_tools() -> None:
    for name in ("ip", "nft", "tc"):
        require_binary(name, "/usr/sbin", "/sbin")


def unavailable(why: str) -> None:
    msg = f"the rehearsal network cannot be built here: {why}"
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


@contextmanager
def built_lab(workdir: Path) -> Iterator[netlab.Lab]:
    """:func:`netlab.lab`, with "cannot build one" turned into skip / CI failure."""
    require_lab_tools()
    try:
        built = netlab.build(workdir)
    except netlab.LabUnavailable as exc:
        unavailable(str(exc))
        raise  # unreachable: skip and fail raise
    try:
        yield built
    finally:
        netlab.teardown(built)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[netlab.Lab]:
    with built_lab(tmp_path / "lab") as built:
        yield built
