"""The publish routes over HTTP (ASGI in-process), against the real media service and the
relay (services/relay.py). The other stage node is a fake on an httpx transport: it
records what it was sent and answers as a stage node would, or is dead (refuses)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI

from pnyx.api import errors, publish
from pnyx.api.app import create_app
from pnyx.api.middleware import BodyLimit
from pnyx.config import load_settings
from pnyx.domain.types import Handle
from pnyx.live.keys import lease_name, node_url_key
from pnyx.live.memory import MemoryLiveState
from pnyx.services.auth import Tokens
from pnyx.services.ice import IceServers
from pnyx.services.relay import PublishRelay
from pnyx.services.sessions import Sessions
from tests.integration.media.client import Speaker
from tests.integration.media.conftest import HOST, Stage
from tests.support.poll import eventually

SDP = {"Content-Type": "application/sdp"}


@dataclass
class OtherNode:
    """The fake stage node "node-b" at http://10.0.0.2:8000: ``answer`` makes its reply
    (None: it is dead, the connection is refused); ``seen`` has what reached it."""

    answer: Callable[[httpx.Request], httpx.Response] | None = None
    seen: list[httpx.Request] = field(default_factory=list)
    refused: int = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.host == "10.0.0.2", f"relayed to {request.url}: not the holder"
        if self.answer is None:
            self.refused += 1
            raise httpx.ConnectError("connection refused", request=request)
        self.seen.append(request)
        return self.answer(request)


@pytest.fixture
def other() -> OtherNode:
    return OtherNode()


@pytest.fixture
async def api(stage: Stage, other: OtherNode) -> AsyncIterator[tuple[httpx.AsyncClient, Tokens]]:
    tokens = Tokens("t" * 40, account_ttl_s=600, listener_ttl_s=600)
    app = FastAPI()
    errors.install(app)
    app.include_router(publish.router)
    app.add_middleware(BodyLimit, limit=1024, sdp_limit=stage.settings.max_sdp_bytes)
    relay = PublishRelay(stage.settings, stage.media, transport=httpx.MockTransport(other.handle))
    sessions = Sessions(MemoryLiveState(), tokens, check_s=1.0, max_entries=100)
    app.state.services = SimpleNamespace(
        tokens=tokens,
        sessions=sessions,
        media=stage.media,
        publishing=relay,
        ice=IceServers(stage.settings),
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://pnyx") as client:
            yield client, tokens
    finally:
        await relay.close()


def auth(tokens: Tokens, handle: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.issue_account(Handle(handle))}"}


async def test_publish_answers_with_sdp_and_a_session_to_delete(
    stage: Stage, api: tuple[httpx.AsyncClient, Tokens]
) -> None:
    client, tokens = api
    speaker = Speaker(500)
    stage.speakers.append(speaker)
    url = f"/v1/spaces/{stage.space}/publish"
    r = await client.post(url, content=await speaker.offer(), headers=SDP | auth(tokens, HOST))
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/sdp")
    session = stage.sessions()[HOST]
    assert r.headers["location"] == f"{url}/{session}"
    assert "a=candidate" in r.text and r.text.startswith("v=0")
    await speaker.answer(r.text)
    await eventually(lambda: speaker.pc.connectionState == "connected", 10, "connected")
    r = await client.delete(r.headers["location"], headers=auth(tokens, HOST))
    assert r.status_code == 204
    assert stage.sessions() == {}
    r = await client.delete(f"{url}/{session}", headers=auth(tokens, HOST))
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("body", "headers", "who", "status", "kind"),
    [
        ("v=0", {"Content-Type": "text/plain"}, "host", 415, "unsupported"),
        ("v=0", {}, "host", 415, "unsupported"),
        ("hello", SDP, "host", 400, "malformed"),
        (b"\xff\xfe", SDP, "host", 400, "malformed"),
        ("v=0", SDP, None, 401, "unauthenticated"),
        ("v=0", SDP, "carol", 403, "forbidden"),
        ("v=" + "0" * 70_000, SDP, "host", 413, "too_large"),
    ],
)
async def test_publish_refusals(
    stage: Stage,
    api: tuple[httpx.AsyncClient, Tokens],
    body: str | bytes,
    headers: dict[str, str],
    who: str | None,
    status: int,
    kind: str,
) -> None:
    client, tokens = api
    headers = headers | (auth(tokens, who) if who else {})
    r = await client.post(f"/v1/spaces/{stage.space}/publish", content=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["error"]["kind"] == kind
    assert r.json()["error"]["message"]
    assert stage.sessions() == {}


async def node_b_runs_it(stage: Stage, ttl_s: float = 30) -> None:
    """The space's media moves to node-b (its lease; its URL advertised)."""
    await stage.media.stop(stage.space, ended=False)
    assert await stage.live.acquire(lease_name(stage.space), "node-b", ttl_s) is not None
    await stage.live.put_blob(node_url_key("node-b"), b"http://10.0.0.2:8000/", 30)


