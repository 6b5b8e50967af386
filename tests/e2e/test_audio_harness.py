"""The audio test harness, checked on its own before it is trusted to judge the server:
tone detection calibrated through both codecs, the LL-HLS listener against a simulated
origin (the server's own pure packager and playlist renderer behind an httpx mock
transport), and the WebRTC speaker against an in-process aiortc peer answering a WHIP
exchange. No ``pnyx serve`` here: these run in seconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from pnyx.media.aac import AacEncoder
from pnyx.media.fmp4 import init_segment
from pnyx.media.hls import Packager, PackagerConfig, Part, PlaylistState
from pnyx.media.playlist import is_ready, render_ll_hls
from tests.support import tones
from tests.support.hls import HlsListener, decode_fmp4, fragment_times, parse_playlist
from tests.support.webrtc import PublishRefused, Speaker, ToneTrack, publish

pytestmark = pytest.mark.e2e

RATE = 48_000
FREQS = (523.0, 797.0, 1229.0)  # the test tones: far apart, no low-order products collide
OTHER = 1511.0  # never played


def mixture(freqs: tuple[float, ...], seconds: float, amplitude: float = 0.2) -> np.ndarray:
    n = int(seconds * RATE)
    return np.sum([tones.sine(f, n, amplitude) for f in freqs], axis=0).astype(np.float32)


def aac_roundtrip(pcm: np.ndarray, bit_rate: int = 64_000) -> np.ndarray:
    """Through the server's AAC encoder and fMP4 packager, back through PyAV."""
    encoder = AacEncoder(bit_rate=bit_rate)
    packager = Packager(program_date_time=datetime.now(UTC))
    init = init_segment(48_000, 1, encoder.audio_specific_config)
    data = []
    for start in range(0, len(pcm), 960):
        for au in encoder.encode(pcm[start : start + 960]):
            data += [o.data for o in packager.push(au) if isinstance(o, Part)]
    for au in encoder.flush():
        data += [o.data for o in packager.push(au) if isinstance(o, Part)]
    data += [o.data for o in packager.end() if isinstance(o, Part)]
    return decode_fmp4(init + b"".join(data)).samples


def opus_roundtrip(pcm: np.ndarray) -> np.ndarray:
    """Through libopus as aiortc configures it (48 kHz, VoIP, 96 kbit/s)."""
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format, enc.bit_rate = 48_000, "mono", "s16", 96_000
    enc.options = {"application": "voip"}
    dec = av.CodecContext.create("libopus", "r")
    dec.sample_rate, dec.layout, dec.format = 48_000, "mono", "s16"
    out = []
    for n, start in enumerate(range(0, len(pcm) - 959, 960)):
        frame = av.AudioFrame.from_ndarray(
            (pcm[start : start + 960] * 32767).astype(np.int16).reshape(1, -1),
            format="s16",
            layout="mono",
        )
        frame.sample_rate, frame.pts = 48_000, n * 960
        for packet in enc.encode(frame):
            for decoded in dec.decode(packet):
                out.append(decoded.to_ndarray().reshape(-1).astype(np.float32) / 32768)
    return np.concatenate(out)


# -- tone detection ----------------------------------------------------------------------


def test_tone_levels_are_calibrated_on_clean_signals() -> None:
    levels = tones.tone_levels(mixture(FREQS, 1.0), (*FREQS, OTHER))
    for f in FREQS:
        assert levels[f].dbfs == pytest.approx(20 * np.log10(0.2), abs=0.5)  # -14 dBFS
        assert levels[f].snr_db > 80
    assert not levels[OTHER].present()
    assert tones.dominant_tones(mixture(FREQS, 1.0), RATE, (*FREQS, OTHER)) == set(FREQS)
    # Silence: nothing present, and no division by zero.
    assert tones.dominant_tones(np.zeros(RATE), RATE, FREQS) == set()
    # A faint tone (−66 dBFS) is below the absolute threshold even though it is clean.
    assert tones.dominant_tones(0.0005 * mixture((523.0,), 1.0, 1.0), RATE, FREQS) == set()


