"""The stage WebSocket: auth, who may connect, events, bad messages, close codes, and
the host's grace period."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support.api import create_space, join, ok, state, wait_state
from tests.support.api import new_user as user
from tests.support.pnyx_server import PnyxProcess, pnyx_serve

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    settings = {
        "host_grace_s": "1.5",
        "ws_ping_s": "0.5",
        "ws_idle_timeout_s": "3",
        "ws_auth_timeout_s": "1",
    }
    with pnyx_serve(Path(tmp_path_factory.mktemp("ws")), settings=settings) as n:
        yield n


@contextmanager
def stage(node: PnyxProcess, space: str, token: str | None) -> Iterator[ClientConnection]:
    with connect(f"{node.ws_url}/v1/spaces/{space}/stage", open_timeout=10) as ws:
        if token is not None:
            ws.send(json.dumps({"type": "auth", "token": token}))
        yield ws


def next_event(ws: ClientConnection, wanted: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next message of type ``wanted``, skipping pings (answered, like a client)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if msg["type"] == "ping":
            ws.send(json.dumps({"type": "pong", "seq": msg["seq"]}))
            continue
        if msg["type"] == wanted:
            return dict(msg)


def answer_pings(ws: ClientConnection, seconds: float) -> None:
    """Read for ``seconds``, answering pings like a client."""
    deadline = time.monotonic() + seconds
    with contextlib.suppress(TimeoutError):
        while (left := deadline - time.monotonic()) > 0:
            msg = json.loads(ws.recv(timeout=left))
            if msg["type"] == "ping":
                ws.send(json.dumps({"type": "pong", "seq": msg["seq"]}))


def close_code(ws: ClientConnection, timeout: float = 10.0, *, answer_pings: bool = True) -> int:
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv(timeout=deadline - time.monotonic()))
            if msg["type"] == "ping" and answer_pings:
                ws.send(json.dumps({"type": "pong", "seq": msg["seq"]}))
    except ConnectionClosed as closed:
        if closed.rcvd is None:
            raise AssertionError("closed without a close frame") from closed
        return closed.rcvd.code
    raise AssertionError("socket was not closed")


def test_stage_member_gets_events(node: PnyxProcess, c: httpx.Client) -> None:
    host, fan = user(c, "h"), user(c, "f")
    space = create_space(c, host)
    with stage(node, space, host.token) as ws:
        welcome = next_event(ws, "welcome")
        assert welcome["you"] == host.handle and welcome["role"] == "host" and welcome["v"] == 1
        ok(c.post(f"/v1/spaces/{space}/hand", headers=fan.auth))
        assert next_event(ws, "hand_raised")["handle"] == fan.handle
        ok(
            c.put(
                f"/v1/spaces/{space}/members/{fan.handle}/role",
                json={"role": "speaker"},
                headers=host.auth,
            )
        )
        changed = next_event(ws, "role_changed")
        assert (changed["handle"], changed["old"], changed["new"]) == (
            fan.handle,
            "listener",
            "speaker",
        )
        with stage(node, space, fan.token) as fan_ws:
            assert next_event(fan_ws, "welcome")["role"] == "speaker"
            ok(c.post(f"/v1/spaces/{space}/members/{fan.handle}/mute", headers=host.auth))
            assert next_event(fan_ws, "muted")["by"] == host.handle
            ok(
                c.put(
                    f"/v1/spaces/{space}/members/{fan.handle}/role",
                    json={"role": "listener"},
                    headers=host.auth,
                )
            )
            assert next_event(fan_ws, "role_changed")["new"] == "listener"
            assert close_code(fan_ws) == 4003  # back in the audience: off the stage socket
        ok(c.post(f"/v1/spaces/{space}/end", headers=host.auth))
        assert next_event(ws, "space_ended")["reason"] == "host_ended"
        assert close_code(ws) == 4010


def test_bad_messages_get_an_error_and_the_socket_stays(node: PnyxProcess, c: httpx.Client) -> None:
    host, fan = user(c, "h"), user(c, "f")
    space = create_space(c, host)
    with stage(node, space, host.token) as ws:
        next_event(ws, "welcome")
        for bad in [
            "not json",
            '{"type": "launch"}',
            '{"type": "pong", "seq": 1, "x": 2}',
            '{"type":"pong","seq":1,"v":7}',
        ]:
            ws.send(bad)
            err = next_event(ws, "error")
            assert err["code"] == "bad_message" and err["message"]
        ok(c.post(f"/v1/spaces/{space}/hand", headers=fan.auth))
        assert next_event(ws, "hand_raised")["handle"] == fan.handle  # still working
        ws.send(json.dumps({"type": "ping", "seq": 7}))
        assert next_event(ws, "pong")["seq"] == 7
        ws.send(json.dumps({"type": "pong", "seq": 1, "pad": "x" * 10_000}))
        assert close_code(ws) == 1009
    # The space and its other members were not disturbed.
    assert state(c, space)["hands"]["count"] == 1


@pytest.mark.parametrize(
    ("who", "code"), [("nobody", 4001), ("garbage", 4001), ("listener", 4003), ("silent", 4001)]
)
def test_who_may_not_use_the_stage_socket(
    node: PnyxProcess, c: httpx.Client, who: str, code: int
) -> None:
    host, fan = user(c, "h"), user(c, "f")
    space = create_space(c, host)
    token = {"nobody": "x.y.z", "garbage": None, "listener": fan.token, "silent": None}[who]
    with stage(node, space, token) as ws:
        if who == "garbage":
            ws.send("]]]")
        assert close_code(ws, timeout=15) == code
    with stage(node, "no-such-space", host.token) as ws:
        assert close_code(ws) == 4004


def test_host_grace_period(node: PnyxProcess, c: httpx.Client) -> None:
    host, cohost = user(c, "h"), user(c, "co")
    space = create_space(c, host)
    # Back within the grace period: the space goes on.
    with stage(node, space, host.token) as ws:
        next_event(ws, "welcome")
    wait_state(c, space, lambda s: s["host_away"])
    with stage(node, space, host.token) as ws:
        next_event(ws, "welcome")
        s = wait_state(c, space, lambda s: not s["host_away"])
        assert s["state"] == "live"
        # Co-hosts keep it running while the host is away.
        ok(
            c.put(
                f"/v1/spaces/{space}/members/{cohost.handle}/role",
                json={"role": "cohost"},
                headers=host.auth,
            )
        )
        ok(c.post(f"/v1/spaces/{space}/invitation", json={"accept": True}, headers=cohost.auth))
    s = wait_state(c, space, lambda s: s["host_away"])
    fan = user(c, "f")
    ok(c.post(f"/v1/spaces/{space}/hand", headers=fan.auth))
    ok(
        c.put(
            f"/v1/spaces/{space}/members/{fan.handle}/role",
            json={"role": "speaker"},
            headers=cohost.auth,
        )
    )
    # Away past the grace period: the space ends.
    s = wait_state(c, space, lambda s: s["state"] == "ended", timeout=10)
    assert s["end_reason"] == "host_left"
    assert join_refused(c, space)


def join_refused(c: httpx.Client, space: str) -> bool:
    return c.post(f"/v1/spaces/{space}/join").status_code == 409


def test_idle_socket_is_closed(node: PnyxProcess, c: httpx.Client) -> None:
    host = user(c, "h")
    space = create_space(c, host)
    with stage(node, space, host.token) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "welcome"
        # Never answer the pings: closed as idle after ws_idle_timeout_s.
        assert close_code(ws, answer_pings=False, timeout=15) == 4011
    assert join(c, space).token  # the space itself is fine


def test_a_node_shutting_down_sends_its_stage_clients_elsewhere(
    tmp_path: Path,
) -> None:
    """SIGTERM: every stage socket is closed with 1001 (going away) as shutdown begins,
    so clients reconnect to another node at once; the node stops well within uvicorn's
    graceful timeout, without a traceback (pnyx_serve checks its log)."""
    with pnyx_serve(tmp_path / "going") as going, going.client() as c:
        host = user(c, "leaving")
        space = create_space(c, host)
        with stage(going, space, host.token) as ws:
            next_event(ws, "welcome")
            started = time.monotonic()
            going.proc.terminate()
            assert close_code(ws, timeout=10, answer_pings=False) == 1001
            going.proc.wait(timeout=10)
            took = time.monotonic() - started
    assert took < 4, f"the node took {took:.1f}s to stop (uvicorn gives up after 5 s)"


def test_a_host_s_old_socket_closing_does_not_take_the_new_one_s_presence(
    tmp_path: Path,
) -> None:
    """A host whose connection changed (a phone leaving Wi-Fi) reconnects before the old
    socket is closed: the old socket closing must not say the host left while the new
    one is open. The host is never away meanwhile; when the last socket closes, they are."""
    settings = {
        "host_grace_s": "60",
        "stage_presence_ttl_s": "6",  # presence written every 2 s; judged after 6 s held
        "ws_ping_s": "0.5",
        "ws_idle_timeout_s": "3",
    }
    with pnyx_serve(tmp_path / "n", settings=settings) as n, n.client() as c:
        host = user(c, "h")
        space = create_space(c, host)
        wait_state(c, space, lambda s: s["host_away"])  # held long enough to be judged
        with stage(n, space, host.token) as old:
            next_event(old, "welcome")
            wait_state(c, space, lambda s: not s["host_away"])
            with stage(n, space, host.token) as new:
                next_event(new, "welcome")
                old.close()
                seen = []
                deadline = time.monotonic() + 5  # > two presence writes and many ticks
                while time.monotonic() < deadline:
                    answer_pings(new, 0.1)  # the new socket stays alive meanwhile
                    s = state(c, space)
                    seen.append(s["host_away"])
                    assert not s["host_away"] and s["state"] == "live", s
                assert len(seen) >= 10, seen
        wait_state(c, space, lambda s: s["host_away"])  # the last one closed: away