async def test_a_publish_is_relayed_to_the_node_running_the_space(
    stage: Stage, api: tuple[httpx.AsyncClient, Tokens], other: OtherNode
) -> None:
    client, tokens = api
    await node_b_runs_it(stage)
    url = f"/v1/spaces/{stage.space}/publish"
    other.answer = lambda r: httpx.Response(
        201,
        content=b"v=0\r\nanswer",
        headers=[
            ("Content-Type", "application/sdp"),
            ("Location", f"http://10.0.0.2:8000{url}/sess-1"),
            ("Link", '<stun:stun.example.org>; rel="ice-server"'),
            ("Link", '<turn:turn.example.org>; rel="ice-server"'),
            ("ETag", '"e1"'),
            ("Cache-Control", "no-store"),
            ("Server", "uvicorn"),
        ],
    )
    me = auth(tokens, HOST)
    r = await client.post(url, content="v=0\r\noffer", headers=SDP | me)
    assert r.status_code == 201, r.text
    assert r.text == "v=0\r\nanswer"
    assert r.headers["content-type"] == "application/sdp"
    assert r.headers["location"] == f"{url}/sess-1"  # this node's own path: no other origin
    assert r.headers.get_list("link") == [
        '<stun:stun.example.org>; rel="ice-server"',
        '<turn:turn.example.org>; rel="ice-server"',
    ]
    assert r.headers["etag"] == '"e1"'
    assert "server" not in r.headers or r.headers["server"] != "uvicorn"
    (sent,) = other.seen
    assert sent.method == "POST"
    assert str(sent.url) == f"http://10.0.0.2:8000{url}"
    assert sent.content == b"v=0\r\noffer"
    assert sent.headers["authorization"] == me["Authorization"]
    assert sent.headers["content-type"] == "application/sdp"
    assert sent.headers["pnyx-relayed"] == "1"
    assert not stage.media.running(stage.space)

    # The stage node's refusals come back as they are (status, body, Retry-After).
    other.answer = lambda r: httpx.Response(
        409,
        json={"error": {"kind": "conflict", "code": "x", "message": "said node-b"}},
        headers={"Retry-After": "3"},
    )
    r = await client.post(url, content="v=0", headers=SDP | me)
    assert r.status_code == 409 and r.json()["error"]["message"] == "said node-b"
    assert r.headers["retry-after"] == "3"

    # DELETE is relayed the same way.
    other.answer = lambda r: httpx.Response(204)
    r = await client.delete(f"{url}/sess-1", headers=me)
    assert r.status_code == 204, r.text
    sent = other.seen[-1]
    assert sent.method == "DELETE" and str(sent.url) == f"http://10.0.0.2:8000{url}/sess-1"
    assert sent.headers["authorization"] == me["Authorization"]
    assert sent.headers["pnyx-relayed"] == "1"


async def test_a_relayed_request_is_never_relayed_again(
    stage: Stage, api: tuple[httpx.AsyncClient, Tokens], other: OtherNode
) -> None:
    client, tokens = api
    await node_b_runs_it(stage)
    other.answer = lambda r: httpx.Response(201, content=b"v=0")
    url = f"/v1/spaces/{stage.space}/publish"
    relayed = {"Pnyx-Relayed": "1"}
    started = time.monotonic()
    r = await client.post(url, content="v=0", headers=SDP | auth(tokens, HOST) | relayed)
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "stage_moving"
    r = await client.delete(f"{url}/abc", headers=auth(tokens, HOST) | relayed)
    assert r.status_code == 503, r.text
    assert time.monotonic() - started < 1.0  # no waiting either
    assert other.seen == [] and other.refused == 0


async def test_a_dead_holder_is_never_the_answer(
    stage: Stage, api: tuple[httpx.AsyncClient, Tokens], other: OtherNode
) -> None:
    """node-b holds the lease but is dead: the relay waits for the next holder (at most
    lease_ttl_s + lease_renew_s), tries it once more, then says 503 with Retry-After."""
    client, tokens = api
    await node_b_runs_it(stage)  # its lease outlives the wait: nobody takes over
    url = f"/v1/spaces/{stage.space}/publish"
    wait = stage.settings.lease_ttl_s + stage.settings.lease_renew_s
    started = time.monotonic()
    r = await client.post(url, content="v=0", headers=SDP | auth(tokens, HOST))
    took = time.monotonic() - started
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "stage_moving"
    assert "moving" in r.json()["error"]["message"]
    assert other.refused == 1  # the dead node once; never again
    assert wait - 0.3 <= took <= wait + 1.5, f"answered after {took:.2f}s"


