"""Shared e2e fixtures. Each module provides its own ``node`` (a ``pnyx serve`` process
with the settings it needs)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support import browser
from tests.support.pnyx_server import PnyxProcess


@pytest.fixture(autouse=True)
def console_trail() -> Iterator[None]:
    """Print the pages' console lines at teardown: pytest shows them for a failed test.
    Any Content-Security-Policy violation on any page fails the test."""
    browser.console_trails()
    yield
    violations = browser.csp_violations()
    trails = browser.console_trails()
    if trails:
        print(trails)
    assert not violations, "Content-Security-Policy violations:\n" + "\n".join(violations)


@pytest.fixture
def c(node: PnyxProcess) -> Iterator[httpx.Client]:
    with node.client() as client:
        yield client
