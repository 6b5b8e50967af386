"""Bad input gets a clear 4xx and changes nothing; the node keeps serving everyone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.support.api import User, create_space, error_of, join, ok, register, state
from tests.support.pnyx_server import SECRET, PnyxProcess, pnyx_serve

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    # A host opens a second live space (one space's token is not another's).
    two_live = {"max_live_spaces_per_account": "2"}
    with pnyx_serve(Path(tmp_path_factory.mktemp("bad-input")), settings=two_live) as n:
        yield n


@pytest.fixture(scope="module")
def world(node: PnyxProcess) -> Iterator[tuple[httpx.Client, User, User, str]]:
    with node.client() as c:
        host = register(c, "host_bad")
        other = register(c, "other_bad")
        space = create_space(c, host)
        ok(c.post(f"/v1/spaces/{space}/hand", headers=other.auth))
        yield c, host, other, space


def _snapshot(c: httpx.Client, space: str) -> dict[str, object]:
    """The room as the stage sees it. (The snapshot version also moves when the listener
    count or reactions change, so it is not part of "unchanged".)"""
    s = state(c, space)
    return {k: s[k] for k in ("stage", "hands", "invited", "pinned", "state", "speak_policy")}


def test_malformed_json_is_400(world: tuple[httpx.Client, User, User, str]) -> None:
    c, host, _, space = world
    before = _snapshot(c, space)
    r = c.put(
        f"/v1/spaces/{space}/pin",
        content=b'{"url": "https://x.example", ',
        headers={**host.auth, "content-type": "application/json"},
    )
    assert error_of(r, 400)["code"] == "bad_json"
    assert _snapshot(c, space) == before


def test_unknown_field_is_422_and_named(world: tuple[httpx.Client, User, User, str]) -> None:
    c, host, _, space = world
    before = _snapshot(c, space)
    r = c.put(
        f"/v1/spaces/{space}/members/other_bad/role",
        json={"role": "speaker", "sneaky": True},
        headers=host.auth,
    )
    assert "sneaky" in error_of(r, 422)["message"]
    r = c.post("/v1/accounts", json={"handle": "x_y_z", "password": "12345678", "admin": True})
    assert "admin" in error_of(r, 422)["message"]
    assert _snapshot(c, space) == before


def test_bad_values_are_422(world: tuple[httpx.Client, User, User, str]) -> None:
    c, host, _, space = world
    before = _snapshot(c, space)
    r = c.put(
        f"/v1/spaces/{space}/members/other_bad/role", json={"role": "emperor"}, headers=host.auth
    )
    error_of(r, 422)
    error_of(
        c.put(f"/v1/spaces/{space}/pin", json={"url": "javascript:alert(1)"}, headers=host.auth),
        422,
    )
    error_of(c.post("/v1/accounts", json={"handle": "no spaces!", "password": "12345678"}), 422)
    error_of(c.post("/v1/accounts", json={"handle": "shorty", "password": "1"}), 422)
    error_of(c.get(f"/v1/spaces/{space}/state", params={"after": "soon"}), 422)
    assert _snapshot(c, space) == before


def test_oversized_bodies_are_413(world: tuple[httpx.Client, User, User, str]) -> None:
    c, host, _, space = world
    before = _snapshot(c, space)
    big = '{"url": "https://example.com/' + "a" * 40_000 + '"}'
    r = c.put(
        f"/v1/spaces/{space}/pin",
        content=big.encode(),
        headers={**host.auth, "content-type": "application/json"},
    )
    assert error_of(r, 413)["kind"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit still holds
        yield b'{"title": "'
        for _ in range(40):
            yield b"x" * 1024
        yield b'"}'

    r = c.post(
        "/v1/spaces", content=chunks(), headers={**host.auth, "content-type": "application/json"}
    )
    error_of(r, 413)
    assert _snapshot(c, space) == before


def test_bad_and_expired_tokens_are_401(world: tuple[httpx.Client, User, User, str]) -> None:
    c, host, _, space = world
    before = _snapshot(c, space)
    bad = {"Authorization": "Bearer not-a-token"}
    assert error_of(c.post(f"/v1/spaces/{space}/end", headers=bad), 401)["code"] == "token_invalid"
    forged = jwt.encode(
        {"sub": host.handle, "typ": "account", "exp": int(time.time()) + 60},
        "a-different-key-of-plenty-of-bytes-000000",
        "HS256",
    )
    error_of(c.post(f"/v1/spaces/{space}/end", headers={"Authorization": f"Bearer {forged}"}), 401)
    expired = jwt.encode(
        {"sub": host.handle, "typ": "account", "exp": int(time.time()) - 10}, SECRET, "HS256"
    )
    r = c.post(f"/v1/spaces/{space}/end", headers={"Authorization": f"Bearer {expired}"})
    assert error_of(r, 401)["code"] == "token_expired"
    assert r.headers["www-authenticate"] == "Bearer"
    error_of(c.post(f"/v1/spaces/{space}/end"), 401)
    # A listener token is not an account token, and one space's token is not another's.
    lst = join(c, space)
    error_of(c.post(f"/v1/spaces/{space}/end", headers=lst.auth), 401)
    other = create_space(c, host, title="Other")
    error_of(c.post(f"/v1/spaces/{other}/heartbeat", headers=lst.auth), 403)
    ok(c.post(f"/v1/spaces/{other}/end", headers=host.auth))
    assert _snapshot(c, space) == before


def test_wrong_role_is_403_and_changes_nothing(world: tuple[httpx.Client, User, User, str]) -> None:
    c, _, other, space = world
    before = _snapshot(c, space)
    for method, path, body in [
        ("POST", f"/v1/spaces/{space}/end", None),
        ("PUT", f"/v1/spaces/{space}/members/other_bad/role", {"role": "speaker"}),
        ("POST", f"/v1/spaces/{space}/members/host_bad/mute", None),
        ("POST", f"/v1/spaces/{space}/members/host_bad/remove", {"block": True}),
        ("PUT", f"/v1/spaces/{space}/pin", {"url": "https://example.com"}),
    ]:
        r = c.request(method, path, json=body, headers=other.auth)
        error_of(r, 403)
    assert _snapshot(c, space) == before


def test_unknown_things_are_404(world: tuple[httpx.Client, User, User, str]) -> None:
    c, host, _, _ = world
    error_of(c.get("/v1/spaces/nope"), 404)
    error_of(c.get("/v1/spaces/nope/state"), 404)
    error_of(c.post("/v1/spaces/nope/join"), 404)
    error_of(c.post("/v1/accounts/nobody_here/follow", headers=host.auth), 404)
    error_of(c.get("/v1/no/such/route"), 404)


def test_reactions_are_rate_limited_per_listener(
    world: tuple[httpx.Client, User, User, str],
) -> None:
    c, _, _, space = world
    greedy, calm = join(c, space), join(c, space)
    statuses = [
        c.post(
            f"/v1/spaces/{space}/reactions", json={"emoji": "👏"}, headers=greedy.auth
        ).status_code
        for _ in range(30)
    ]
    assert statuses.count(202) >= 1 and 429 in statuses
    r = c.post(f"/v1/spaces/{space}/reactions", json={"emoji": "👏"}, headers=greedy.auth)
    assert error_of(r, 429)["kind"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1
    # Another listener is not affected.
    ok(c.post(f"/v1/spaces/{space}/reactions", json={"emoji": "👏"}, headers=calm.auth), 202)
    error_of(c.post(f"/v1/spaces/{space}/reactions", json={"emoji": "💩"}, headers=calm.auth), 422)


def test_openapi_documents_every_route(node: PnyxProcess) -> None:
    with node.client() as c:
        doc = ok(c.get("/openapi.json"))
    paths = doc["paths"]
    for path in [
        "/v1/accounts",
        "/v1/sessions",
        "/v1/accounts/{handle}/follow",
        "/v1/accounts/{handle}/block",
        "/v1/spaces",
        "/v1/spaces/{space_id}",
        "/v1/spaces/{space_id}/start",
        "/v1/spaces/{space_id}/end",
        "/v1/spaces/{space_id}/state",
        "/v1/spaces/{space_id}/join",
        "/v1/spaces/{space_id}/heartbeat",
        "/v1/spaces/{space_id}/leave",
        "/v1/spaces/{space_id}/hand",
        "/v1/spaces/{space_id}/members/{handle}/role",
        "/v1/spaces/{space_id}/invitation",
        "/v1/spaces/{space_id}/members/{handle}/mute",
        "/v1/spaces/{space_id}/members/{handle}/unmute",
        "/v1/spaces/{space_id}/members/{handle}/remove",
        "/v1/spaces/{space_id}/reactions",
        "/v1/spaces/{space_id}/pin",
        "/v1/spaces/{space_id}/publish",
        "/v1/spaces/{space_id}/publish/{session}",
        "/media/{space_id}/live.m3u8",
        "/media/{space_id}/plain.m3u8",
        "/media/{space_id}/init.mp4",
        "/media/{space_id}/part/{msn}.{part}.m4s",
        "/media/{space_id}/seg/{msn}.m4s",
        "/media/{space_id}/replay.m3u8",
        "/v1/spaces/{space_id}/recording.m4a",
        "/healthz",
        "/metrics",
    ]:
        assert path in paths, path


def test_metrics_are_prometheus_text(node: PnyxProcess) -> None:
    with node.client() as c:
        r = c.get("/metrics")
    assert r.status_code == 200
    assert "pnyx_http_requests_total" in r.text
    assert 'route="/v1/spaces/{space_id}/state"' in r.text
