"""Shared e2e fixtures. Each module provides its own ``node`` (a ``pnyx serve`` process
with the settings it needs)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.pnyx_server import PnyxProcess


@pytest.fixture
def c(node: PnyxProcess) -> Iterator[httpx.Client]:
    with node.client() as client:
        yield client
