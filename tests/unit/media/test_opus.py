"""The mix-minus Opus encoder: one packet per 20 ms frame, stamped with the caller's
clock, that a standard decoder (FFmpeg's, as aiortc and browsers use) plays back."""

from __future__ import annotations

import av
import numpy as np
import pytest

from pnyx.media.mixer import FRAME_SAMPLES
from pnyx.media.opus import TIME_BASE, OpusEncoder

from .signals import dominant_frequency, tone


def test_one_packet_per_frame_stamped_and_decodable() -> None:
    encoder = OpusEncoder(48_000)
    decoder = av.CodecContext.create("libopus", "r")
    decoder.sample_rate = 48_000
    decoder.layout = "stereo"  # what aiortc and browsers ask of a mono stream
    decoded = []
    for n in range(25):
        (packet,) = encoder.encode(
            tone(700, FRAME_SAMPLES, 0.3, start=n * FRAME_SAMPLES), 5000 + n * 960
        )
        assert packet.pts == 5000 + n * 960 and packet.time_base == TIME_BASE
        assert 0 < packet.size < 400
        for frame in decoder.decode(av.Packet(bytes(packet))):
            samples = frame.to_ndarray()
            decoded.append(samples[0] if frame.format.is_planar else samples.reshape(-1)[::2])
    pcm = np.concatenate(decoded).astype(np.float64)
    assert dominant_frequency(pcm[len(pcm) // 2 :]) == pytest.approx(700, abs=30)


def test_a_frame_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="samples"):
        OpusEncoder().encode(np.zeros(480, np.float32), 0)
