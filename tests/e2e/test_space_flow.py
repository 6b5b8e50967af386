"""A whole space over HTTP: on the embedded default, and on two processes sharing Redis
and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.flow import run_space_flow
from tests.support.pnyx_server import pnyx_serve

pytestmark = pytest.mark.e2e

# The flow's host opens a second live space while the first is on (blocks reach it).
TWO_LIVE = {"max_live_spaces_per_account": "2"}


def test_space_flow_on_the_embedded_default(tmp_path: Path) -> None:
    with pnyx_serve(tmp_path / "node", settings=TWO_LIVE) as node, node.client() as c:
        run_space_flow(c, c)


def test_space_flow_across_two_processes(
    tmp_path: Path, redis_url: str, pg_database_url: str
) -> None:
    with (
        pnyx_serve(
            tmp_path / "a", database=pg_database_url, redis=redis_url, settings=TWO_LIVE
        ) as a,
        pnyx_serve(
            tmp_path / "b", database=pg_database_url, redis=redis_url, settings=TWO_LIVE
        ) as b,
        a.client() as on_a,
        b.client() as on_b,
    ):
        run_space_flow(on_a, on_b)
