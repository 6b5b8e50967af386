"""Real-time behaviour of the stage node's media: latency that comes back after
event-loop stalls (the speakers' playout buffers) and holds through packet loss, a mix
clock that keeps time in its own thread while the loop is blocked, and dropped peers
noticed within the idle timeout."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from aiortc.rtp import RtpPacket

from pnyx.media import metrics
from pnyx.media.ingest import JITTER_CAPACITY, JITTER_PREFETCH, GapSkippingJitterBuffer
from tests.integration.media.conftest import HOST, Stage
from tests.support import tones, webrtc
from tests.support.poll import eventually

TONE_HZ = 1000.0


def counter(family: Any, label: str) -> float:
    return float(family.labels(label)._value.get())


async def onset_latency(track: webrtc.ToneTrack, heard: webrtc.Recording) -> float:
    """Switch the tone on; how long until the listener hears it (then switch it off)."""
    await asyncio.sleep(0.6)  # clearly off before
    t_on = await track.switch(True)
    try:
        found = await eventually(
            lambda: heard.onset(TONE_HZ, after=t_on - 0.3), 5, "the onset", interval=0.02
        )
        return found - t_on
    finally:
        await track.switch(False)


def block_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # deliberately: a stall of everything on the loop, aiortc included


async def test_latency_comes_back_after_the_loop_stalls(stage: Stage) -> None:
    alice = await stage.member("alice")
    tone = webrtc.ToneTrack(TONE_HZ, on=False)
    a = await stage.connect_track(HOST, tone)
    b = await stage.connect_track(alice, webrtc.ToneTrack(700.0, on=False))
    await a.connected()
    await b.hearing(1.0, within=15)
    before = [await onset_latency(tone, b.received) for _ in range(3)]
    dropped = sum(counter(metrics.PLAYOUT_DROPPED, why) for why in ("stale", "shrink"))
    for _ in range(4):  # a burst of ~15 packets comes at once after each stall
        block_the_loop(0.3)
        await asyncio.sleep(0.4)
    # The bursts are jitter to the playout buffers: the delay grows while they are
    # remembered (2 s), then comes back down; a backlog never stays as latency (each stall
    # would otherwise add 300 ms, up to the queues' bounds).
    after: list[float] = []

    async def back_down() -> bool:
        after.append(await onset_latency(tone, b.received))
        return after[-1] <= max(before) + 0.06

    await eventually(back_down, 20, "the latency back down after the stalls")
    print(f"latency before stalls {before}, after {after}")
    assert max(after) <= 0.3 + max(before)  # even at the worst moment: held to the most
    assert sum(counter(metrics.PLAYOUT_DROPPED, why) for why in ("stale", "shrink")) > dropped
    sm = stage.media._running[stage.space]
    for session in sm.sessions.values():
        assert len(session.outbound) <= stage.settings.mix_minus_target_frames


async def test_the_mix_clock_keeps_time_while_the_loop_is_blocked(stage: Stage) -> None:
    await stage.connect(HOST, 500)
    stats = stage.media.tick_stats(stage.space)
    assert stats is not None
    await eventually(lambda: stats.ticks > 10, 10, "ticking")
    ticks, skipped = stats.ticks, stats.skipped
    block_the_loop(0.5)  # nothing on the loop runs for 25 ticks...
    during = stats.ticks - ticks
    assert during >= 20, during  # ...but the mix clock's thread went on
    assert stats.skipped == skipped
    late = sorted(list(stats.recent)[-during:])
    assert late[len(late) // 2] < 0.005, late[-5:]
    names = {t.name for t in threading.enumerate()}
    assert "mix-clock-node-test" in names


async def test_stopping_joins_the_mix_clock_thread(stage: Stage) -> None:
    await stage.connect(HOST, 500)
    assert any(t.name == "mix-clock-node-test" for t in threading.enumerate())
    await stage.media.close()
    assert not any(t.name == "mix-clock-node-test" for t in threading.enumerate())
    assert not any(t.name == f"encoder-{stage.space}" for t in threading.enumerate())


@pytest.mark.parametrize("stage_settings", [{"publish_idle_timeout_s": 1.5}])
async def test_a_dropped_speaker_is_ended_when_their_audio_stops(stage: Stage) -> None:
    alice, bob = await stage.member("alice"), await stage.member("bob")
    host = await stage.connect_track(HOST, webrtc.ToneTrack(500.0))
    await stage.connect_track(alice, webrtc.ToneTrack(800.0))
    b = await stage.connect_track(bob, webrtc.ToneTrack(1300.0))
    for s in stage.harness:
        await s.connected()
    await host.hearing(0.5, within=15)
    idle = counter(metrics.SESSIONS_ENDED, "idle")
    await b.drop()  # the cable is pulled: no DELETE, no BYE, no DTLS close
    dropped = time.monotonic()
    await eventually(lambda: bob not in stage.sessions(), 6, "bob's session ended")
    took = time.monotonic() - dropped
    assert 1.4 <= took <= 4.0, took  # the idle timeout, not ICE consent (~30 s)
    assert counter(metrics.SESSIONS_ENDED, "idle") == idle + 1
    since = time.time()
    await eventually(lambda: len(host.received.samples(since=since)) > 24_000, 10, "0.5 s more")
    heard = host.received.samples(since=since)
    assert tones.dominant_tones(heard, 48_000, [800.0, 1300.0]) == {800.0}
    assert set(stage.sessions()) == {HOST, alice}


@pytest.mark.parametrize("stage_settings", [{"publish_idle_timeout_s": 1.0}])
async def test_a_speaker_sending_silence_is_not_idle(stage: Stage) -> None:
    """A client that mutes itself sends silent frames (browsers and aiortc do): it stays."""
    alice = await stage.member("alice")
    quiet = await stage.connect_track(alice, webrtc.ToneTrack(800.0, on=False))
    await quiet.connected()
    await quiet.hearing(3.0, within=15)  # three idle timeouts
    assert set(stage.sessions()) == {alice}


def rtp(seq: int) -> RtpPacket:
    packet = RtpPacket(payload_type=111, sequence_number=seq % 65536, timestamp=seq * 960)
    packet._data = b"\xfc"  # what the jitter buffer joins into a frame
    return packet


@pytest.mark.parametrize("lost", [[], [20], [20, 21, 22], [20, 40, 41]])
def test_a_lost_packet_does_not_add_delay_for_the_rest_of_the_session(lost: list[int]) -> None:
    jb = GapSkippingJitterBuffer(capacity=JITTER_CAPACITY, prefetch=JITTER_PREFETCH)
    held = []  # how many sequence numbers behind the newest each released frame is
    for seq in range(65_530, 65_530 + 100):  # across the sequence number wrap
        if seq - 65_530 in lost:
            continue
        _, frame = jb.add(rtp(seq))
        if frame is not None:
            held.append(seq - frame.timestamp // 960)
    # Four frames held back, as aiortc does, the lost ones counting for nothing while they
    # are in the window; aiortc's own buffer holds 14 for good after the first loss.
    assert set(held[-40:]) == {JITTER_PREFETCH}
    assert max(held) <= JITTER_PREFETCH + len(lost)
    assert len(held) == 100 - len(lost) - JITTER_PREFETCH
    _, late = jb.add(rtp(65_530 + lost[0])) if lost else (False, None)
    assert late is None  # the lost one, arriving after it was given up: too old


async def test_publish_sessions_hand_every_packet_to_the_playout_buffer(stage: Stage) -> None:
    speaker, _ = await stage.connect(HOST, 500)
    session = stage.media._running[stage.space].sessions[HOST]
    (transceiver,) = session._pc.getTransceivers()
    buffer = transceiver.receiver._RTCRtpReceiver__jitter_buffer
    assert type(buffer).__name__ == "_Arrivals"  # nothing held on the loop
    await eventually(lambda: len(speaker.heard) > 10, 10, "audio flows through it")
    runner = stage.media._running[stage.space].runner
    source = runner._publishers[HOST].inbound
    lag = source.lag(time.monotonic())
    assert lag is not None and lag < 0.25  # played at its deadline, measured on arrival
