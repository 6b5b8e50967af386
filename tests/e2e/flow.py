"""The life of one space, told over HTTP. ``act`` and ``watch`` may talk to different
Pnyx processes: whatever one does, the other must show."""

from __future__ import annotations

import httpx

from tests.support.api import (
    Heartbeats,
    Listener,
    User,
    create_space,
    error_of,
    join,
    ok,
    on_stage,
    register,
    state,
    wait_state,
)
from tests.support.poll import wait_until


def run_space_flow(act: httpx.Client, watch: httpx.Client) -> None:
    host = register(act, "hana")
    lee = register(watch, "lee")
    rex = register(act, "rex")
    space = create_space(act, host)

    info = ok(watch.get(f"/v1/spaces/{space}"))
    assert info["state"] == "live"
    assert info["host"] == "hana"
    assert "max-age" in watch.get(f"/v1/spaces/{space}").headers["cache-control"]

    s0 = state(watch, space)
    assert s0["state"] == "live"
    assert on_stage(s0) == {
        "hana": {
            "handle": "hana",
            "role": "host",
            "muted": False,
            "speaking": False,
            "display_name": "hana",
        }
    }

    # An anonymous and two signed-in listeners join; the count reaches 3 everywhere.
    anon = join(watch, space)
    lee_l = join(watch, space, lee)
    rex_l = join(act, space, rex)
    assert len({anon.listener_id, lee_l.listener_id, rex_l.listener_id}) == 3
    assert anon.heartbeat_s > 0 and anon.media["hls"].endswith("/live.m3u8")
    wait_state(watch, space, lambda s: s["listeners"] == 3)
    assert ok(act.post(f"/v1/spaces/{space}/heartbeat", headers=anon.auth))["heartbeat_s"] > 0
    with Heartbeats(str(act.base_url), space, [anon, lee_l, rex_l], every_s=0.3) as beats:
        _on_stage_and_off(act, watch, space, host, lee, rex, rex_l, anon, beats)


def _on_stage_and_off(
    act: httpx.Client,
    watch: httpx.Client,
    space: str,
    host: User,
    lee: User,
    rex: User,
    rex_l: Listener,
    anon: Listener,
    beats: Heartbeats,
) -> None:
    # Heard listeners stay counted (the presence window is 2 s in these tests).
    s = wait_state(watch, space, lambda s: s["listeners"] == 3)

    # Lee raises a hand: listeners see a count, the stage sees who.
    v = s["version"]
    ok(act.post(f"/v1/spaces/{space}/hand", headers=lee.auth))
    s = state(watch, space, after=v)
    assert s["version"] > v
    assert s["hands"] == {"count": 1, "handles": None}
    assert state(act, space, headers=host.auth)["hands"]["handles"] == ["lee"]

    # The host approves: Lee is on stage at once.
    ok(act.put(f"/v1/spaces/{space}/members/lee/role", json={"role": "speaker"}, headers=host.auth))
    s = wait_state(watch, space, lambda s: "lee" in on_stage(s), timeout=5)
    assert on_stage(s)["lee"]["role"] == "speaker"
    assert s["hands"]["count"] == 0

    # The host mutes Lee, and cannot unmute them: only Lee can.
    ok(act.post(f"/v1/spaces/{space}/members/lee/mute", headers=host.auth))
    s = wait_state(watch, space, lambda s: on_stage(s)["lee"]["muted"], timeout=5)
    muted_version = s["version"]
    err = error_of(act.post(f"/v1/spaces/{space}/members/lee/unmute", headers=host.auth), 403)
    assert err["code"] == "only_self_unmute"
    s = state(watch, space)
    assert on_stage(s)["lee"]["muted"] is True
    assert [m for m in s["stage"]] == [m for m in state(act, space)["stage"]]
    ok(watch.post(f"/v1/spaces/{space}/members/lee/unmute", headers=lee.auth))
    s = wait_state(watch, space, lambda s: not on_stage(s)["lee"]["muted"], timeout=5)
    assert s["version"] > muted_version

    # Moved back to the audience.
    ok(
        act.put(
            f"/v1/spaces/{space}/members/lee/role", json={"role": "listener"}, headers=host.auth
        )
    )
    s = wait_state(watch, space, lambda s: "lee" not in on_stage(s), timeout=5)
    assert set(on_stage(s)) == {"hana"}

    # Rex is removed and blocked: cannot rejoin, and their listener token stops working.
    ok(act.post(f"/v1/spaces/{space}/members/rex/remove", json={"block": True}, headers=host.auth))
    assert error_of(watch.post(f"/v1/spaces/{space}/join", headers=rex.auth), 403)["code"] in (
        "removed",
        "blocked",
    )
    error_of(watch.post(f"/v1/spaces/{space}/heartbeat", headers=rex_l.auth), 403)
    # Not counted once removed; their client's next heartbeat (every 0.3 s, on its own
    # thread, so maybe after the count fell) is refused, and it stops.
    s = wait_state(watch, space, lambda s: s["listeners"] == 2)
    wait_until(lambda: beats.refused, 5, "Rex's heartbeats refused")
    assert beats.refused == [rex_l.listener_id]
    # Blocked from the host's other spaces too.
    other = create_space(act, host, title="Another one")
    assert error_of(watch.post(f"/v1/spaces/{other}/join", headers=rex.auth), 403)["code"] == (
        "blocked"
    )
    ok(act.post(f"/v1/spaces/{other}/end", headers=host.auth))

    # Reactions from a listener show in the snapshot's per-emoji counts.
    ok(watch.post(f"/v1/spaces/{space}/reactions", json={"emoji": "🔥"}, headers=anon.auth), 202)
    wait_state(watch, space, lambda s: s["reactions"].get("🔥", 0) >= 1, timeout=5)

    # Only the host ends the space; everyone sees it ended; nobody can join any more.
    error_of(act.post(f"/v1/spaces/{space}/end", headers=rex.auth), 403)
    v = state(watch, space)["version"]
    ended = ok(act.post(f"/v1/spaces/{space}/end", headers=host.auth))
    assert ended["state"] == "ended"
    s = state(watch, space, after=v)
    assert s["state"] == "ended" and s["end_reason"] == "host_ended"
    assert error_of(watch.post(f"/v1/spaces/{space}/join"), 409)["code"] == "space_over"
    live = ok(watch.get("/v1/spaces", params={"state": "live"}))["spaces"]
    assert space not in {sp["id"] for sp in live}
