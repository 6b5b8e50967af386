"""A speaker's Opus packets, decoded in the clock's thread as 20 ms frames at their
deadlines: played in timestamp order, holes filled (FEC from the next packet, or
concealment), an empty queue concealed for a while and then silent, a backlog whose
deadlines passed dropped, other packet durations re-cut, corrupt packets concealed."""

from __future__ import annotations

import av
import numpy as np
import pytest

from pnyx.media import metrics
from pnyx.media.frames import FrameQueue
from pnyx.media.inbound import MAX_CONCEAL_FRAMES, MAX_DELAY_S, EncodedFrame, SpeakerInput
from pnyx.media.mixer import FRAME_SAMPLES
from pnyx.media.opus import OpusDecoder, OpusEncoder

from .signals import dominant_frequency, tone

FRAME_S = FRAME_SAMPLES / 48_000
T0 = 1000.0  # the monotonic clock's value when the first packet arrives


def packets(
    n: int, *, first_ts: int = 90_000, freq: float = 440, at: float = T0
) -> list[EncodedFrame]:
    """``n`` consecutive 20 ms Opus packets of a tone, RTP timestamps from ``first_ts``,
    each arriving on time (20 ms apart from ``at``)."""
    encoder = OpusEncoder()
    out = []
    for i in range(n):
        pcm = tone(freq, FRAME_SAMPLES, 0.4, start=i * FRAME_SAMPLES)
        (packet,) = encoder.encode(pcm, i * FRAME_SAMPLES)
        ts = (first_ts + i * FRAME_SAMPLES) % (1 << 32)
        out.append(EncodedFrame(bytes(packet), ts, at + i * FRAME_S))
    return out


def arriving(frame: EncodedFrame, at: float) -> EncodedFrame:
    return EncodedFrame(frame.data, frame.timestamp, at)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def concealed(how: str) -> float:
    return float(metrics.FRAMES_CONCEALED.labels(how)._value.get())


class Ticks:
    """A speaker's input read by a 20 ms tick, 5 ms after each packet's nominal arrival."""

    def __init__(self, frames: list[EncodedFrame] = ()) -> None:  # type: ignore[assignment]
        self.queue: FrameQueue[EncodedFrame] = FrameQueue(256, 256)
        self.source = SpeakerInput(self.queue)
        self.now = T0 + 0.005
        self.put(*frames)

    def put(self, *frames: EncodedFrame) -> None:
        for f in frames:
            self.queue.put(f)

    def take(self) -> np.ndarray | None:
        out = self.source.take(self.now)
        self.now += FRAME_S
        return out

    def takes(self, n: int) -> list[np.ndarray | None]:
        return [self.take() for _ in range(n)]


def decoded(frames: list[EncodedFrame]) -> list[np.ndarray]:
    decoder = OpusDecoder()
    return [decoder.decode(f.data) for f in frames]


