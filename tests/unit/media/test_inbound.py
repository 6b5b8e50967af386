"""A speaker's Opus packets, decoded in the clock's thread as 20 ms frames: holes in the
timestamps filled before the next frame plays, an empty queue concealed for a while and
then silent, other packet durations re-cut, corrupt packets concealed."""

from __future__ import annotations

import av
import numpy as np
import pytest

from pnyx.media import metrics
from pnyx.media.frames import FrameQueue
from pnyx.media.inbound import MAX_CONCEAL_FRAMES, EncodedFrame, SpeakerInput
from pnyx.media.mixer import FRAME_SAMPLES
from pnyx.media.opus import OpusDecoder, OpusEncoder

from .signals import dominant_frequency, tone


def packets(n: int, *, first_ts: int = 90_000, freq: float = 440) -> list[EncodedFrame]:
    """``n`` consecutive 20 ms Opus packets of a tone, RTP timestamps from ``first_ts``."""
    encoder = OpusEncoder()
    out = []
    for i in range(n):
        pcm = tone(freq, FRAME_SAMPLES, 0.4, start=i * FRAME_SAMPLES)
        (packet,) = encoder.encode(pcm, i * FRAME_SAMPLES)
        out.append(EncodedFrame(bytes(packet), (first_ts + i * FRAME_SAMPLES) % (1 << 32)))
    return out


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def concealed(how: str) -> float:
    return float(metrics.FRAMES_CONCEALED.labels(how)._value.get())


def feed(frames: list[EncodedFrame]) -> SpeakerInput:
    queue: FrameQueue[EncodedFrame] = FrameQueue(64, 64)
    for f in frames:
        queue.put(f)
    return SpeakerInput(queue)


def playing(frames: list[EncodedFrame], n: int) -> tuple[FrameQueue[EncodedFrame], SpeakerInput]:
    """A speaker whose first ``n`` frames were queued and played."""
    queue: FrameQueue[EncodedFrame] = FrameQueue(8, 8)
    source = SpeakerInput(queue)
    for f in frames[:n]:
        queue.put(f)
    assert all(source.take() is not None for _ in range(n))
    return queue, source


def test_packets_come_out_as_the_speakers_frames_then_concealment_then_silence() -> None:
    source = feed(packets(25))
    out = [source.take() for _ in range(25)]
    assert all(f is not None and f.shape == (FRAME_SAMPLES,) for f in out)
    pcm = np.concatenate([f for f in out if f is not None])
    assert dominant_frequency(pcm[len(pcm) // 2 :]) == pytest.approx(440, abs=30)
    assert rms(pcm[len(pcm) // 2 :]) == pytest.approx(0.4 / np.sqrt(2), rel=0.25)
    plc = concealed("plc")
    tail = [source.take() for _ in range(MAX_CONCEAL_FRAMES)]
    assert all(f is not None for f in tail) and concealed("plc") == plc + MAX_CONCEAL_FRAMES
    assert source.take() is None  # the speaker stopped: silence from now on
    assert source.take() is None


def test_one_lost_packet_is_rebuilt_before_the_next_frame_plays() -> None:
    frames = packets(12)
    del frames[6]
    source = feed(frames)
    fec = concealed("fec")
    out = [source.take() for _ in range(12)]
    assert concealed("fec") == fec + 1
    assert all(f is not None for f in out)  # twelve slots, twelve frames: no gap, no skip
    assert rms(out[6]) > 0.05  # the hole is filled with sound, not silence
    assert source.take() is not None  # concealment: the queue is empty now


def test_a_longer_hole_is_concealed_frame_by_frame() -> None:
    frames = packets(12)
    del frames[5:8]
    source = feed(frames)
    plc, fec = concealed("plc"), concealed("fec")
    out = [source.take() for _ in range(12)]
    assert all(f is not None for f in out)
    # the first two by concealment, the last from the next packet's FEC
    assert (concealed("plc"), concealed("fec")) == (plc + 2, fec + 1)


def test_a_late_packet_is_played_after_its_slot_was_concealed() -> None:
    frames = packets(6)
    queue, source = playing(frames, 3)
    gap = source.take()  # frame 3 is late: concealed
    assert gap is not None
    for f in frames[3:]:
        queue.put(f)
    late = [source.take() for _ in range(3)]
    assert all(f is not None and rms(f) > 0.1 for f in late)  # played, not dropped
    assert len(queue) == 0


def test_a_jump_beyond_concealment_is_a_new_start_not_a_hole() -> None:
    first = packets(3)
    later = packets(3, first_ts=90_000 + 50 * FRAME_SAMPLES)  # a second on (e.g. DTX)
    source = feed(first + later)
    plc, fec = concealed("plc"), concealed("fec")
    assert all(source.take() is not None for _ in range(6))
    assert (concealed("plc"), concealed("fec")) == (plc, fec)


def test_timestamps_wrap() -> None:
    source = feed(packets(8, first_ts=(1 << 32) - 3 * FRAME_SAMPLES))
    plc, fec = concealed("plc"), concealed("fec")
    assert all(source.take() is not None for _ in range(8))
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
    source = feed([EncodedFrame(data, 1000 + i * 480) for i, data in enumerate(encoded)])
    out = [source.take() for _ in range(len(encoded) // 2)]
    assert all(f is not None and f.shape == (FRAME_SAMPLES,) for f in out)
    joined = np.concatenate([f for f in out if f is not None])
    assert dominant_frequency(joined[len(joined) // 2 :]) == pytest.approx(440, abs=30)


def test_a_corrupt_packet_is_concealed_counted_and_the_next_one_plays() -> None:
    frames = packets(6)
    bad = EncodedFrame(b"\xff\xff\xff", frames[3].timestamp)
    source = feed([*frames[:3], bad, *frames[4:]])
    errors = metrics.DECODE_ERRORS._value.get()
    out = [source.take() for _ in range(6)]
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


def test_a_lost_packet_seen_first_as_an_empty_tick_costs_one_frame_not_a_delay() -> None:
    frames = packets(8)
    queue, source = playing(frames, 4)
    plc, fec = concealed("plc"), concealed("fec")
    assert source.take() is not None  # frame 4 is not there yet: concealed
    queue.put(frames[4])  # it was late: played, one frame owed
    assert source.take() is not None
    queue.put(frames[6])  # frame 5 was lost: the owed frame already stands in for it
    assert source.take() is not None
    assert len(queue) == 0 and source.take() is not None  # concealment: nothing held back
    assert (concealed("fec"), concealed("plc")) == (fec, plc + 2)


def test_frames_the_queue_trimmed_are_not_a_hole_to_fill() -> None:
    frames = packets(10)
    queue: FrameQueue[EncodedFrame] = FrameQueue(10, 2)
    source = SpeakerInput(queue)
    for f in frames[:2]:
        queue.put(f)
    assert all(source.take() is not None for _ in range(2))
    for f in frames[2:8]:  # a burst: the queue keeps the newest two
        queue.put(f)
    plc, fec = concealed("plc"), concealed("fec")
    assert source.take() is not None and source.take() is not None
    assert len(queue) == 0 and queue.trimmed == 4
    assert (concealed("plc"), concealed("fec")) == (plc, fec)


def test_frames_the_jitter_buffer_dropped_to_shrink_are_not_a_hole_to_fill() -> None:
    frames = packets(6)
    shrunk = EncodedFrame(frames[5].data, frames[5].timestamp, resync=True)
    source = feed([*frames[:4], shrunk])
    plc, fec = concealed("plc"), concealed("fec")
    assert all(source.take() is not None for _ in range(5))
    assert (concealed("plc"), concealed("fec")) == (plc, fec)
