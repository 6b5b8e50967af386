"""The routes over the real app (its lifespan run, in process): each calls one service
method and serialises what it answers. The state document keeps its bytes and caching
headers; a space reads the same in every list and link; /healthz says what it probed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pnyx.api.app import create_app
from pnyx.config import Settings
from pnyx.domain.types import SpaceId
from pnyx.services import views
from pnyx.services.node import Node
from tests.support.api import sign_up

# What the web client (src/pnyx/web/js) and the load-test listeners read, in wire order.
STATE_FIELDS = [
    "version",
    "space",
    "state",
    "title",
    "host",
    "host_away",
    "end_reason",
    "speak_policy",
    "stage",
    "hands",
    "invited",
    "listeners",
    "reactions",
    "pinned",
    "heartbeat_s",
    "latency",
]


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    app = create_app(Settings(data_dir=tmp_path / "data", serve_web=False))
    async with app.router.lifespan_context(app):
        yield app


async def ok(response: Any, status: int = 200) -> Any:
    r = await response
    assert r.status_code == status, r.text
    return r


async def test_the_state_document_is_the_services_view_in_one_json(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    host = await sign_up(client, "hosty")
    bob = await sign_up(client, "bobby")
    space = (await ok(client.post("/v1/spaces", json={"title": "Hi"}, headers=host), 201)).json()
    url = f"/v1/spaces/{space['id']}/state"

    public = await ok(client.get(url))
    assert public.headers["content-type"] == "application/json"
    assert public.headers["cache-control"] == "public, max-age=1, stale-while-revalidate=1"
    doc = public.json()
    assert list(doc) == STATE_FIELDS
    assert public.headers["x-pnyx-version"] == str(doc["version"])
    assert doc["state"] == "live" and doc["hands"] == {"count": 0, "handles": None}
    # Exactly the view the services make, serialised once, compactly.
    node: Node = app.state.node
    snap = await node.live.get_snapshot(SpaceId(space["id"]))
    assert snap is not None
    view = views.state_view(snap, for_stage=False, heartbeat_s=doc["heartbeat_s"])
    assert public.content == view.model_dump_json().encode()
    assert public.content == json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()

    answered = await ok(client.get(url, params={"after": doc["version"] - 1}))
    assert answered.headers["cache-control"] == "public, max-age=10"

    raised = (await ok(client.post(f"/v1/spaces/{space['id']}/hand", headers=bob))).json()
    assert list(raised) == STATE_FIELDS
    assert raised["hands"] == {"count": 1, "handles": None}  # bob is not on stage
    private = await ok(client.get(url, headers=host))
    assert private.headers["cache-control"] == "private, no-store"
    assert private.json()["hands"] == {"count": 1, "handles": ["bobby"]}

    role = {"role": "speaker"}
    made = await ok(
        client.put(f"/v1/spaces/{space['id']}/members/bobby/role", json=role, headers=host)
    )
    assert made.headers["content-type"] == "application/json"
    assert "cache-control" not in made.headers
    # The actor's view: bob came up from his raised hand; the host sees who still asks.
    assert made.json()["stage"][1] == {
        "handle": "bobby",
        "role": "speaker",
        "muted": False,
        "speaking": False,
        "display_name": "bobby",
    }
    assert made.json()["hands"] == {"count": 0, "handles": []}


async def test_state_errors_keep_their_kinds(client: httpx.AsyncClient) -> None:
    host = await sign_up(client, "hosty")
    unknown = await client.get("/v1/spaces/nope/state")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "no_space"
    unknown = await client.get("/v1/spaces/nope/state", headers=host)
    assert unknown.status_code == 404
    bad = await client.get("/v1/spaces/nope/state", headers={"Authorization": "Bearer x"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"


async def test_a_space_reads_the_same_in_every_list_and_link(client: httpx.AsyncClient) -> None:
    host = await sign_up(client, "hosty")
    fan = await sign_up(client, "fanny")
    await ok(client.post("/v1/accounts/hosty/follow", headers=fan), 204)
    created = await ok(client.post("/v1/spaces", json={"title": "Hi"}, headers=host), 201)
    space = created.json()
    assert created.headers["location"] == f"/v1/spaces/{space['id']}"
    assert space["state"] == "live" and space["stage"] == [{"handle": "hosty", "role": "host"}]
    assert space["started_at"] is not None and space["listeners"] == 0
    read = await ok(client.get(f"/v1/spaces/{space['id']}"))
    assert read.headers["cache-control"] == "public, max-age=1"
    listed = await ok(client.get("/v1/spaces"))
    assert listed.headers["cache-control"] == "public, max-age=1"
    followed = await ok(client.get("/v1/following/live", headers=fan))
    assert read.json() == space
    assert listed.json() == {"spaces": [space]}
    assert followed.json() == {"spaces": [space]}

    ended = (await ok(client.post(f"/v1/spaces/{space['id']}/end", headers=host))).json()
    assert ended["state"] == "ended" and ended["ended_at"] is not None
    assert (await ok(client.get("/v1/spaces"))).json() == {"spaces": []}
    replay = await client.get(f"/media/{space['id']}/replay.m3u8")
    assert replay.status_code == 404 and replay.json()["error"]["code"] == "no_recording"


async def test_healthz_says_what_it_probed(app: FastAPI, client: httpx.AsyncClient) -> None:
    r = await ok(client.get("/healthz"))
    node: Node = app.state.node
    assert r.json() == {
        "status": "ok",
        "node": node.node_id,
        "checks": {"store": True, "live": True},
    }
    assert r.headers["cache-control"] == "no-store"
