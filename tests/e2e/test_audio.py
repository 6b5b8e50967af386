"""Live audio end to end on one ``pnyx serve`` process: real WebRTC speakers (aiortc)
publishing tones, a player-like LL-HLS listener, ffmpeg on the playlists, the replay and
the recording, and what must not disturb any of it.

Each speaker publishes its own pure tone; who is heard is read off the spectrum
(tests/support/tones.py, calibrated in test_audio_harness.py).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support import tones
from tests.support.api import User, create_space, error_of, ok, on_stage, state, wait_state
from tests.support.api import new_user as user
from tests.support.hls import HlsListener, decode_fmp4, fetch_vod
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import Seen, eventually
from tests.support.procs import require_binary
from tests.support.webrtc import PublishRefused, Speaker, ToneTrack, gather, publish

pytestmark = pytest.mark.e2e

RATE = 48_000
HOST_HZ, COHOST_HZ, SPEAKER_HZ = 523.0, 797.0, 1229.0  # no low-order products collide
FREQS = (HOST_HZ, COHOST_HZ, SPEAKER_HZ)
WINDOW_S = 1.0  # how much audio a "does it contain…" question looks at
SETTLE = 2048  # samples skipped after a fresh AAC decoder start
LOOK_S = 0.2  # between two looks at the audio while waiting (decoding it is not free)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    with pnyx_serve(Path(tmp_path_factory.mktemp("audio"))) as n:
        yield n


# -- helpers shared with test_audio_nodes.py -----------------------------------------------


def seat(c: httpx.Client, space: str, host: User, member: User, role: str) -> None:
    """Invite ``member`` to the stage as ``role`` and have them accept."""
    ok(
        c.put(
            f"/v1/spaces/{space}/members/{member.handle}/role",
            json={"role": role},
            headers=host.auth,
        )
    )
    ok(c.post(f"/v1/spaces/{space}/invitation", json={"accept": True}, headers=member.auth))


def stage_of_three(c: httpx.Client, **space: Any) -> tuple[str, User, User, User]:
    """A live space with a host, a co-host and a speaker on stage."""
    host, cohost, speaker = user(c, "host"), user(c, "co"), user(c, "spk")
    sid = create_space(c, host, **space)
    seat(c, sid, host, cohost, "cohost")
    seat(c, sid, host, speaker, "speaker")
    assert set(on_stage(state(c, sid))) == {host.handle, cohost.handle, speaker.handle}
    return sid, host, cohost, speaker


def heard_by_listener(
    listener: HlsListener, since: float, seconds: float = WINDOW_S
) -> tuple[set[float] | None, str]:
    """The tones in the last ``seconds`` of audio from parts that arrived after ``since``
    (None if there is not that much yet)."""
    if listener.failed is not None:
        raise AssertionError(f"the listener failed: {listener.failed!r}")
    if not any(p.arrived >= since for p in listener.parts):
        return None, "no part yet"
    samples = listener.decode(since=since).samples[SETTLE:]
    if len(samples) < seconds * RATE:
        return None, f"only {len(samples) / RATE:.2f}s of audio"
    window = samples[-int(seconds * RATE) :]
    return tones.dominant_tones(window, RATE, FREQS), tones.describe(window, FREQS)


def heard_by_speaker(
    speaker: Speaker, since: float, seconds: float = WINDOW_S
) -> tuple[set[float] | None, str]:
    samples = speaker.received.samples(since=since)
    if len(samples) < seconds * RATE:
        return None, f"only {len(samples) / RATE:.2f}s of mix-minus"
    window = samples[-int(seconds * RATE) :]
    return tones.dominant_tones(window, RATE, FREQS), tones.describe(window, FREQS)


def hears(
    get: Callable[[], tuple[set[float] | None, str]], expected: set[float]
) -> Callable[[], Seen]:
    def check() -> Seen:
        found, detail = get()
        return Seen(found == expected, f"found {found} ({detail})")

    return check


async def run(*args: str, within: float = 60.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"{args[0]} did not finish within {within}s: {args}") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def plays_cleanly(url: str, *, seconds: float = 3.0) -> None:
    """ffprobe and ffmpeg read ``url`` with nothing to say (``-v error``) and exit 0."""
    ffprobe, ffmpeg = require_binary("ffprobe"), require_binary("ffmpeg")
    code, _, err = await run(ffprobe, "-v", "error", url)
    assert (code, err) == (0, ""), f"ffprobe {url}: exit {code}\n{err}"
    code, _, err = await run(
        ffmpeg, "-nostdin", "-v", "error", "-i", url, "-t", str(seconds), "-f", "null", "-"
    )
    assert (code, err) == (0, ""), f"ffmpeg {url}: exit {code}\n{err}"


def in_thread(fn: Callable[[], Any]) -> Awaitable[Any]:
    """Blocking HTTP calls (tests/support/api.py) off the loop the speakers run on."""
    return asyncio.to_thread(fn)


class Background:
    """A listener following the live playlist in a task, stopped and checked on exit."""

    def __init__(self, listener: HlsListener) -> None:
        self.listener = listener
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> HlsListener:
        await self.listener.start()
        self.task = asyncio.ensure_future(self.listener.follow())
        return self.listener

    async def __aexit__(self, *exc: object) -> None:
        self.listener.stop()
        assert self.task is not None
        await asyncio.gather(self.task, return_exceptions=exc[0] is not None)
        await self.listener.aclose()


async def close_all(*speakers: Speaker) -> None:
    for s in speakers:
        await s.close()


async def wrap_up(c: httpx.Client, space: str, host: User, *speakers: Speaker) -> None:
    """Close the speakers and end the space (so its mixer stops for the next tests)."""
    await close_all(*speakers)
    r = await in_thread(lambda: c.post(f"/v1/spaces/{space}/end", headers=host.auth))
    assert r.status_code in (200, 409), r.text  # 409: it was over already


# -- the tests ---------------------------------------------------------------------------


async def test_listeners_hear_the_stage_and_mutes_are_enforced(
    node: PnyxProcess, c: httpx.Client
) -> None:
    space, host, cohost, speaker = stage_of_three(c)
    # Every speaker's level is "speaking" only while they are heard.
    me_host, me_co, me_spk = await gather(
        publish(node.url, space, host.token, ToneTrack(HOST_HZ)),
        publish(node.url, space, cohost.token, ToneTrack(COHOST_HZ)),
        publish(node.url, space, speaker.token, ToneTrack(SPEAKER_HZ)),
    )
    try:
        for s in (me_host, me_co, me_spk):
            await s.connected()
            assert s.resource and s.resource.startswith(f"{node.url}/v1/spaces/{space}/publish/")
        started = time.time()
        async with Background(HlsListener(node.url, space)) as listener:
            await eventually(
                hears(lambda: heard_by_listener(listener, started), set(FREQS)),
                within=10,
                what="the listener hears host, co-host and speaker",
                interval=LOOK_S,
            )
            # Each speaker hears the two others, never themself.
            for me, own in ((me_host, HOST_HZ), (me_co, COHOST_HZ), (me_spk, SPEAKER_HZ)):
                await eventually(
                    hears(lambda me=me: heard_by_speaker(me, started), set(FREQS) - {own}),
                    within=5,
                    what=f"the mix-minus of the {own:g} Hz speaker",
                    interval=LOOK_S,
                )
            s = await in_thread(
                lambda: wait_state(
                    c, space, lambda s: all(m["speaking"] for m in s["stage"]), timeout=5
                )
            )
            assert len(s["stage"]) == 3

            # The host mutes the speaker: the server stops mixing them, for everyone.
            await in_thread(
                lambda: ok(
                    c.post(f"/v1/spaces/{space}/members/{speaker.handle}/mute", headers=host.auth)
                )
            )
            muted = time.time()
            await eventually(
                hears(lambda: heard_by_listener(listener, muted), {HOST_HZ, COHOST_HZ}),
                within=6,
                what="the listener stops hearing the muted speaker",
                interval=LOOK_S,
            )
            settled = time.time()
            for me, others in ((me_host, {COHOST_HZ}), (me_co, {HOST_HZ})):
                await eventually(
                    hears(lambda me=me: heard_by_speaker(me, muted), others),
                    within=5,
                    what="the stage stops hearing the muted speaker",
                    interval=LOOK_S,
                )
            # The muted speaker still hears the stage.
            await eventually(
                hears(lambda: heard_by_speaker(me_spk, muted), {HOST_HZ, COHOST_HZ}),
                within=5,
                what="the muted speaker still hears the others",
                interval=LOOK_S,
            )

            # …and it stays so: the next second of audio still lacks them.
            def a_second_more() -> Seen:
                found, detail = heard_by_listener(listener, settled)
                return Seen(found is not None, detail)

            await eventually(a_second_more, 5, "another second of audio", interval=LOOK_S)
            found, detail = heard_by_listener(listener, settled)
            assert found == {HOST_HZ, COHOST_HZ}, detail
            s = await in_thread(
                lambda: wait_state(
                    c, space, lambda s: not on_stage(s)[speaker.handle]["speaking"], timeout=5
                )
            )
            assert on_stage(s)[speaker.handle]["muted"] is True
            assert on_stage(s)[host.handle]["speaking"] is True
            gap, problems = listener.continuity()
            assert problems == [] and listener.skipped == []
            assert gap < 1.0, f"parts stopped arriving for {gap:.2f}s"
    finally:
        await wrap_up(c, space, host, me_host, me_co, me_spk)
    assert [s.delete_status for s in (me_host, me_co, me_spk)] == [204, 204, 204]


async def test_live_replay_and_recording_play_in_ffmpeg(node: PnyxProcess, c: httpx.Client) -> None:
    host, guest = user(c, "rec"), user(c, "guest")
    created = time.time()
    space = create_space(c, host, record=True)
    seat(c, space, host, guest, "speaker")
    me_host, me_guest = await gather(
        publish(node.url, space, host.token, ToneTrack(HOST_HZ)),
        publish(node.url, space, guest.token, ToneTrack(COHOST_HZ)),
    )
    try:
        await me_host.connected()
        await me_guest.connected()
        started = time.time()
        async with Background(HlsListener(node.url, space)) as listener:
            await eventually(
                hears(lambda: heard_by_listener(listener, started), {HOST_HZ, COHOST_HZ}),
                within=10,
                what="the listener hears both",
                interval=LOOK_S,
            )
            base = f"{node.url}/media/{space}"
            async with httpx.AsyncClient(timeout=20) as http:
                assert (await http.get(f"{base}/replay.m3u8")).status_code == 409  # still live
            # ffmpeg's HLS reader (no LL-HLS) starts from whole segments: wait for two.
            await eventually(
                lambda: Seen(
                    len(listener.playlists[-1].segments) >= 2,
                    f"{len(listener.playlists[-1].segments)} segments",
                ),
                within=10,
                what="two complete segments",
                interval=LOOK_S,
            )
            await plays_cleanly(f"{base}/live.m3u8")
            await plays_cleanly(f"{base}/plain.m3u8")
            live_seconds = time.time() - started
    finally:
        await close_all(me_host, me_guest)
    await in_thread(lambda: ok(c.post(f"/v1/spaces/{space}/end", headers=host.auth)))
    lifetime = time.time() - created

    base = f"{node.url}/media/{space}"
    async with httpx.AsyncClient(timeout=30) as http:
        # Wait for the replay to exist and stop changing (that it never changes once
        # served is test_a_served_replay_is_final's business, not this test's).
        await settled(http, f"{base}/replay.m3u8")
        playlist, replay = await fetch_vod(http, f"{base}/replay.m3u8")
        assert playlist.vod and playlist.ended and playlist.segments
        # All of it (nothing lost), and no more (nothing repeated).
        assert live_seconds - 1.0 <= replay.seconds <= lifetime + 0.5, (
            replay.seconds,
            live_seconds,
            lifetime,
        )
        assert both_heard(replay.samples), "the replay lacks a speaker"
        r = await http.get(f"{node.url}/v1/spaces/{space}/recording.m4a")
        assert r.status_code == 200 and r.headers["content-type"].startswith("audio/mp4")
        recording = decode_fmp4(r.content)
        assert abs(recording.seconds - replay.seconds) < 0.5, (
            recording.seconds,
            replay.seconds,
        )
        assert both_heard(recording.samples), "the recording lacks a speaker"
    await plays_cleanly(f"{base}/replay.m3u8", seconds=60)
    await plays_cleanly(f"{node.url}/v1/spaces/{space}/recording.m4a", seconds=60)
    # A space that was not recorded has no replay.
    plain = await in_thread(lambda: create_space(c, host))
    await in_thread(lambda: ok(c.post(f"/v1/spaces/{plain}/end", headers=host.auth)))
    await in_thread(lambda: error_of(c.get(f"/media/{plain}/replay.m3u8"), 404))


async def settled(http: httpx.AsyncClient, url: str, quiet: float = 1.0) -> str:
    """The body at ``url`` once it answers 200 and stays the same for ``quiet`` seconds."""
    deadline = time.monotonic() + 15
    last, since = None, time.monotonic()
    while True:
        r = await http.get(url)
        body = r.text if r.status_code == 200 else None
        if body != last:
            last, since = body, time.monotonic()
        elif body is not None and time.monotonic() - since >= quiet:
            return body
        assert time.monotonic() < deadline, (r.status_code, r.text[:300])
        await asyncio.sleep(0.1)


async def test_a_served_replay_is_final(tmp_path: Path) -> None:
    """Once the replay (or the recording) answers 200 it must not change: both are served
    with long-lived public cache headers (a day; a year and immutable), so an edge that
    caught an early, shorter answer would keep serving it. The node ticks every 1.5 s
    (as slow as a busy node might), so that the moments right after the end are wide."""
    slow = {"state_tick_s": "1.5", "lease_ttl_s": "5"}
    with pnyx_serve(tmp_path / "slow", settings=slow) as node, node.client() as c:
        await _replay_stays_final(node, c)


async def _replay_stays_final(node: PnyxProcess, c: httpx.Client) -> None:
    host = user(c, "final")
    space = create_space(c, host, record=True)
    me = await publish(node.url, space, host.token, ToneTrack(HOST_HZ))
    try:
        await me.connected()
        async with HlsListener(node.url, space) as listener:  # until 1½ segments exist
            await listener.start()
            deadline = time.monotonic() + 15
            while listener.parts[-1].decode_time < 1.5 * 1.92 * RATE:
                assert time.monotonic() < deadline, "the stream does not advance"
                await listener.step()
    finally:
        await me.close()
    await in_thread(lambda: ok(c.post(f"/v1/spaces/{space}/end", headers=host.auth)))
    replay_url = f"{node.url}/media/{space}/replay.m3u8"
    recording_url = f"{node.url}/v1/spaces/{space}/recording.m4a"
    async with httpx.AsyncClient(timeout=30) as http:
        deadline = time.monotonic() + 10
        while (first := await http.get(replay_url)).status_code != 200:
            assert time.monotonic() < deadline, (first.status_code, first.text)
            await asyncio.sleep(0.02)
        first_recording = await http.get(recording_url)
        assert "max-age" in first.headers["cache-control"]
        # Watch both for a few seconds: neither may change.
        watch_until = time.monotonic() + 3
        while time.monotonic() < watch_until:
            replay = await http.get(replay_url)
            recording = await http.get(recording_url)
            assert replay.text == first.text, (
                f"the replay changed after it was served with "
                f"'{first.headers['cache-control']}':\n{first.text}\n---\n{replay.text}"
            )
            if first_recording.status_code == 200:
                assert recording.content == first_recording.content, (
                    f"recording.m4a grew from {len(first_recording.content)} to "
                    f"{len(recording.content)} bytes after it was served with "
                    f"'{first_recording.headers['cache-control']}'"
                )
            await asyncio.sleep(0.1)


def both_heard(samples: np.ndarray) -> bool:
    """Some second of ``samples`` holds the host's and the guest's tones together."""
    for start in range(0, len(samples) - RATE, RATE // 2):
        window = samples[start : start + RATE]
        if {HOST_HZ, COHOST_HZ} <= tones.dominant_tones(window, RATE, FREQS):
            return True
    return False


# -- what must not disturb the others ----------------------------------------------------


def stall_connections(url: str, paths: list[str], count: int = 4) -> list[socket.socket]:
    """Connections that send requests (pipelined) and never read a byte of the answers."""
    host, port = httpx.URL(url).host, httpx.URL(url).port
    assert port is not None
    socks = []
    for _ in range(count):
        s = socket.create_connection((host, port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        request = "".join(f"GET {p} HTTP/1.1\r\nHost: {host}\r\n\r\n" for p in paths)
        s.sendall(request.encode())
        socks.append(s)
    return socks


async def test_a_stalled_listener_does_not_disturb_another(
    node: PnyxProcess, c: httpx.Client
) -> None:
    host = user(c, "stall")
    space = create_space(c, host)
    me = await publish(node.url, space, host.token, ToneTrack(HOST_HZ))
    stalled: list[socket.socket] = []
    try:
        await me.connected()
        async with (
            Background(HlsListener(node.url, space)) as steady,
            HlsListener(node.url, space) as sleepy,
        ):
            await sleepy.start()
            await sleepy.follow(seconds=1.0)
            await eventually(
                lambda: Seen(len(steady.parts) >= 4, f"{len(steady.parts)} parts"),
                10,
                "4 parts",
                interval=LOOK_S,
            )
            # Stall: one player stops fetching for 10 s, and a few connections ask for
            # playlists, segments and a held blocking reload without ever reading.
            media = f"/media/{space}"
            edge = steady.parts[-1]
            paths = [f"{media}/init.mp4", f"{media}/live.m3u8"] * 20
            paths += [f"{media}/seg/{edge.msn - 1}.m4s"] * 20 if edge.msn > 0 else []
            paths += [f"{media}/live.m3u8?_HLS_msn={edge.msn + 1}&_HLS_part=0"]
            stalled = await in_thread(lambda: stall_connections(node.url, paths))
            stall_started = time.time()
            await asyncio.sleep(10.0)
            gap, problems = steady.continuity(since=stall_started)
            count = sum(p.arrived >= stall_started for p in steady.parts)
            # 10 s is 31 parts of 0.32 s; each must come in order, on time, no hole.
            assert problems == [] and steady.skipped == []
            assert count >= 28, f"only {count} parts in 10 s"
            assert gap < 1.0, f"parts stopped arriving for {gap:.2f}s during the stall"
            found, detail = heard_by_listener(steady, stall_started, seconds=8.0)
            assert found == {HOST_HZ}, detail
            # The sleepy player wakes up and gets the live edge again.
            await sleepy.follow(seconds=1.0)
            assert sleepy.parts[-1].arrived > stall_started + 10
    finally:
        for s in stalled:
            s.close()
        await wrap_up(c, space, host, me)


async def test_a_dropped_speaker_does_not_disturb_the_others(
    node: PnyxProcess, c: httpx.Client
) -> None:
    space, host, cohost, speaker = stage_of_three(c)
    speakers = await gather(
        publish(node.url, space, host.token, ToneTrack(HOST_HZ)),
        publish(node.url, space, cohost.token, ToneTrack(COHOST_HZ)),
        publish(node.url, space, speaker.token, ToneTrack(SPEAKER_HZ)),
    )
    me_host, me_co, me_spk = speakers
    try:
        for s in speakers:
            await s.connected()
        started = time.time()
        async with Background(HlsListener(node.url, space)) as listener:
            await eventually(
                hears(lambda: heard_by_listener(listener, started), set(FREQS)),
                within=10,
                what="everyone heard before the drop",
                interval=LOOK_S,
            )
            await me_spk.drop()  # no DELETE, no BYE: the cable is pulled
            dropped = time.time()
            await eventually(
                hears(lambda: heard_by_listener(listener, dropped), {HOST_HZ, COHOST_HZ}),
                within=6,
                what="the listener hears the two who are left",
                interval=LOOK_S,
            )
            await eventually(
                hears(lambda: heard_by_speaker(me_host, dropped), {COHOST_HZ}),
                within=5,
                what="the host still hears the co-host",
                interval=LOOK_S,
            )
            await eventually(
                hears(lambda: heard_by_speaker(me_co, dropped), {HOST_HZ}),
                within=5,
                what="the co-host still hears the host",
                interval=LOOK_S,
            )
            await asyncio.sleep(2.0)
            gap, problems = listener.continuity()
            assert problems == [] and listener.skipped == []
            assert gap < 1.0, f"parts stopped arriving for {gap:.2f}s"
            assert me_host.received.gaps(since=dropped) < 0.5
            assert me_co.received.gaps(since=dropped) < 0.5
    finally:
        await wrap_up(c, space, host, *speakers)


async def test_bad_offers_are_refused_while_the_stage_carries_on(
    node: PnyxProcess, c: httpx.Client
) -> None:
    space, host, cohost, _ = stage_of_three(c)
    fan = user(c, "fan")
    me_host, me_co = await gather(
        publish(node.url, space, host.token, ToneTrack(HOST_HZ)),
        publish(node.url, space, cohost.token, ToneTrack(COHOST_HZ)),
    )
    try:
        await me_host.connected()
        await me_co.connected()
        started = time.time()
        url = f"{node.url}/v1/spaces/{space}/publish"
        sdp = {**host.auth, "Content-Type": "application/sdp"}
        async with httpx.AsyncClient(timeout=20) as http:
            garbage = await http.post(url, content=b"v=0\r\nthis is not SDP\r\n", headers=sdp)
            assert garbage.status_code == 400, garbage.text
            assert garbage.json()["error"]["kind"]
            binary = await http.post(url, content=bytes(range(256)) * 8, headers=sdp)
            assert binary.status_code == 400, binary.text
            huge = "v=0\r\n" + "a=x-padding:" + "x" * 200_000 + "\r\n"
            too_big = await http.post(url, content=huge.encode(), headers=sdp)
            assert too_big.status_code == 413, too_big.text
            # Listeners do not publish, whatever they send.
            fan_headers = {**fan.auth, "Content-Type": "application/sdp"}
            offer = await _real_offer()
            refused = await http.post(url, content=offer, headers=fan_headers)
            assert refused.status_code == 403, refused.text
            anonymous = await http.post(
                url, content=offer, headers={"Content-Type": "application/sdp"}
            )
            assert anonymous.status_code == 401, anonymous.text
        with pytest.raises(PublishRefused) as not_on_stage:
            await publish(node.url, space, fan.token, ToneTrack(1511.0))
        assert not_on_stage.value.status == 403
        # The stage never noticed.
        await eventually(
            hears(lambda: heard_by_speaker(me_host, started), {COHOST_HZ}),
            5,
            "host hears co",
            interval=LOOK_S,
        )
        await eventually(
            hears(lambda: heard_by_speaker(me_co, started), {HOST_HZ}),
            5,
            "co hears host",
            interval=LOOK_S,
        )
        assert me_host.received.gaps(since=started + 0.5) < 0.5
        assert me_co.received.gaps(since=started + 0.5) < 0.5
        # Leaving cleanly (DELETE) takes the host's voice off the co-host's mix-minus.
        await me_host.close()
        assert me_host.delete_status == 204
        left = time.time()
        await eventually(
            hears(lambda: heard_by_speaker(me_co, left), set()),
            5,
            "the host has left",
            interval=LOOK_S,
        )
    finally:
        await close_all(me_host, me_co)
    # A space that is over takes no audio.
    await in_thread(lambda: ok(c.post(f"/v1/spaces/{space}/end", headers=host.auth)))
    with pytest.raises(PublishRefused) as over:
        await publish(node.url, space, host.token, ToneTrack(HOST_HZ))
    assert over.value.status == 409


async def _real_offer() -> str:
    """A genuine aiortc offer (for refusals that must not depend on the SDP being bad)."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    track = ToneTrack(440.0)
    try:
        pc.addTrack(track)
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        track.stop()
        await pc.close()