def test_packets_come_out_as_the_speakers_frames_then_concealment_then_silence() -> None:
    frames = packets(25)
    ticks = Ticks(frames)
    out = ticks.takes(25)
    assert all(f is not None and f.shape == (FRAME_SAMPLES,) for f in out)
    assert all(np.array_equal(a, b) for a, b in zip(out, decoded(frames), strict=True))
    pcm = np.concatenate([f for f in out if f is not None])
    assert dominant_frequency(pcm[len(pcm) // 2 :]) == pytest.approx(440, abs=30)
    assert rms(pcm[len(pcm) // 2 :]) == pytest.approx(0.4 / np.sqrt(2), rel=0.25)
    plc = concealed("plc")
    tail = ticks.takes(MAX_CONCEAL_FRAMES)
    assert all(f is not None for f in tail) and concealed("plc") == plc + MAX_CONCEAL_FRAMES
    assert ticks.take() is None  # the speaker stopped: silence from now on
    assert ticks.take() is None


def test_a_frame_waits_for_its_deadline() -> None:
    frames = packets(3)
    ticks = Ticks()
    ticks.now = T0 - 0.015  # a tick before the first packet arrived
    assert ticks.take() is None
    ticks.put(*frames)
    assert [f is not None for f in ticks.takes(3)] == [True, True, True]


def test_one_lost_packet_is_rebuilt_from_the_next_packets_fec() -> None:
    frames = packets(12)
    del frames[6]
    ticks = Ticks(frames)
    fec = concealed("fec")
    out = ticks.takes(12)
    assert concealed("fec") == fec + 1
    assert all(f is not None for f in out)  # twelve slots, twelve frames: no gap, no skip
    assert rms(out[6]) > 0.05  # the hole is filled with sound, not silence
    assert ticks.take() is not None  # concealment: the queue is empty now


def test_a_longer_hole_is_concealed_frame_by_frame() -> None:
    frames = packets(12)
    del frames[5:8]
    ticks = Ticks(frames)
    plc, fec = concealed("plc"), concealed("fec")
    out = ticks.takes(12)
    assert all(f is not None for f in out)
    # the first two by concealment, the last from the next packet's FEC
    assert (concealed("plc"), concealed("fec")) == (plc + 2, fec + 1)


def test_packets_out_of_order_are_played_in_order() -> None:
    frames = packets(8)
    swapped = [*frames[:3], frames[4], frames[3], *frames[5:]]  # 4 overtook 3 on the way
    ticks = Ticks()
    ticks.source.delay = ticks.source.min_delay = 0.03  # a delay that covers the swap
    ticks.put(*swapped)
    ticks.now += 0.03
    plc, fec = concealed("plc"), concealed("fec")
    out = ticks.takes(8)
    assert all(np.array_equal(a, b) for a, b in zip(out, decoded(frames), strict=True))
    assert (concealed("plc"), concealed("fec")) == (plc, fec)


def test_a_packet_after_its_deadline_is_concealed_then_dropped() -> None:
    frames = packets(6)
    ticks = Ticks(frames[:3])
    assert all(f is not None for f in ticks.takes(3))
    plc = concealed("plc")
    assert ticks.take() is not None  # frame 3 is not there at its deadline: concealed
    assert concealed("plc") == plc + 1
    ticks.put(arriving(frames[3], ticks.now), *frames[4:])  # it comes late
    out = ticks.takes(2)
    assert ticks.source.late == 1  # dropped: the speaker is not put a frame later
    reference = OpusDecoder()
    for f in frames[:3]:
        reference.decode(f.data)
    reference.conceal()
    expected = [reference.decode(f.data) for f in frames[4:6]]
    assert all(np.array_equal(a, b) for a, b in zip(out, expected, strict=True))


def test_a_backlog_is_dropped_to_the_most_held_and_the_delay_comes_back_down() -> None:
    frames = packets(400)
    ticks = Ticks(frames[:10])
    assert all(f is not None for f in ticks.takes(10))
    ticks.takes(15)  # the loop stalls: nothing comes for 300 ms (concealment, then silence)
    stall_end = ticks.now - 0.004
    ticks.put(*(arriving(f, stall_end) for f in frames[10:26]))  # then all of it at once
    assert ticks.take() is not None
    lag = ticks.source.lag(ticks.now - FRAME_S)
    assert lag is not None and lag <= MAX_DELAY_S + FRAME_S  # the rest was dropped
    assert ticks.source.skipped >= 4
    for f in frames[26:]:  # then on time again, for 7.5 s
        ticks.put(f)
        assert ticks.take() is not None
    lag = ticks.source.lag(ticks.now - FRAME_S)
    assert lag is not None and lag <= FRAME_S  # back to the first tick after arrival
    assert ticks.source.delay == 0.0


def test_a_jump_beyond_concealment_is_a_new_start_not_a_hole() -> None:
    first = packets(3)
    later = packets(3, first_ts=90_000 + 50 * FRAME_SAMPLES, at=T0 + 50 * FRAME_S)  # DTX
    ticks = Ticks(first)
    plc, fec = concealed("plc"), concealed("fec")
    out = ticks.takes(50)
    ticks.put(*later)
    out += ticks.takes(3)
    played = [f is not None for f in out]
    assert played[:3] == [True] * 3 and played[50:53] == [True] * 3
    assert (concealed("fec"), concealed("plc")) == (fec, plc + MAX_CONCEAL_FRAMES)
    assert not any(played[3 + MAX_CONCEAL_FRAMES : 50])  # silence, not 47 frames of PLC


@pytest.mark.parametrize("jump", [-30 * 48_000, 7 * 48_000, 1 << 31])
def test_a_sender_whose_timestamps_jump_starts_a_new_timeline(jump: int) -> None:
    frames = packets(40)
    ticks = Ticks(frames[:20])
    assert all(f is not None for f in ticks.takes(20))
    restarted = [  # the same audio, on time, on a timeline shifted by ``jump``
        EncodedFrame(f.data, (f.timestamp + jump) % (1 << 32), f.arrival) for f in frames[20:]
    ]
    ticks.put(*restarted)
    out = ticks.takes(20)
    assert sum(f is not None for f in out) >= 19  # played on, not dropped as late
    lag = ticks.source.lag(ticks.now - FRAME_S)
    assert lag is not None and lag <= FRAME_S  # and not held back
    assert ticks.source.late == 0


def test_timestamps_wrap() -> None:
    frames = packets(8, first_ts=(1 << 32) - 3 * FRAME_SAMPLES)
    ticks = Ticks(frames)
    plc, fec = concealed("plc"), concealed("fec")
    out = ticks.takes(8)
    assert all(np.array_equal(a, b) for a, b in zip(out, decoded(frames), strict=True))
    assert (concealed("plc"), concealed("fec")) == (plc, fec)


def test_10_ms_packets_are_recut_into_20_ms_frames() -> None:
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate, ctx.layout, ctx.format, ctx.bit_rate = 48_000, "mono", "flt", 64_000
    ctx.options = {"frame_duration": "10"}
    ctx.open()
    pcm = tone(440, 48 * 400, 0.4)  # 400 ms
    encoded = []
    for i in range(0, len(pcm), 480):
        frame = av.AudioFrame.from_ndarray(pcm[i : i + 480].reshape(1, -1), "flt", "mono")
        frame.sample_rate, frame.pts = 48_000, i
        encoded += [bytes(p) for p in ctx.encode(frame)]
    assert len(encoded) >= 36
    ticks = Ticks([EncodedFrame(d, 1000 + i * 480, T0 + i * 0.01) for i, d in enumerate(encoded)])
    out = ticks.takes(len(encoded) // 2)
    assert all(f is not None and f.shape == (FRAME_SAMPLES,) for f in out)
    joined = np.concatenate([f for f in out if f is not None])
    assert dominant_frequency(joined[len(joined) // 2 :]) == pytest.approx(440, abs=30)


def test_a_corrupt_packet_is_concealed_counted_and_the_next_one_plays() -> None:
    frames = packets(6)
    bad = EncodedFrame(b"\xff\xff\xff", frames[3].timestamp, frames[3].arrival)
    ticks = Ticks([*frames[:3], bad, *frames[4:]])
    errors = metrics.DECODE_ERRORS._value.get()
    out = ticks.takes(6)
    assert all(f is not None for f in out)
    assert metrics.DECODE_ERRORS._value.get() == errors + 1
    assert rms(out[5]) > 0.1


def test_the_decoder_conceals_and_refuses_garbage_with_a_clear_error() -> None:
    decoder = OpusDecoder()
    (packet,) = OpusEncoder().encode(tone(440, FRAME_SAMPLES), 0)
    assert decoder.decode(bytes(packet)).shape == (FRAME_SAMPLES,)
    assert decoder.conceal().shape == (FRAME_SAMPLES,)
    assert decoder.recover(bytes(packet)).shape == (FRAME_SAMPLES,)
    with pytest.raises(Exception, match="Opus decoding failed"):
        decoder.decode(b"\xff\xff\xff")
    decoder.close()
    with pytest.raises(Exception, match="closed"):
        decoder.conceal()
