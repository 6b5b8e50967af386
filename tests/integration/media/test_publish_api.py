"""The publish routes over HTTP (ASGI in-process), against the real media service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI

from pnyx.api import errors, publish
from pnyx.api.middleware import BodyLimit
from pnyx.domain.types import Handle
from pnyx.live.keys import lease_name, node_url_key
from pnyx.services.auth import Tokens
from tests.integration.media.client import Speaker
from tests.integration.media.conftest import HOST, Stage
from tests.support.poll import eventually

SDP = {"Content-Type": "application/sdp"}


@pytest.fixture
async def api(stage: Stage) -> AsyncIterator[tuple[httpx.AsyncClient, Tokens]]:
    tokens = Tokens("t" * 40, account_ttl_s=600, listener_ttl_s=600)
    app = FastAPI()
    errors.install(app)
    app.include_router(publish.router)
    app.add_middleware(BodyLimit, limit=1024, sdp_limit=stage.settings.max_sdp_bytes)
    app.state.services = SimpleNamespace(tokens=tokens, media=stage.media)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pnyx") as client:
        yield client, tokens


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


async def test_publish_is_redirected_to_the_node_running_the_space(
    stage: Stage, api: tuple[httpx.AsyncClient, Tokens]
) -> None:
    client, tokens = api
    await stage.media.stop(stage.space, ended=False)
    await stage.live.acquire(lease_name(stage.space), "node-b", 30)
    url = f"/v1/spaces/{stage.space}/publish"
    r = await client.post(url, content="v=0", headers=SDP | auth(tokens, HOST))
    assert r.status_code == 503 and r.headers["retry-after"]
    await stage.live.put_blob(node_url_key("node-b"), b"http://10.0.0.2:8000/", 30)
    r = await client.post(url, content="v=0", headers=SDP | auth(tokens, HOST))
    assert r.status_code == 307
    assert r.headers["location"] == f"http://10.0.0.2:8000{url}"
    r = await client.delete(f"{url}/abc", headers=auth(tokens, HOST))
    assert r.status_code == 307
    assert r.headers["location"] == f"http://10.0.0.2:8000{url}/abc"


async def test_the_routes_are_documented(api: tuple[httpx.AsyncClient, Tokens]) -> None:
    client, _ = api
    spec = (await client.get("/openapi.json")).json()
    post = spec["paths"]["/v1/spaces/{space_id}/publish"]["post"]
    assert "application/sdp" in post["requestBody"]["content"]
    assert "application/sdp" in post["responses"]["201"]["content"]
    assert {"201", "307", "400", "403", "409", "415"} <= set(post["responses"])
    assert "delete" in spec["paths"]["/v1/spaces/{space_id}/publish/{session}"]
