from __future__ import annotations

import numpy as np
import pytest

from pnyx.media.aac import SAMPLES_PER_AU, AacEncoder, audio_specific_config

from .signals import tone


@pytest.mark.parametrize(
    ("rate", "channels", "expected"),
    [
        (48_000, 1, b"\x11\x88"),  # AOT 2 | index 3 | mono | 000
        (44_100, 2, b"\x12\x10"),
        (16_000, 1, b"\x14\x08"),
        # 50 kHz is not in the table: index 0xF, then the rate in 24 bits.
        (50_000, 1, bytes.fromhex("178061a808")),
    ],
)
def test_audio_specific_config(rate: int, channels: int, expected: bytes) -> None:
    assert audio_specific_config(rate, channels) == expected


def test_audio_specific_config_rejects_what_it_cannot_express() -> None:
    with pytest.raises(ValueError, match="channel"):
        audio_specific_config(48_000, 0)
    with pytest.raises(ValueError, match="object type"):
        audio_specific_config(48_000, 1, object_type=31)


def test_encoder_returns_raw_access_units_for_20ms_frames() -> None:
    encoder = AacEncoder()
    assert encoder.audio_specific_config == b"\x11\x88"
    units: list[bytes] = []
    frames = 50  # 1 s of 960-sample frames = 46.875 access units of input
    for n in range(frames):
        units += encoder.encode(tone(1000.0, 960, 0.5, start=n * 960))
    before_flush = len(units)
    units += encoder.flush()

    input_frames = -(-frames * 960 // SAMPLES_PER_AU)  # the last one zero-padded
    assert len(units) == input_frames + 1  # plus the encoder's priming frame
    assert before_flush < len(units)
    assert all(units)
    assert not any(u[0] == 0xFF and u[1] & 0xF0 == 0xF0 for u in units)  # no ADTS syncword
    # ~64 kbit/s: 1024 samples at 48 kHz → ~171 bytes per access unit on average.
    mean = sum(map(len, units)) / len(units)
    assert 100 < mean < 260


def test_encoder_lifecycle() -> None:
    encoder = AacEncoder()
    assert encoder.encode(np.zeros(100, dtype=np.float32)) == []
    assert encoder.flush()
    assert encoder.flush() == []
    with pytest.raises(ValueError, match="flushed"):
        encoder.encode(np.zeros(960, dtype=np.float32))
    with pytest.raises(ValueError, match="mono"):
        AacEncoder().encode(np.zeros((2, 960), dtype=np.float32))
    with pytest.raises(ValueError, match="mono"):
        AacEncoder(channels=2)
