"""The admission middleware in process, over a downstream app whose requests we hold
open: refusals are immediate 503s with Retry-After and the jitter hint, in the
shedding order; the stage and reads always pass."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.types import Receive, Scope, Send

from pnyx.api.admission import AdmissionControl, classify
from pnyx.config import Settings
from pnyx.services.admission import Lane, from_settings
from tests.support.poll import Seen, eventually

SP = "/v1/spaces/abc123"
PROBES = {
    Lane.REACTION: ("POST", f"{SP}/reactions"),
    Lane.HEARTBEAT: ("POST", f"{SP}/heartbeat"),
    Lane.JOIN: ("POST", f"{SP}/join"),
    Lane.LISTENER_ACTION: ("POST", f"{SP}/hand"),
    Lane.STAGE: ("PUT", f"{SP}/members/bob/role"),
}
READS = [f"{SP}/state", "/media/abc123/live.m3u8", "/media/abc123/part/3.1.m4s", SP, "/healthz"]


class World:
    def __init__(self, capacity: int) -> None:
        settings = Settings(max_inflight=capacity, heartbeat_s=2.0, admission_hold_s=10.0)
        self.admission = from_settings(settings)
        self.now = 100.0
        services = SimpleNamespace(admission=self.admission, clock=lambda: self.now)
        self.host = SimpleNamespace(state=SimpleNamespace(services=services))
        self.gate = asyncio.Event()
        self.held = 0
        self.middleware = AdmissionControl(self._downstream)

    async def _downstream(self, scope: Scope, receive: Receive, send: Send) -> None:
        if dict(scope["headers"]).get(b"x-hold") == b"1":
            self.held += 1
            await self.gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self.host  # as Starlette does before its middleware stack
        await self.middleware(scope, receive, send)


@pytest.fixture
async def world() -> AsyncIterator[tuple[World, httpx.AsyncClient]]:
    w = World(capacity=8)  # limits: reactions 4, heartbeats 5, joins 6, actions 7
    transport = httpx.ASGITransport(app=w)
    async with httpx.AsyncClient(transport=transport, base_url="http://pnyx") as c:
        yield w, c


async def hold(w: World, c: httpx.AsyncClient, n: int) -> list[asyncio.Task[httpx.Response]]:
    method, path = PROBES[Lane.STAGE]
    start = w.held
    tasks = [
        asyncio.create_task(c.request(method, path, headers={"x-hold": "1"})) for _ in range(n)
    ]
    await eventually(
        lambda: Seen(w.held >= start + n, f"{w.held - start} held"),
        5,
        f"{n} held requests to reach the app",
        interval=0.001,
    )
    return tasks


async def admitted(c: httpx.AsyncClient) -> set[Lane]:
    out = set()
    for lane, (method, path) in PROBES.items():
        r = await c.request(method, path)
        if r.status_code == 200:
            out.add(lane)
        else:
            assert r.status_code == 503, r.text
    return out


async def test_sheds_in_order_and_never_the_stage(world: tuple[World, httpx.AsyncClient]) -> None:
    w, c = world
    expected_first_refused = {
        Lane.REACTION: 4,
        Lane.HEARTBEAT: 5,
        Lane.JOIN: 6,
        Lane.LISTENER_ACTION: 7,
    }
    tasks = []
    for load in range(12):  # past capacity: the stage is still admitted
        lanes = await admitted(c)
        assert lanes == {Lane.STAGE} | {
            lane for lane, at in expected_first_refused.items() if load < at
        }, load
        for read in READS:
            assert (await c.get(read)).status_code == 200  # reads never refused
        tasks += await hold(w, c, 1)
    assert w.admission.inflight[Lane.STAGE] == 12
    w.gate.set()
    assert all(r.status_code == 200 for r in await asyncio.gather(*tasks))
    assert w.admission.total == 0
    assert await admitted(c) == set(Lane)  # recovered


async def test_a_refusal_is_an_immediate_503_with_retry_hints(
    world: tuple[World, httpx.AsyncClient],
) -> None:
    w, c = world

    def refused() -> float:
        return REGISTRY.get_sample_value("pnyx_admission_refused_total", {"lane": "reaction"}) or 0

    before = refused()
    tasks = await hold(w, c, 8)
    started = time.monotonic()
    r = await c.post(f"{SP}/reactions", json={"emoji": "🔥"})
    assert time.monotonic() - started < 1.0
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert r.headers["pnyx-retry-jitter"] == "0.5"
    assert r.headers["cache-control"] == "no-store"
    error = r.json()["error"]
    assert (error["kind"], error["code"]) == ("unavailable", "overloaded")
    assert "reaction" in error["message"]
    assert refused() == before + 1
    assert REGISTRY.get_sample_value("pnyx_admission_inflight", {"lane": "stage"}) == 8
    w.gate.set()
    await asyncio.gather(*tasks)
    assert REGISTRY.get_sample_value("pnyx_admission_inflight", {"lane": "stage"}) == 0


async def test_heartbeat_interval_rises_under_load_and_falls_after(
    world: tuple[World, httpx.AsyncClient],
) -> None:
    w, c = world
    assert w.admission.heartbeat_s(w.now) == 2.0
    tasks = await hold(w, c, 4)
    assert (await c.post(f"{SP}/reactions")).status_code == 503
    assert w.admission.heartbeat_s(w.now) == 4.0
    tasks += await hold(w, c, 1)
    assert (await c.post(f"{SP}/heartbeat")).status_code == 503
    assert w.admission.heartbeat_s(w.now) == 8.0
    w.gate.set()
    await asyncio.gather(*tasks)
    w.now += 11.0
    assert w.admission.heartbeat_s(w.now) == 2.0


def test_classification() -> None:
    assert classify("POST", f"{SP}/reactions") is Lane.REACTION
    assert classify("POST", f"{SP}/heartbeat/") is Lane.HEARTBEAT
    assert classify("POST", f"{SP}/join") is Lane.JOIN
    assert classify("DELETE", f"{SP}/hand") is Lane.LISTENER_ACTION
    assert classify("POST", f"{SP}/invitation") is Lane.LISTENER_ACTION
    assert classify("POST", f"{SP}/leave") is Lane.LISTENER_ACTION
    assert classify("POST", "/v1/sessions") is Lane.LISTENER_ACTION
    assert classify("DELETE", f"{SP}/hands/bob") is Lane.STAGE
    assert classify("POST", f"{SP}/publish") is Lane.STAGE
    assert classify("DELETE", f"{SP}/publish/s1") is Lane.STAGE
    assert classify("POST", f"{SP}/members/bob/mute") is Lane.STAGE
    assert classify("POST", f"{SP}/start") is Lane.STAGE
    assert classify("POST", "/v1/spaces") is Lane.STAGE
    for read in [*READS, "/metrics", "/web/app.js", "/s/abc123", f"{SP}/recording.m4a"]:
        assert classify("GET", read) is None, read
        assert classify("HEAD", read) is None, read
    # Not in the table: another write is a listener action (never the stage by accident).
    assert classify("POST", "/v1/accounts/bob/follow") is Lane.LISTENER_ACTION
    assert classify("POST", f"{SP}/members/bob/mute/extra") is Lane.LISTENER_ACTION


async def test_passes_everything_before_the_node_is_up() -> None:
    async def downstream(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=AdmissionControl(downstream))
    async with httpx.AsyncClient(transport=transport, base_url="http://pnyx") as c:
        assert (await c.post(f"{SP}/reactions")).status_code == 204
