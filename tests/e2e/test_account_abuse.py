"""Accounts against hostile users, on real nodes: rate limits (429 with Retry-After and
the jitter hint) that hold across two nodes on one Redis, the client address taken from
trusted proxies only, sign-in that takes as long for a missing handle as for a wrong
password, weak passwords refused, and sign-outs every node honours (stage socket
included).

Each simulated client has its own loopback source address (127.0.0.x), so the limits per
client address see them apart."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support.api import User, create_space, error_of, limited, ok
from tests.support.nginx import nginx_edge
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import wait_until

PASSWORD = "correct horse"
LIMITS = {
    "signin_handle_burst": "3",
    "signin_handle_per_min": "1",
    "signin_address_burst": "6",
    "signin_address_per_min": "1",
    "signup_address_burst": "2",
    "signup_address_per_min": "1",
    "session_check_s": "1",
}


def client(base_url: str, source: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=base_url, transport=transport, timeout=20.0)


@pytest.fixture
def two_nodes(
    tmp_path: Path, redis_clean_url: str, pg_database_url: str
) -> Iterator[tuple[PnyxProcess, PnyxProcess]]:
    shared = {"database": pg_database_url, "redis": redis_clean_url, "settings": LIMITS}
    with pnyx_serve(tmp_path / "a", **shared) as a, pnyx_serve(tmp_path / "b", **shared) as b:  # type: ignore[arg-type]
        yield a, b


def sign_up(c: httpx.Client, handle: str) -> httpx.Response:
    return c.post("/v1/accounts", json={"handle": handle, "password": PASSWORD})


def sign_in(c: httpx.Client, handle: str, password: str = PASSWORD) -> httpx.Response:
    return c.post("/v1/sessions", json={"handle": handle, "password": password})


def test_the_limits_hold_across_two_nodes(two_nodes: tuple[PnyxProcess, PnyxProcess]) -> None:
    a, b = two_nodes
    with (
        client(a.url, "127.0.0.11") as a1,
        client(b.url, "127.0.0.11") as b1,
        client(a.url, "127.0.0.12") as a2,
        client(b.url, "127.0.0.12") as b2,
        client(a.url, "127.0.0.13") as a3,
        client(b.url, "127.0.0.13") as b3,
        client(a.url, "127.0.0.14") as a4,
        client(b.url, "127.0.0.14") as b4,
    ):
        # Sign-ups per address: two, on either node, then 429 on both.
        ok(sign_up(a1, "alice"), 201)
        ok(sign_up(b1, "bob"), 201)
        limited(sign_up(a1, "mallory"), "signup_address_limited")
        limited(sign_up(b1, "mallory"), "signup_address_limited")
        # Refused input costs nothing: a weak password is a 422, not a 429 ...
        weak = error_of(a2.post("/v1/accounts", json={"handle": "x_y", "password": "1234"}), 422)
        assert weak["code"] == "bad_password"
        # ... and another client's sign-ups are its own.
        ok(sign_up(b2, "carol"), 201)

        # An honest client, below every limit, never sees a 429.
        for c in (a2, b2):
            ok(sign_in(c, "carol"))

        # Guessing one account's password: three tries across the nodes, then 429, for
        # the right password too, while other accounts from that address still sign in.
        for c in (a3, b3, a3):
            assert error_of(sign_in(c, "alice", "not her password"), 401)["code"] == (
                "bad_credentials"
            )
        limited(sign_in(b3, "alice", "not her password"), "signin_handle_limited")
        limited(sign_in(a3, "alice"), "signin_handle_limited")
        ok(sign_in(b3, "bob"))

        # Guessing across accounts from one address: six, then 429 on both nodes.
        for i in range(6):
            error_of(sign_in((a4, b4)[i % 2], f"nobody_{i}"), 401)
        limited(sign_in(a4, "bob"), "signin_address_limited")
        limited(sign_in(b4, "bob"), "signin_address_limited")


def test_trusted_proxies_only(tmp_path: Path) -> None:
    settings = {**LIMITS, "trusted_proxies": "127.0.0.1"}
    with (
        pnyx_serve(tmp_path / "n", settings=settings) as node,
        nginx_edge([node.url.removeprefix("http://")]) as edge,
        client(node.url, "127.0.0.21") as direct,
        client(edge.url, "127.0.0.22") as via_edge,
        client(edge.url, "127.0.0.23") as other,
    ):
        # Straight to the node from an untrusted peer: X-Forwarded-For is ignored, so
        # a new spoofed address per request gains nothing.
        for i, expected in enumerate((201, 201, 429)):
            r = direct.post(
                "/v1/accounts",
                json={"handle": f"direct_{i}", "password": PASSWORD},
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            )
            assert r.status_code == expected, r.text
        # Through the trusted edge: the address the edge saw, whatever the client
        # wrote on the left.
        for i, expected in enumerate((201, 201, 429)):
            r = via_edge.post(
                "/v1/accounts",
                json={"handle": f"edge_{i}", "password": PASSWORD},
                headers={"X-Forwarded-For": f"198.51.100.{i}"},
            )
            assert r.status_code == expected, r.text
        limited(r, "signup_address_limited")
        ok(other.post("/v1/accounts", json={"handle": "other", "password": PASSWORD}), 201)


def test_weak_passwords_are_refused_saying_why(tmp_path: Path) -> None:
    with pnyx_serve(tmp_path / "n") as node, node.client() as c:
        for password, reason in (
            ("password", "password too common: This is a top-10 common password."),
            ("12345678", "password too common: This is a top-10 common password."),
            ("aaaaaaaa", 'password too guessable: Repeats like "aaa" are easy to guess.'),
        ):
            err = error_of(
                c.post("/v1/accounts", json={"handle": "weak", "password": password}), 422
            )
            assert err["code"] == "weak_password"
            assert err["message"].startswith(reason), err
            assert "Add another word or two" in err["message"]
        ok(c.post("/v1/accounts", json={"handle": "weak", "password": PASSWORD}), 201)


def test_a_missing_handle_costs_what_a_wrong_password_costs(tmp_path: Path) -> None:
    with pnyx_serve(tmp_path / "n") as node, node.client() as c:
        ok(sign_up(c, "victim"), 201)
        sign_in(c, "victim", "warm up the hasher")
        missing: list[float] = []
        wrong: list[float] = []
        for i in range(15):  # interleaved, so load on the machine hits both alike
            for handle, into in ((f"ghost_{i}", missing), ("victim", wrong)):
                t0 = time.perf_counter()
                r = sign_in(c, handle, f"guess number {i}")
                into.append(time.perf_counter() - t0)
                assert r.status_code == 401, r.text
        m, w = statistics.median(missing), statistics.median(wrong)
        print(f"sign-in median: missing handle {m * 1000:.1f} ms, wrong password {w * 1000:.1f} ms")
        assert abs(m - w) <= 0.2 * w, (missing, wrong)


def authed(c: httpx.Client, token: str) -> httpx.Response:
    return c.get("/v1/notifications", headers={"Authorization": f"Bearer {token}"})


def test_sign_out_and_sign_out_everywhere_on_every_node(
    two_nodes: tuple[PnyxProcess, PnyxProcess],
) -> None:
    a, b = two_nodes
    with (
        client(a.url, "127.0.0.31") as ca,
        client(b.url, "127.0.0.32") as cb,
    ):
        ok(sign_up(ca, "alice"), 201)
        ok(sign_up(cb, "bob"), 201)
        phone = ok(sign_in(ca, "alice"))["token"]
        laptop = ok(sign_in(cb, "alice"))["token"]
        bob = ok(sign_in(cb, "bob"))["token"]
        ok(authed(cb, phone))

        # Sign out the phone on node a: refused there at once, on b within session_check_s.
        assert (
            ca.post("/v1/auth/signout", headers={"Authorization": f"Bearer {phone}"}).status_code
            == 204
        )
        assert error_of(authed(ca, phone), 401)["code"] == "signed_out"
        wait_until(lambda: authed(cb, phone).status_code == 401, 5.0, "node b refuses the phone")
        assert error_of(authed(cb, phone), 401)["code"] == "signed_out"
        for c in (ca, cb):
            ok(authed(c, laptop))
            ok(authed(c, bob))

        # A stage socket open on node b with the laptop's token ...
        space = create_space(ca, User("alice", laptop))
        listener = ok(
            ca.post(f"/v1/spaces/{space}/join", headers={"Authorization": f"Bearer {laptop}"})
        )
        with connect(f"{b.ws_url}/v1/spaces/{space}/stage", open_timeout=10) as ws:
            ws.send(json.dumps({"type": "auth", "token": laptop}))
            assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
            # ... is closed (4001) when alice signs out everywhere, on node a.
            r = ca.post("/v1/auth/signout-all", headers={"Authorization": f"Bearer {laptop}"})
            assert r.status_code == 204, r.text
            t0 = time.monotonic()
            assert _close_code(ws) == 4001
            print(f"stage socket closed {time.monotonic() - t0:.2f} s after sign-out everywhere")
        for c in (ca, cb):
            wait_until(lambda c=c: authed(c, laptop).status_code == 401, 5.0, "laptop refused")
            ok(authed(c, bob))
            # The listener token joined with her account ends too.
            hb = c.post(
                f"/v1/spaces/{space}/heartbeat",
                headers={"Authorization": f"Bearer {listener['token']}"},
            )
            assert error_of(hb, 401)["code"] == "signed_out"
        # Signing in again gives a token every node takes.
        fresh = ok(sign_in(cb, "alice"))["token"]
        for c in (ca, cb):
            ok(authed(c, fresh))


def _drain(ws: ClientConnection) -> None:
    while True:
        ws.recv(timeout=10)


def _close_code(ws: ClientConnection) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        _drain(ws)
    assert closed.value.rcvd is not None, "closed without a close frame"
    return closed.value.rcvd.code
