"""What one account may host, over HTTP on two ``pnyx serve`` nodes sharing PostgreSQL and
Redis: one live space at a time (409 ``too_many_live_spaces``), a few scheduled ones
(409 ``too_many_scheduled_spaces``), new spaces at a limited rate (429
``space_creation_rate`` with ``Retry-After`` and ``Pnyx-Retry-Jitter``), whichever node is
asked; honest use never meets any of them; the OpenAPI document says so.
"""

from __future__ import annotations

import concurrent.futures
import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.api import User, error_of, limited, ok
from tests.support.api import new_user as user
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.postgres_server import PostgresServer

pytestmark = pytest.mark.e2e

LIMITS = {
    "max_live_spaces_per_account": "1",
    "max_scheduled_spaces_per_account": "2",
    "space_creations_per_hour": "36",  # one token every 100 s
    "space_creation_burst": "6",
}


@pytest.fixture(scope="module")
def nodes(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, postgres_server: PostgresServer
) -> Iterator[list[PnyxProcess]]:
    tmp = Path(tmp_path_factory.mktemp("limits"))
    name = f"limits_{secrets.token_hex(6)}"
    postgres_server.psql(f"CREATE DATABASE {name}")
    database = postgres_server.url(name)
    try:
        with ExitStack() as stack:
            yield [
                stack.enter_context(
                    pnyx_serve(tmp / n, database=database, redis=redis_url, settings=LIMITS)
                )
                for n in ("a", "b")
            ]
    finally:
        postgres_server.psql(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def clients(nodes: list[PnyxProcess]) -> Iterator[list[httpx.Client]]:
    with nodes[0].client() as a, nodes[1].client() as b:
        yield [a, b]


def create(c: httpx.Client, host: User, **body: object) -> httpx.Response:
    return c.post("/v1/spaces", json={"title": "t", **body}, headers=host.auth)


def slot(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def test_one_live_space_at_a_time_on_any_node(clients: list[httpx.Client]) -> None:
    a, b = clients
    host = user(a, "live")
    first = ok(create(a, host), 201)["id"]
    body = error_of(create(b, host), 409)
    assert body["code"] == "too_many_live_spaces"
    assert "already hosts 1 live space" in body["message"], body
    # A scheduled space may wait, but not start while the other is live.
    later = ok(create(b, host, scheduled_start=slot(1)), 201)["id"]
    assert error_of(a.post(f"/v1/spaces/{later}/start", headers=host.auth), 409)["code"] == (
        "too_many_live_spaces"
    )
    ok(b.post(f"/v1/spaces/{first}/end", headers=host.auth))
    assert ok(a.post(f"/v1/spaces/{later}/start", headers=host.auth))["state"] == "live"
    ok(b.post(f"/v1/spaces/{later}/end", headers=host.auth))


def test_scheduled_spaces_are_capped(clients: list[httpx.Client]) -> None:
    a, b = clients
    host = user(a, "sched")
    made = [ok(create((a, b)[i], host, scheduled_start=slot(i + 1)), 201)["id"] for i in (0, 1)]
    assert error_of(create(a, host, scheduled_start=slot(5)), 409)["code"] == (
        "too_many_scheduled_spaces"
    )
    ok(b.post(f"/v1/spaces/{made[0]}/end", headers=host.auth))  # cancelled: no longer counts
    ok(create(a, host, scheduled_start=slot(5)), 201)


def test_concurrent_creations_on_both_nodes_make_one_live_space(
    clients: list[httpx.Client], nodes: list[PnyxProcess]
) -> None:
    host = user(clients[0], "race")

    def attempt(i: int) -> int:
        with nodes[i % 2].client() as c:
            return create(c, host, title=f"race {i}").status_code

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        statuses = sorted(pool.map(attempt, range(6)))
    assert statuses == [201, 409, 409, 409, 409, 409]
    live = ok(clients[1].get("/v1/spaces", params={"state": "live", "limit": 200}))["spaces"]
    assert [s["host"] for s in live].count(host.handle) == 1


def test_creation_rate_is_per_account_and_shared_by_the_nodes(
    clients: list[httpx.Client],
) -> None:
    a, b = clients
    host = user(a, "rate")
    # Honest use: one live space at a time, each ended before the next, on either node.
    for i in range(int(LIMITS["space_creation_burst"])):
        c = (a, b)[i % 2]
        space = ok(create(c, host), 201)["id"]
        ok(c.post(f"/v1/spaces/{space}/end", headers=host.auth))
    for c in (a, b):
        r = create(c, host)
        limited(r, "space_creation_rate")  # with Retry-After and the jitter hint
        assert 90 <= int(r.headers["retry-after"]) <= 100
    ok(create(b, user(b, "other")), 201)  # another account is not held back


def test_the_openapi_document_describes_the_refusals(clients: list[httpx.Client]) -> None:
    doc = ok(clients[0].get("/openapi.json"))
    create_op = doc["paths"]["/v1/spaces"]["post"]["responses"]
    start_op = doc["paths"]["/v1/spaces/{space_id}/start"]["post"]["responses"]
    assert "too_many_live_spaces" in create_op["409"]["description"]
    assert "too_many_scheduled_spaces" in create_op["409"]["description"]
    assert "space_creation_rate" in create_op["429"]["description"]
    assert "Retry-After" in create_op["429"]["headers"]
    assert "too_many_live_spaces" in start_op["409"]["description"]
    for responses in (create_op["409"], create_op["429"], start_op["409"]):
        ref = responses["content"]["application/json"]["schema"]["$ref"]
        assert ref == "#/components/schemas/ErrorOut"
    error = doc["components"]["schemas"]["ErrorDetail"]["properties"]
    assert set(error) == {"kind", "code", "message"}