async def test_the_lease_lapses_and_this_node_takes_the_publish(
    stage: Stage, api: tuple[httpx.AsyncClient, Tokens], other: OtherNode
) -> None:
    """node-b died a moment ago (its lease runs out in 0.8 s): a publish here waits for the
    lease, takes it (this node runs stages) and answers 201 itself."""
    client, tokens = api
    await node_b_runs_it(stage, ttl_s=0.8)
    speaker = Speaker(500)
    stage.speakers.append(speaker)
    url = f"/v1/spaces/{stage.space}/publish"
    started = time.monotonic()
    r = await client.post(url, content=await speaker.offer(), headers=SDP | auth(tokens, HOST))
    took = time.monotonic() - started
    assert r.status_code == 201, r.text
    assert other.refused == 1 and other.seen == []
    assert took < 0.8 + stage.settings.lease_renew_s + 1.0, f"took {took:.2f}s"
    assert stage.media.running(stage.space)
    lease = await stage.live.holder(lease_name(stage.space))
    assert lease is not None and lease.holder == "node-test"
    assert r.headers["location"] == f"{url}/{stage.sessions()[HOST]}"
    await speaker.answer(r.text)
    await eventually(lambda: speaker.pc.connectionState == "connected", 10, "connected")


async def test_an_api_node_with_no_stage_node_says_503(
    stage: Stage, api: tuple[httpx.AsyncClient, Tokens], other: OtherNode
) -> None:
    client, tokens = api
    await stage.media.stop(stage.space, ended=False)
    await stage.media.close()  # a node that does not take stages any more
    url = f"/v1/spaces/{stage.space}/publish"
    r = await client.post(url, content="v=0", headers=SDP | auth(tokens, HOST))
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert "no stage node" in r.json()["error"]["message"]
    r = await client.delete(f"{url}/abc", headers=auth(tokens, HOST))
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_session"
    assert other.seen == [] and other.refused == 0


def test_the_routes_are_documented(tmp_path: Path) -> None:
    """The real app's OpenAPI document says what the publish routes answer: no 307."""
    spec = create_app(load_settings({"data_dir": tmp_path}, env={})).openapi()
    post = spec["paths"]["/v1/spaces/{space_id}/publish"]["post"]
    assert "application/sdp" in post["requestBody"]["content"]
    assert "application/sdp" in post["responses"]["201"]["content"]
    assert "Location" in post["responses"]["201"]["headers"]
    assert "Link" in post["responses"]["201"]["headers"]
    options = spec["paths"]["/v1/spaces/{space_id}/publish"]["options"]
    assert "Link" in options["responses"]["204"]["headers"]
    assert {"204", "401", "403", "404", "409"} <= set(options["responses"])
    assert {"201", "400", "401", "403", "404", "409", "413", "415", "503"} <= set(post["responses"])
    delete = spec["paths"]["/v1/spaces/{space_id}/publish/{session}"]["delete"]
    assert {"204", "401", "404", "503"} <= set(delete["responses"])
    for op in (post, delete):
        assert "Retry-After" in op["responses"]["503"]["headers"]
        assert not any(code.startswith("3") for code in op["responses"])


ICE = {
    "ice_stun_urls": ["stun:stun.example.org:3478"],
    "ice_turn_urls": ["turn:turn.example.org:3478?transport=udp"],
    "ice_turn_secret": "0123456789abcdef0123",
}


@pytest.mark.parametrize("stage_settings", [ICE])
async def test_the_ice_servers_reach_the_client_here_and_through_the_relay(
    stage: Stage, api: tuple[httpx.AsyncClient, Tokens], other: OtherNode
) -> None:
    """Handled here: this node's Link headers (TURN credentials for the caller). Relayed:
    the stage node's, as they are, and none of this node's besides (no duplicates)."""
    client, tokens = api
    url = f"/v1/spaces/{stage.space}/publish"
    speaker = Speaker(500)
    stage.speakers.append(speaker)
    r = await client.post(url, content=await speaker.offer(), headers=SDP | auth(tokens, HOST))
    assert r.status_code == 201, r.text
    links = r.headers.get_list("link")
    assert links[0] == '<stun:stun.example.org:3478>; rel="ice-server"'
    assert links[1].startswith('<turn:turn.example.org:3478?transport=udp>; rel="ice-server"; ')
    assert f':{HOST}"; credential="' in links[1]
    r = await client.options(url, headers=auth(tokens, HOST))
    assert r.status_code == 204 and r.headers.get_list("link")[0] == links[0]
    assert r.headers.get_list("link")[1].startswith("<turn:")
    r = await client.options(url)  # no account: no TURN credentials
    assert r.headers.get_list("link") == [links[0]]

    await node_b_runs_it(stage)
    theirs = ['<stun:b.example.org>; rel="ice-server"', '<turn:b.example.org>; rel="ice-server"']
    other.answer = lambda r: httpx.Response(
        201,
        content=b"v=0\r\nanswer",
        headers=[("Location", f"{url}/sess-2"), *(("Link", v) for v in theirs)],
    )
    r = await client.post(url, content="v=0\r\noffer", headers=SDP | auth(tokens, HOST))
    assert r.status_code == 201, r.text
    assert r.headers.get_list("link") == theirs
