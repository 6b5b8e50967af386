"""What a host sees of the audience, over HTTP against a real ``pnyx serve``: the
listener list (who may read it, paging, newest first), leaving and stage moves dropping
listeners from the count within seconds, and the analytics checked against what the test
did (listeners, reactions, a speaker's tone, a replay play and download reported)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import (
    Heartbeats,
    User,
    create_space,
    error_of,
    join,
    new_user,
    ok,
    state,
)
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import wait_until
from tests.support.webrtc import ToneTrack, publish

pytestmark = pytest.mark.e2e

WINDOW_S = 30.0  # presence window: far longer than "within seconds"
DROP_S = 4.0  # a listener marked gone leaves the count within this


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    settings = {
        "presence_window_s": str(WINDOW_S),
        "analytics_flush_s": "0.5",
        "analytics_sample_s": "1",
        "max_live_spaces_per_account": "5",
    }
    with pnyx_serve(Path(tmp_path_factory.mktemp("audience")), settings=settings) as n:
        yield n


def count(c: httpx.Client, space: str) -> int:
    return int(state(c, space)["listeners"])


def wait_count(c: httpx.Client, space: str, n: int, within: float) -> float:
    started = time.monotonic()
    wait_until(lambda: count(c, space) == n, within, f"{n} listeners counted")
    return time.monotonic() - started


def listed(c: httpx.Client, space: str, who: User, **params: Any) -> dict[str, Any]:
    return dict(ok(c.get(f"/v1/spaces/{space}/listeners", params=params, headers=who.auth)))


def all_listed(c: httpx.Client, space: str, who: User, page: int) -> list[str]:
    handles: list[str] = []
    before: float | None = None
    for _ in range(50):
        params: dict[str, Any] = {"limit": page}
        if before is not None:
            params["before"] = before
        body = listed(c, space, who, **params)
        assert len(body["listeners"]) <= page
        handles += [item["handle"] for item in body["listeners"]]
        before = body["next_before"]
        if before is None:
            return handles
    raise AssertionError("paging never ended")


def seat(c: httpx.Client, space: str, host: User, member: User, role: str) -> None:
    path = f"/v1/spaces/{space}/members/{member.handle}/role"
    ok(c.put(path, json={"role": role}, headers=host.auth))
    ok(c.post(f"/v1/spaces/{space}/invitation", json={"accept": True}, headers=member.auth))


def test_the_host_lists_the_audience_and_leaving_drops_the_count(
    node: PnyxProcess, c: httpx.Client
) -> None:
    host, stranger = new_user(c, "host"), new_user(c, "stranger")
    space = create_space(c, host, title="who is here")
    fans = [new_user(c, "fan") for _ in range(5)]
    tickets = {fan.handle: join(c, space, fan) for fan in fans}  # in this order
    anonymous = [join(c, space) for _ in range(2)]
    everyone = [*tickets.values(), *anonymous]
    with Heartbeats(node.url, space, everyone, every_s=0.5):
        wait_count(c, space, 7, 15)

        # Who may read it: host and co-hosts only.
        assert error_of(c.get(f"/v1/spaces/{space}/listeners"), 401)
        denied = error_of(c.get(f"/v1/spaces/{space}/listeners", headers=stranger.auth), 403)
        assert denied["code"] == "moderators_only"
        assert error_of(c.get(f"/v1/spaces/{space}/listeners", headers=fans[0].auth), 403)
        assert error_of(c.get("/v1/spaces/nope/listeners", headers=host.auth), 404)
        assert error_of(
            c.get(f"/v1/spaces/{space}/listeners", params={"limit": 0}, headers=host.auth), 422
        )

        # Newest first, paged; anonymous listeners are counted, not listed.
        newest_first = [fan.handle for fan in reversed(fans)]
        assert all_listed(c, space, host, page=2) == newest_first
        first = listed(c, space, host, limit=5)
        assert [i["handle"] for i in first["listeners"]] == newest_first
        assert first["next_before"] is not None  # a full page: maybe more
        assert all(i["joined_at"].endswith(("Z", "+00:00")) for i in first["listeners"])

        # Leaving: out of the count within seconds (the window is 30 s), and the list.
        gone = fans[0]
        ok(c.post(f"/v1/spaces/{space}/leave", headers=tickets[gone.handle].auth), 204)
        assert wait_count(c, space, 6, DROP_S) < DROP_S
        assert gone.handle not in all_listed(c, space, host, page=10)
        ok(c.post(f"/v1/spaces/{space}/leave", headers=anonymous[0].auth), 204)
        wait_count(c, space, 5, DROP_S)

        # Removed: not counted, not listed (their heartbeats are refused).
        removed = fans[1]
        ok(c.post(f"/v1/spaces/{space}/members/{removed.handle}/remove", headers=host.auth))
        wait_count(c, space, 4, DROP_S)

        # On stage: not the audience. A co-host may read the list.
        cohost = fans[2]
        seat(c, space, host, cohost, "cohost")
        wait_count(c, space, 3, DROP_S)
        by_cohost = all_listed(c, space, cohost, page=100)
        assert by_cohost == [fans[4].handle, fans[3].handle]
        assert all_listed(c, space, host, page=1) == by_cohost

        # A listener who comes back counts again at once (a new listener id).
        again = join(c, space, gone)
        with Heartbeats(node.url, space, [again], every_s=0.5):
            wait_count(c, space, 4, DROP_S)
            assert all_listed(c, space, host, page=100)[0] == gone.handle


def analytics(c: httpx.Client, space: str, who: User) -> dict[str, Any]:
    return dict(ok(c.get(f"/v1/spaces/{space}/analytics", headers=who.auth)))


def test_analytics_tell_the_host_what_happened(node: PnyxProcess, c: httpx.Client) -> None:
    host, stranger = new_user(c, "host"), new_user(c, "stranger")
    speaker = new_user(c, "spk")
    space = create_space(c, host, title="figures", record=True)
    seat(c, space, host, speaker, "speaker")
    ears = [join(c, space, new_user(c, "ear")) for _ in range(2)] + [join(c, space)]
    started = time.monotonic()
    with Heartbeats(node.url, space, ears, every_s=0.5):
        wait_count(c, space, 3, 15)
        for ear, emoji in zip(ears, ["👏", "👏", "🔥"], strict=True):
            ok(
                c.post(f"/v1/spaces/{space}/reactions", json={"emoji": emoji}, headers=ear.auth),
                202,
            )
        spoke = asyncio.run(_speak(node.url, space, speaker, seconds=3.0))

        def live_figures() -> bool:
            a = analytics(c, space, host)
            return a["reactions"] == {"👏": 2, "🔥": 1} and a["peak_listeners"] == 3

        wait_until(live_figures, 15, "the live figures")
        denied = error_of(c.get(f"/v1/spaces/{space}/analytics", headers=stranger.auth), 403)
        assert denied["code"] == "host_only"
        assert error_of(c.get(f"/v1/spaces/{space}/analytics", headers=speaker.auth), 403)
        ok(c.post(f"/v1/spaces/{space}/leave", headers=ears[2].auth), 204)
        wait_count(c, space, 2, DROP_S)
    ok(c.post(f"/v1/spaces/{space}/end", headers=host.auth))
    lasted = time.monotonic() - started

    def final() -> dict[str, Any] | None:
        a = analytics(c, space, host)
        return a if a["status"] == "ended" else None

    wait_until(lambda: final() is not None, 15, "the space ended")
    a = analytics(c, space, host)
    assert a["peak_listeners"] == 3
    assert a["peak_at"] is not None
    assert a["unique_listeners"] == 3
    assert sum(m["joins"] for m in a["joins_per_minute"]) == 3
    assert a["reactions"] == {"👏": 2, "🔥": 1}
    # listener-seconds: at most three listeners the whole time, at least two for a while
    assert 2 * 2 <= a["listening_s"] <= 3 * lasted + 3
    assert max(p["listeners"] for p in a["timeline"]) == 3
    assert [p["at"] for p in a["timeline"]] == sorted(p["at"] for p in a["timeline"])
    (spk,) = a["speakers"]
    assert spk["handle"] == speaker.handle
    assert 0.5 * spoke <= spk["speaking_s"] <= spoke + 3, (spk, spoke)

    # Replay plays and downloads are counted as the replay page reports them (its
    # beacon), not as served: an edge answers most replay reads from its cache.
    def replay_ready() -> bool:
        return c.get(f"/media/{space}/replay.m3u8").status_code == 200

    wait_until(replay_ready, 30, "the replay")
    assert c.get(f"/v1/spaces/{space}/recording.m4a").status_code == 200
    assert analytics(c, space, host)["replay"] == {"plays": 0, "downloads": 0}
    ok(c.post(f"/v1/spaces/{space}/replay/play"), 202)
    ok(c.post(f"/v1/spaces/{space}/replay/download"), 202)
    assert analytics(c, space, host)["replay"] == {"plays": 1, "downloads": 1}
    # kept durable: the same figures again
    assert analytics(c, space, host)["peak_listeners"] == 3


async def _speak(base_url: str, space: str, who: User, seconds: float) -> float:
    """Publish a tone for about ``seconds``; how long it was heard by the node."""
    speaker = await publish(base_url, space, who.token, ToneTrack(440.0, 0.3))
    try:
        await speaker.connected()
        began = time.monotonic()
        await asyncio.sleep(seconds)  # the tone plays: that is what is measured
        return time.monotonic() - began
    finally:
        await speaker.close()
