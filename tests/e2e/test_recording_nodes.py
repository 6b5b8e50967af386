"""A recording independent of any node (issue #11). Two ``pnyx serve`` nodes share a real
Redis and a real PostgreSQL behind an nginx edge; a recorded space's segments go to the
durable store, so every node serves the same replay, and a dead stage node costs the
recording only the takeover gap.

* The stage node is SIGKILLed mid-space while a speaker publishes a tone; the survivor
  takes over, the speaker publishes again there, the host ends the space. Then the
  download is byte-identical through the edge (repeatedly), from the survivor and from
  a node started afterwards; it decodes to the whole space minus at most the gap, with
  the tone before and after the kill; the replay playlist is the same everywhere and
  has a discontinuity where the gap is.
* Without any failure, both nodes and the edge answer 200 with the same bytes.
"""

from __future__ import annotations

import io
import time
from contextlib import ExitStack
from pathlib import Path

import av
import httpx
import numpy as np
import numpy.typing as npt
import pytest

from tests.e2e.test_takeover import LEASES, lease, node_id
from tests.support.api import create_space, new_user, ok
from tests.support.nginx import nginx_edge
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import eventually, wait_until
from tests.support.tones import tone_energy
from tests.support.webrtc import ToneTrack, publish

pytestmark = pytest.mark.e2e

TONE_HZ = 660.0
RATE = 48_000


def decode(data: bytes) -> npt.NDArray[np.float32]:
    out = []
    with av.open(io.BytesIO(data), mode="r", format="mp4") as container:
        for frame in container.decode(audio=0):
            out.append(frame.to_ndarray().astype(np.float32).reshape(-1))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def tone_at(samples: npt.NDArray[np.float32], at_s: float, span_s: float = 1.0) -> bool:
    window = samples[int(at_s * RATE) : int((at_s + span_s) * RATE)]
    level = tone_energy(window, TONE_HZ)
    return level.snr_db > 20 and level.dbfs > -30


def media_running(node: PnyxProcess, space: str) -> bool:
    r = httpx.get(f"{node.url}/media/{space}/live.m3u8", timeout=5)
    return r.status_code == 200 and "#EXT-X-PART:" in r.text


def next_msn(node: PnyxProcess, space: str) -> int:
    r = httpx.get(f"{node.url}/media/{space}/live.m3u8", timeout=5)
    if r.status_code != 200:
        return -1
    parts = [ln for ln in r.text.splitlines() if ln.startswith("#EXT-X-PART:")]
    uri = parts[-1].split('URI="', 1)[1].split('"', 1)[0] if parts else "part/-1.0.m4s"
    return int(uri.removeprefix("part/").split(".", 1)[0])


def fetch(url: str) -> httpx.Response:
    return httpx.get(url, timeout=20)


def final(url: str, path: str, within: float = 30) -> httpx.Response:
    """GET until 200 (the recording is finished); 503 ``not_ready`` meanwhile."""

    def get() -> httpx.Response | None:
        r = httpx.get(f"{url}{path}", timeout=20)
        if r.status_code == 200:
            return r
        assert r.status_code == 503, (r.status_code, r.text)
        assert r.headers["retry-after"] == "1"
        return None

    got: httpx.Response = wait_until(get, within, f"{path} to be final", interval=0.25)
    return got


