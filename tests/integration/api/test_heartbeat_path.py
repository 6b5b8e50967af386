"""The lean paths (api/heartbeat.py) answer exactly what FastAPI's routes answer: one
scenario of heartbeats and joins — good, refused for each reason the routes refuse, and
ones the lean paths hand on — run against the real app with the lean paths and without
them, the two transcripts compared answer by answer (status, headers, body; the ids and
tokens a join makes up, by shape). And a shed heartbeat gets admission control's own 503."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from pnyx.api.admission import AdmissionControl
from pnyx.api.app import create_app
from pnyx.api.heartbeat import HeartbeatPath
from pnyx.config import Settings
from pnyx.domain.types import ListenerId, SpaceId
from pnyx.services.admission import Lane, Refusal, from_settings
from pnyx.services.auth import Tokens
from tests.support.api import sign_up
from tests.support.pnyx_server import ACCOUNTS_UNLIMITED
from tests.support.poll import Seen, eventually

SECRET = "heartbeat-path-test-secret-0123456789abcdef"

Answer = tuple[str, int, dict[str, str], Any]


@asynccontextmanager
async def served(tmp: Path, lean: bool) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        data_dir=tmp / ("lean" if lean else "framework"),
        serve_web=False,
        secret=SECRET,
        listener_lean_paths=lean,
        snapshot_cache_s=0,
        frontrow_publish_urls=["http://127.0.0.1:9/frontrow/pub/"],  # joins offer the front row
        **ACCOUNTS_UNLIMITED,  # type: ignore[arg-type]
    )
    app = create_app(settings)
    assert any(m.cls is HeartbeatPath for m in app.user_middleware) is lean
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pnyx") as c:
            yield c


def answer(step: str, r: httpx.Response) -> Answer:
    body = r.json() if r.content else None
    space = r.request.url.path.split("/")[3]  # ids differ between the two runs
    headers = {k: v.replace(space, "{space_id}") for k, v in r.headers.items()}
    if isinstance(body, dict) and "token" in body:  # a join: made-up ids, by shape
        body = {
            **body,
            "listener_id": len(body["listener_id"]),
            "token": body["token"].count("."),
            "media": {k: v.replace(space, "{space_id}") for k, v in body["media"].items()},
            "frontrow": body["frontrow"]
            and {**body["frontrow"], "url": body["frontrow"]["url"].replace(space, "{space_id}")},
        }
    return step, r.status_code, headers, body


async def scenario(c: httpx.AsyncClient) -> list[Answer]:
    host = await sign_up(c, "host")
    bob = await sign_up(c, "bob")
    r = await c.post("/v1/spaces", json={"title": "Beats"}, headers=host)
    assert r.status_code == 201, r.text
    space = r.json()["id"]
    r = await c.post("/v1/spaces", json={"title": "Other"}, headers=await sign_up(c, "carol"))
    assert r.status_code == 201, r.text
    other = r.json()["id"]
    anon = (await c.post(f"/v1/spaces/{space}/join")).json()["token"]
    signed = (await c.post(f"/v1/spaces/{space}/join", headers=bob)).json()["token"]
    beat = f"/v1/spaces/{space}/heartbeat"
    expired = Tokens(SECRET, account_ttl_s=60, listener_ttl_s=-5).issue_listener(
        ListenerId("gone"), SpaceId(space), None
    )
    tampered = anon[:-4] + ("AAAA" if not anon.endswith("AAAA") else "BBBB")

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    out = [
        answer("anonymous", await c.post(beat, headers=bearer(anon))),
        answer("signed in", await c.post(beat, headers=bearer(signed))),
        answer(
            "lower-case scheme", await c.post(beat, headers={"authorization": f"bearer {anon}"})
        ),
        answer("no token", await c.post(beat)),
        answer("basic auth", await c.post(beat, headers={"Authorization": "Basic eDp5"})),
        answer("two spaces", await c.post(beat, headers={"Authorization": f"Bearer  {anon}"})),
        answer("garbage", await c.post(beat, headers=bearer("garbage"))),
        answer("tampered", await c.post(beat, headers=bearer(tampered))),
        answer("expired", await c.post(beat, headers=bearer(expired))),
        answer("account token", await c.post(beat, headers=host)),
        answer("other space", await c.post(f"/v1/spaces/{other}/heartbeat", headers=bearer(anon))),
        answer("no such space", await c.post("/v1/spaces/nope/heartbeat", headers=bearer(anon))),
        answer(
            "id too long", await c.post(f"/v1/spaces/{'x' * 65}/heartbeat", headers=bearer(anon))
        ),
        answer("with a body", await c.post(beat, json={"x": 1}, headers=bearer(anon))),
        answer("trailing slash", await c.post(beat + "/", headers=bearer(anon))),
        answer("GET", await c.get(beat, headers=bearer(anon))),
    ]
    join = f"/v1/spaces/{space}/join"
    out += [
        answer("join", await c.post(join)),
        answer("join, no such space", await c.post("/v1/spaces/nope/join")),
        answer("join, id too long", await c.post(f"/v1/spaces/{'x' * 65}/join")),
        answer("join, signed in", await c.post(join, headers=bob)),
        answer("join, basic auth", await c.post(join, headers={"Authorization": "Basic eDp5"})),
        answer("join, with a body", await c.post(join, json={"x": 1})),
        answer("join, client", await c.post(join, params={"client": "k" * 22})),
        answer("join, client and junk", await c.post(join, params={"client": "k" * 16, "x": 1})),
        answer("join, bad client", await c.post(join, params={"client": "no!"})),
        answer("join, empty client", await c.post(join, params={"client": ""})),
        answer("join, long client", await c.post(join, params={"client": "k" * 65})),
    ]
    r = await c.post(f"/v1/spaces/{space}/members/bob/remove", json={"block": True}, headers=host)
    assert r.status_code < 300, r.text
    out.append(answer("removed", await c.post(beat, headers=bearer(signed))))
    r = await c.post(f"/v1/spaces/{space}/end", headers=host)
    assert r.status_code < 300, r.text

    async def over() -> Seen:
        r = await c.post(beat, headers=bearer(anon))
        return Seen(r.status_code == 409, r.text)

    await eventually(over, 10, "the heartbeat refused once the space ended")
    out.append(answer("ended", await c.post(beat, headers=bearer(anon))))
    out.append(answer("join, ended", await c.post(join)))
    return out


async def test_the_lean_path_answers_what_the_route_answers(tmp_path: Path) -> None:
    transcripts = {}
    for lean in (True, False):
        async with served(tmp_path, lean) as c:
            transcripts[lean] = await scenario(c)
    statuses = {step: status for step, status, _, _ in transcripts[True]}
    # the scenario covers what it means to: answers, refusals and hand-overs
    assert statuses["anonymous"] == statuses["signed in"] == statuses["with a body"] == 200
    assert {statuses[s] for s in ("no token", "garbage", "tampered", "expired")} == {401}
    assert statuses["other space"] == statuses["removed"] == 403
    assert statuses["ended"] == statuses["join, ended"] == 409
    assert statuses["join"] == statuses["join, signed in"] == 200
    assert statuses["join, no such space"] == 404
    assert statuses["join, client"] == statuses["join, client and junk"] == 200
    assert {statuses[f"join, {s} client"] for s in ("bad", "empty", "long")} == {422}
    joins = [body for step, _, _, body in transcripts[True] if step == "join"]
    assert joins and joins[0]["frontrow"] == {"url": "/frontrow/{space_id}", "default": True}
    for lean, framework in zip(transcripts[True], transcripts[False], strict=True):
        assert lean == framework


class _Shed:
    """HeartbeatPath and AdmissionControl over one admission policy, at capacity."""

    def __init__(self) -> None:
        self.admission = from_settings(Settings(max_inflight=4))
        for _ in range(8):  # the stage is admitted even above capacity: the rest is shed
            assert not isinstance(self.admission.try_enter(Lane.STAGE, 100.0), Refusal)
        services = SimpleNamespace(admission=self.admission, clock=lambda: 100.0)
        self.host = SimpleNamespace(state=SimpleNamespace(services=services))

    async def _unreachable(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("a shed heartbeat reached the application")

    def app(self, lean: bool) -> Any:
        inner = HeartbeatPath(self._unreachable) if lean else AdmissionControl(self._unreachable)

        async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
            scope["app"] = self.host  # as Starlette does before its middleware stack
            await inner(scope, receive, send)

        return asgi


@pytest.mark.parametrize("lean", [True, False])
async def test_a_shed_heartbeat_gets_admissions_503(lean: bool) -> None:
    world = _Shed()
    transport = httpx.ASGITransport(app=world.app(lean))
    async with httpx.AsyncClient(transport=transport, base_url="http://pnyx") as c:
        r = await c.post("/v1/spaces/abc/heartbeat", headers={"Authorization": "Bearer t"})
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "overloaded"
    assert r.headers["retry-after"] and r.headers["pnyx-retry-jitter"]
    assert r.headers["cache-control"] == "no-store"