def test_tones_survive_both_codecs_and_absent_ones_stay_absent() -> None:
    rng = np.random.default_rng(7)
    two = mixture((523.0, 1229.0), 2.0) + rng.normal(0, 0.001, 2 * RATE).astype(np.float32)
    for codec in (aac_roundtrip, opus_roundtrip):
        out = codec(two)[RATE // 2 : RATE // 2 + RATE]  # skip the codecs' start-up
        levels = tones.tone_levels(out, (*FREQS, OTHER))
        assert tones.dominant_tones(out, RATE, (*FREQS, OTHER)) == {523.0, 1229.0}, levels
        # Margins on both sides of the 30 dB threshold.
        assert min(levels[f].snr_db for f in (523.0, 1229.0)) > 50, (codec, levels)
        assert max(levels[f].snr_db for f in (797.0, OTHER)) < 15, (codec, levels)


def test_aac_at_64k_keeps_three_tones_apart() -> None:
    out = aac_roundtrip(mixture(FREQS, 2.0))[RATE // 2 : RATE // 2 + RATE]
    assert tones.dominant_tones(out, RATE, (*FREQS, OTHER)) == set(FREQS), tones.describe(
        out, (*FREQS, OTHER)
    )


@pytest.mark.parametrize("at", [12_345, 30_000])
def test_onset_is_found_to_the_millisecond(at: int) -> None:
    x = np.zeros(RATE, dtype=np.float32)
    x[at:] = tones.sine(797.0, RATE - at, 0.2, start=at)
    x += mixture((523.0,), 1.0, 0.2)  # a loud neighbour that is always on
    x += np.random.default_rng(1).normal(0, 0.003, RATE).astype(np.float32)
    found = tones.onset(x, 797.0)
    assert found is not None and abs(found - at) < RATE // 1000, found
    assert tones.onset(x, 1229.0) is None
    assert tones.onset(x, 797.0, start=at + 2000) is None  # already on: no new onset
    # A 5 ms click is not an onset.
    click = np.zeros(RATE, dtype=np.float32)
    click[1000:1240] = tones.sine(797.0, 240, 0.5)
    assert tones.onset(click, 797.0) is None


# -- playlists and fragments -------------------------------------------------------------

GOLDEN = Path(__file__).parents[1] / "unit" / "media" / "golden"


def test_parse_live_and_vod_playlists() -> None:
    live = parse_playlist((GOLDEN / "live_ll.m3u8").read_text())
    assert live.media_sequence == 1 and live.next_msn == 5
    assert live.part_target == 0.32 and live.part_hold_back == 0.96 and live.can_block_reload
    assert live.init_uri == "init.mp4" and live.preload_hint == "part/5.2.m4s"
    assert [(p.msn, p.index) for p in live.open_parts] == [(5, 0), (5, 1)]
    assert live.parts[0].uri == "part/2.0.m4s" and live.parts[0].msn == 2
    assert [s.discontinuity for s in live.segments] == [False, False, True, False]
    assert not live.ended
    vod = parse_playlist((GOLDEN / "replay_vod.m3u8").read_text())
    assert vod.vod and vod.ended and [s.msn for s in vod.segments] == [0, 1, 2, 3, 4]
    assert vod.segments[-1].duration == 0.704
    with pytest.raises(ValueError, match="not a playlist"):
        parse_playlist("<html>")


def test_fragment_times_match_the_packager() -> None:
    packager = Packager(program_date_time=datetime.now(UTC))
    parts = [o for n in range(40) for o in packager.push(bytes(7 + n % 5)) if isinstance(o, Part)]
    assert [fragment_times(p.data) for p in parts] == [(0, 15360), (15360, 15360)]


# -- the LL-HLS listener against a simulated origin --------------------------------------


class SimulatedOrigin:
    """An LL-HLS origin in-process: a tone program encoded and packaged by the server's
    pure modules, one part every ``every`` seconds, served with blocking reload."""

    def __init__(self, freqs: tuple[float, ...], every: float = 0.05) -> None:
        self.freqs = freqs
        self.every = every
        self.encoder = AacEncoder()
        self.config = PackagerConfig()
        self.packager = Packager(self.config, program_date_time=datetime.now(UTC))
        self.init = init_segment(48_000, 1, self.encoder.audio_specific_config)
        self.blobs: dict[str, bytes] = {}
        self.state: PlaylistState | None = None
        self.changed = asyncio.Condition()
        self.published: dict[str, float] = {}  # part uri → when it became available
        self.frames = 0
        self.requests: list[str] = []

    async def run(self) -> None:
        while True:
            outputs = []
            while not any(isinstance(o, Part) for o in outputs):
                n = self.frames
                pcm = sum(tones.sine(f, 960, 0.2, start=n * 960) for f in self.freqs)
                self.frames += 1
                for au in self.encoder.encode(np.asarray(pcm, dtype=np.float32)):
                    outputs += self.packager.push(au)
            async with self.changed:
                for o in outputs:
                    self.blobs[o.ref.uri] = o.data
                    if isinstance(o, Part):
                        self.published[o.ref.uri] = time.time()
                self.state = self.packager.state
                self.changed.notify_all()
            await asyncio.sleep(self.every)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(str(request.url))
        name = request.url.path.removeprefix("/media/s/")
        if name == "live.m3u8":
            msn = request.url.params.get("_HLS_msn")
            part = request.url.params.get("_HLS_part")
            async with self.changed:
                if msn is not None:
                    await asyncio.wait_for(
                        self.changed.wait_for(
                            lambda: (
                                self.state is not None
                                and is_ready(
                                    self.state, int(msn), None if part is None else int(part)
                                )
                            )
                        ),
                        5,
                    )
                if self.state is None:
                    return httpx.Response(404)
                return httpx.Response(200, text=render_ll_hls(self.state))
        if name == "init.mp4":
            return httpx.Response(200, content=self.init)
        if name in self.blobs:
            return httpx.Response(200, content=self.blobs[name])
        return httpx.Response(404)


@pytest.fixture
async def origin() -> AsyncIterator[SimulatedOrigin]:
    sim = SimulatedOrigin((523.0, 1229.0))
    task = asyncio.ensure_future(sim.run())
    yield sim
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_listener_follows_parts_in_order_and_decodes_them(origin: SimulatedOrigin) -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(origin.handle))
    async with HlsListener("http://origin", "s", client=client) as listener:
        await listener.start()
        await listener.follow(seconds=1.5)  # ~30 parts at the simulated pace
        await client.aclose()
    assert len(listener.parts) >= 15
    gap, problems = listener.continuity()
    assert problems == [] and listener.skipped == []
    assert gap < 0.5
    assert all(p.arrived >= origin.published[p.uri] for p in listener.parts)
    # Blocking reloads were used, and answered promptly after each part appeared.
    assert any("_HLS_msn" in u and "_HLS_part" in u for u in origin.requests)
    lags = [p.arrived - origin.published[p.uri] for p in listener.parts[1:]]
    assert np.median(lags) < 0.05, lags
    decoded = listener.decode()
    assert decoded.start == listener.parts[0].decode_time
    heard = decoded.samples[RATE // 10 :]
    assert tones.dominant_tones(heard, RATE, FREQS) == {523.0, 1229.0}
    # Each sample maps back to the part it came in.
    probe = listener.parts[3].decode_time + 100
    assert listener.arrival_of(probe) == pytest.approx(listener.parts[3].arrived + 100 / RATE)


async def test_listener_that_falls_behind_skips_to_the_edge_and_says_so(
    origin: SimulatedOrigin,
) -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(origin.handle))
    async with HlsListener("http://origin", "s", client=client) as listener:
        await listener.start()
        await listener.follow(seconds=0.3)
        await asyncio.sleep(3.0)  # ~60 parts at 50 ms: the early ones are no longer listed
        await listener.follow(seconds=0.3)
        await client.aclose()
    assert listener.skipped
    _, problems = listener.continuity()
    assert problems  # the hole is visible, not silently papered over


# -- the WebRTC speaker against an in-process WHIP peer ----------------------------------


class FakeStage:
    """Answers WHIP offers with an aiortc peer that sends ``tone`` back and records how
    much audio it received from each publisher."""

    def __init__(self) -> None:
        self.tone = ToneTrack(797.0, on=False)
        self.pcs: list[RTCPeerConnection] = []
        self.frames_in = 0
        self.last_in = 0.0
        self.deleted: list[str] = []
        self.bodies: list[bytes] = []
        self._readers: list[asyncio.Task[None]] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            self.deleted.append(request.url.path)
            return httpx.Response(204)
        assert request.headers["content-type"] == "application/sdp"
        self.bodies.append(request.content)
        if request.url.host == "api-node":
            return httpx.Response(
                307, headers={"location": "http://stage-node/v1/spaces/s/publish"}
            )
        if request.headers["authorization"] != "Bearer good":
            return httpx.Response(403, json={"error": {"kind": "forbidden"}})
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)

        @pc.on("track")
        def _on_track(track: object) -> None:
            self._readers.append(asyncio.ensure_future(self._read(track)))

        await pc.setRemoteDescription(RTCSessionDescription(request.content.decode(), "offer"))
        pc.addTrack(self.tone)
        await pc.setLocalDescription(await pc.createAnswer())
        return httpx.Response(
            201, text=pc.localDescription.sdp, headers={"location": "/v1/spaces/s/publish/x1"}
        )

    async def _read(self, track: object) -> None:
        from aiortc.mediastreams import MediaStreamError

        try:
            while True:
                await track.recv()  # type: ignore[attr-defined]
                self.frames_in += 1
                self.last_in = time.time()
        except MediaStreamError:
            pass

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()
        self.tone.stop()
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