async def test_a_killed_stage_node_costs_the_recording_only_the_gap(
    tmp_path: Path, redis_clean_url: str, pg_database_url: str
) -> None:
    shared = {"database": pg_database_url, "redis": redis_clean_url, "settings": LEASES}
    with ExitStack() as stack:
        nodes = [stack.enter_context(pnyx_serve(tmp_path / n, **shared)) for n in ("a", "b")]
        edge = stack.enter_context(nginx_edge([n.url.removeprefix("http://") for n in nodes]))
        with nodes[0].client() as c:
            host = new_user(c, "host")
            space = create_space(c, host, record=True)
        wait_until(lambda: media_running(nodes[1], space), 20, "media")
        started = time.time()  # about when the recording's first segment began
        held = lease(redis_clean_url, space)
        assert held is not None
        (holder,) = [n for n in nodes if node_id(n) == held[0]]
        (survivor,) = [n for n in nodes if n is not holder]

        speaker = await publish(holder.url, space, host.token, ToneTrack(TONE_HZ))
        await speaker.connected()
        spoke = time.time()
        await eventually(lambda: time.time() - spoke > 8, 10, "8 s of tone", interval=0.2)
        before = next_msn(survivor, space)
        holder.proc.kill()
        killed = time.time()
        holder.proc.wait(timeout=10)
        await speaker.close()
        await eventually(lambda: next_msn(survivor, space) > before + 1, 10, "the survivor's media")
        resumed = time.time()
        gap = resumed - killed
        assert gap < 6.0, f"takeover took {gap:.1f}s"
        speaker = await publish(survivor.url, space, host.token, ToneTrack(TONE_HZ))
        try:
            await speaker.connected()
            again = time.time()
            await eventually(lambda: time.time() - again > 8, 10, "8 s more", interval=0.2)
            with survivor.client() as c:
                ok(c.post(f"/v1/spaces/{space}/end", headers=host.auth))
            ended = time.time()
        finally:
            await speaker.close()

        download = f"/v1/spaces/{space}/recording.m4a"
        first = final(edge.url, download)
        # A year for browsers; edges ask again after replay_edge_ttl_s (a host may delete it).
        cache = "public, max-age=31536000, s-maxage=600, immutable"
        assert first.headers["cache-control"] == cache
        for _ in range(3):
            assert fetch(f"{edge.url}{download}").content == first.content
        assert final(survivor.url, download).content == first.content
        replay = final(edge.url, f"/media/{space}/replay.m3u8").text
        assert final(survivor.url, f"/media/{space}/replay.m3u8").text == replay
        assert "#EXT-X-DISCONTINUITY" in replay
        # The dead node comes back (a new process, its own data dir): the same bytes.
        with pnyx_serve(tmp_path / "a2", **shared) as back:
            assert final(back.url, download).content == first.content
            assert final(back.url, f"/media/{space}/replay.m3u8").text == replay

        samples = decode(first.content)
        duration = len(samples) / RATE
        space_s = ended - started
        print(
            f"recording {duration:.2f}s of a {space_s:.2f}s space; takeover gap {gap:.2f}s; "
            f"{len(first.content)} bytes"
        )
        assert duration >= space_s - gap - 2.0, (duration, space_s, gap)
        assert duration <= space_s + 2.0
        # The tone before the kill (the second before it) and after (near the end).
        assert tone_at(samples, killed - started - 2.5), "no tone before the kill"
        assert tone_at(samples, duration - 4.0), "no tone after the takeover"


def test_two_nodes_serve_the_same_recording(
    tmp_path: Path, redis_clean_url: str, pg_database_url: str
) -> None:
    shared = {"database": pg_database_url, "redis": redis_clean_url}
    with ExitStack() as stack:
        nodes = [stack.enter_context(pnyx_serve(tmp_path / n, **shared)) for n in ("a", "b")]
        edge = stack.enter_context(nginx_edge([n.url.removeprefix("http://") for n in nodes]))
        with nodes[0].client() as c:
            host = new_user(c, "host")
            space = create_space(c, host, record=True)
            wait_until(lambda: next_msn(nodes[1], space) >= 2, 20, "two segments")
            r = c.get(f"/v1/spaces/{space}/recording.m4a")
            assert r.status_code == 409 and r.json()["error"]["code"] == "still_live"
            ok(c.post(f"/v1/spaces/{space}/end", headers=host.auth))
        path = f"/v1/spaces/{space}/recording.m4a"
        first = final(edge.url, path)
        answers = [httpx.get(f"{edge.url}{path}", timeout=20) for _ in range(4)]
        assert [a.status_code for a in answers] == [200] * 4
        assert all(a.content == first.content for a in answers)
        for node in nodes:
            r = httpx.get(f"{node.url}{path}", timeout=20)
            assert r.status_code == 200 and r.content == first.content
            playlist = httpx.get(f"{node.url}/media/{space}/replay.m3u8", timeout=20)
            assert playlist.status_code == 200 and "#EXT-X-ENDLIST" in playlist.text
        assert len(decode(first.content)) / RATE >= 3.5
