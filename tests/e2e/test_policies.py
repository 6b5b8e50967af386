"""Accounts, follows and blocks; who may ask to speak; invitations; scheduled spaces."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.api import (
    create_space,
    error_of,
    join,
    ok,
    on_stage,
    state,
    wait_state,
)
from tests.support.api import (
    new_user as user,
)
from tests.support.pnyx_server import PnyxProcess, pnyx_serve

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    with pnyx_serve(Path(tmp_path_factory.mktemp("policies"))) as n:
        yield n


def test_accounts_sessions_follows_and_blocks(c: httpx.Client) -> None:
    ann, bob = user(c, "ann"), user(c, "bob")
    r = c.post(
        "/v1/accounts",
        json={"handle": ann.handle.upper(), "password": "a different horse battery staple"},
    )
    assert error_of(r, 409)["code"] == "handle_taken"  # handles are case-insensitive
    r = c.post("/v1/sessions", json={"handle": ann.handle, "password": "wrong password"})
    assert error_of(r, 401)["code"] == "bad_credentials"
    r = c.post("/v1/sessions", json={"handle": "nobody_at_all", "password": "wrong password"})
    assert error_of(r, 401)["code"] == "bad_credentials"  # same answer: no handle probing

    assert ok(c.get(f"/v1/accounts/{bob.handle}"))["followers"] == 0
    ok(c.post(f"/v1/accounts/{bob.handle}/follow", headers=ann.auth), 204)
    ok(c.post(f"/v1/accounts/{bob.handle}/follow", headers=ann.auth), 204)  # idempotent
    assert ok(c.get(f"/v1/accounts/{bob.handle}"))["followers"] == 1
    ok(c.delete(f"/v1/accounts/{bob.handle}/follow", headers=ann.auth), 204)
    assert ok(c.get(f"/v1/accounts/{bob.handle}"))["followers"] == 0
    error_of(c.post(f"/v1/accounts/{ann.handle}/follow", headers=ann.auth), 422)

    # Blocked accounts cannot join the blocker's spaces; unblocked, they can again.
    space = create_space(c, bob)
    ok(c.post(f"/v1/accounts/{ann.handle}/block", headers=bob.auth), 204)
    assert error_of(c.post(f"/v1/spaces/{space}/join", headers=ann.auth), 403)["code"] == "blocked"
    assert error_of(c.post(f"/v1/spaces/{space}/hand", headers=ann.auth), 403)["code"] == "blocked"
    ok(c.delete(f"/v1/accounts/{ann.handle}/block", headers=bob.auth), 204)
    assert join(c, space, ann).token


def test_followed_only_speakers(c: httpx.Client) -> None:
    host, friend, stranger = user(c, "h"), user(c, "friend"), user(c, "stranger")
    ok(c.post(f"/v1/accounts/{friend.handle}/follow", headers=host.auth), 204)
    space = create_space(c, host, who_can_speak="followed")
    r = c.post(f"/v1/spaces/{space}/hand", headers=stranger.auth)
    assert error_of(r, 403)["code"] == "not_followed"
    ok(c.post(f"/v1/spaces/{space}/hand", headers=friend.auth))
    assert state(c, space, headers=host.auth)["hands"]["handles"] == [friend.handle]
    # The host opens the floor: now anyone may ask.
    ok(
        c.put(
            f"/v1/spaces/{space}/speak-policy",
            json={"who_can_speak": "everyone"},
            headers=host.auth,
        )
    )
    ok(c.post(f"/v1/spaces/{space}/hand", headers=stranger.auth))
    # Decline one hand; the other stays.
    ok(c.delete(f"/v1/spaces/{space}/hands/{stranger.handle}", headers=host.auth))
    assert state(c, space, headers=host.auth)["hands"]["handles"] == [friend.handle]


def test_invite_only_with_invitations(c: httpx.Client) -> None:
    host, guest, shy = user(c, "h"), user(c, "guest"), user(c, "shy")
    space = create_space(c, host, who_can_speak="nobody")
    assert error_of(c.post(f"/v1/spaces/{space}/hand", headers=guest.auth), 403)["code"] == (
        "invite_only"
    )
    for who in (guest, shy):
        ok(
            c.put(
                f"/v1/spaces/{space}/members/{who.handle}/role",
                json={"role": "speaker"},
                headers=host.auth,
            )
        )
    # The invitation is visible in the public state, so the invitee's page can offer it.
    s = state(c, space)
    assert {i["handle"] for i in s["invited"]} == {guest.handle, shy.handle}
    assert set(on_stage(s)) == {host.handle}
    ok(c.post(f"/v1/spaces/{space}/invitation", json={"accept": True}, headers=guest.auth))
    ok(c.post(f"/v1/spaces/{space}/invitation", json={"accept": False}, headers=shy.auth))
    s = state(c, space)
    assert on_stage(s)[guest.handle]["role"] == "speaker"
    assert shy.handle not in on_stage(s) and s["invited"] == []
    r = c.post(f"/v1/spaces/{space}/invitation", json={"accept": True}, headers=shy.auth)
    assert error_of(r, 409)["code"] == "no_invitation"
    # A speaker may leave the stage by themself.
    ok(
        c.put(
            f"/v1/spaces/{space}/members/{guest.handle}/role",
            json={"role": "listener"},
            headers=guest.auth,
        )
    )
    assert set(on_stage(state(c, space))) == {host.handle}


def test_stage_limits_hold(node: PnyxProcess, tmp_path: Path) -> None:
    with (
        pnyx_serve(tmp_path, settings={"max_speakers": "1", "max_cohosts": "1"}) as small,
        small.client() as c,
    ):
        host, a, b, x, y = (user(c, p) for p in ("h", "a", "b", "x", "y"))
        space = create_space(c, host)
        for who in (a, b):
            ok(c.post(f"/v1/spaces/{space}/hand", headers=who.auth))
        ok(
            c.put(
                f"/v1/spaces/{space}/members/{a.handle}/role",
                json={"role": "speaker"},
                headers=host.auth,
            )
        )
        r = c.put(
            f"/v1/spaces/{space}/members/{b.handle}/role",
            json={"role": "speaker"},
            headers=host.auth,
        )
        assert error_of(r, 409)["code"] == "stage_full"
        ok(
            c.put(
                f"/v1/spaces/{space}/members/{x.handle}/role",
                json={"role": "cohost"},
                headers=host.auth,
            )
        )
        ok(c.post(f"/v1/spaces/{space}/invitation", json={"accept": True}, headers=x.auth))
        r = c.put(
            f"/v1/spaces/{space}/members/{y.handle}/role",
            json={"role": "cohost"},
            headers=host.auth,
        )
        assert error_of(r, 409)["code"] == "cohosts_full"
        # Only the host manages co-hosts.
        r = c.put(
            f"/v1/spaces/{space}/members/{a.handle}/role", json={"role": "cohost"}, headers=x.auth
        )
        error_of(r, 403)
        roles = {h: m["role"] for h, m in on_stage(state(c, space)).items()}
        assert roles == {host.handle: "host", a.handle: "speaker", x.handle: "cohost"}


def test_scheduled_space_lifecycle(c: httpx.Client) -> None:
    host, fan = user(c, "h"), user(c, "fan")
    when = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    created = ok(
        c.post(
            "/v1/spaces",
            json={"title": "Later", "scheduled_start": when.isoformat(), "record": True},
            headers=host.auth,
        ),
        201,
    )
    space = created["id"]
    assert created["state"] == "scheduled" and created["record"] is True
    assert datetime.fromisoformat(created["scheduled_start"]) == when
    scheduled = ok(c.get("/v1/spaces", params={"state": "scheduled"}))["spaces"]
    assert space in {s["id"] for s in scheduled}
    assert error_of(c.post(f"/v1/spaces/{space}/join"), 409)["code"] == "not_live"
    assert (
        error_of(c.post(f"/v1/spaces/{space}/start", headers=fan.auth), 403)["code"] == "host_only"
    )
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    r = c.post(
        "/v1/spaces", json={"title": "Yesterday", "scheduled_start": past}, headers=host.auth
    )
    assert error_of(r, 422)["code"] == "bad_schedule"
    r = c.post(
        "/v1/spaces",
        json={"title": "Naive", "scheduled_start": "2030-01-01T10:00:00"},
        headers=host.auth,
    )
    error_of(r, 422)

    v = state(c, space)["version"]
    assert ok(c.post(f"/v1/spaces/{space}/start", headers=host.auth))["state"] == "live"
    assert state(c, space, after=v)["state"] == "live"
    assert join(c, space).token
    live = ok(c.get("/v1/spaces", params={"state": "live"}))["spaces"]
    assert space in {s["id"] for s in live}

    # Cancelling a space that never started.
    later = create_space(c, host, scheduled_start=when.isoformat())
    assert ok(c.post(f"/v1/spaces/{later}/end", headers=host.auth))["state"] == "cancelled"
    s = wait_state(c, later, lambda s: s["state"] == "cancelled")
    assert s["end_reason"] == "cancelled"