@pytest.fixture
async def fake_stage() -> AsyncIterator[tuple[FakeStage, httpx.AsyncClient]]:
    stage = FakeStage()
    client = httpx.AsyncClient(transport=httpx.MockTransport(stage.handle))
    yield stage, client
    await client.aclose()
    await stage.close()


async def test_speaker_publishes_follows_307_and_hears_the_answer(
    fake_stage: tuple[FakeStage, httpx.AsyncClient],
) -> None:
    stage, client = fake_stage
    me: Speaker = await publish("http://api-node", "s", "good", ToneTrack(523.0), client=client)
    try:
        assert me.redirects == ["http://api-node/v1/spaces/s/publish"]
        assert me.resource == "http://stage-node/v1/spaces/s/publish/x1"
        assert b"a=sendrecv" in stage.bodies[-1] and b"a=candidate" in stage.bodies[-1]
        await me.connected()
        # Latency through aiortc on loopback, measured the way the benches do it.
        await me.hearing(0.3)
        switched = await stage.tone.switch(True)
        deadline = time.monotonic() + 5
        heard = None
        while heard is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            heard = me.received.onset(797.0, after=switched - 0.2)
        assert heard is not None
        assert 0.0 < heard - switched < 0.4
        await asyncio.sleep(0.5)
        assert 797.0 in tones.dominant_tones(me.received.samples()[-RATE // 2 :], RATE, FREQS)
        assert stage.frames_in > 20  # the server heard us
        assert me.received.gaps(since=switched) < 0.2
    finally:
        await me.close()
    assert me.delete_status == 204 and stage.deleted == ["/v1/spaces/s/publish/x1"]
    assert me.pc.connectionState == "closed"


async def test_speaker_drop_goes_silent_without_a_delete(
    fake_stage: tuple[FakeStage, httpx.AsyncClient],
) -> None:
    stage, client = fake_stage
    me = await publish("http://stage-node", "s", "good", ToneTrack(523.0), client=client)
    try:
        await me.connected()
        await me.hearing(0.3)
        await me.drop()
        dropped = time.time()
        await asyncio.sleep(1.0)
        assert stage.last_in < dropped + 0.1  # nothing reached the server after the drop
    finally:
        await me.close()
    assert stage.deleted == [] and me.delete_status is None


async def test_refused_publish_raises_with_the_status_and_closes(
    fake_stage: tuple[FakeStage, httpx.AsyncClient],
) -> None:
    _, client = fake_stage
    with pytest.raises(PublishRefused) as refused:
        await publish("http://stage-node", "s", "bad", ToneTrack(523.0), client=client)
    assert refused.value.status == 403


def test_tone_track_is_paced_and_switches_on_frame_boundaries() -> None:
    async def run() -> tuple[list[float], list[float], float]:
        track = ToneTrack(440.0, on=False)
        returned = []
        for _ in range(10):
            await track.recv()
            returned.append(time.time())
        switch = track.switch(True)
        frames = [await track.recv() for _ in range(5)]
        at = await switch
        track.stop()
        samples = [f.to_ndarray().reshape(-1) for f in frames]
        return returned, [float(np.abs(s).max()) for s in samples], at - returned[-1]

    returned, peaks, offset = asyncio.run(run())
    steps = np.diff(returned)
    assert np.median(steps) == pytest.approx(0.02, abs=0.003)
    assert peaks[0] > 0.19 * 32767  # the first frame after switch() is on
    # Its capture began 20 ms before it was handed over, i.e. when the previous one was.
    assert offset == pytest.approx(0.0, abs=0.01)
