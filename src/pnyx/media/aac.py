"""AAC-LC: the AudioSpecificConfig (pure) and a small synchronous encoder over PyAV.

The program mix is encoded once, to AAC-LC, and cut into CMAF by :mod:`pnyx.media.hls`.
:class:`AacEncoder` is deliberately synchronous and stateful: the runner owns one per space
and calls it from a dedicated worker thread, never from the event loop
(docs/conventions.md, rule 10). It returns *raw* access units (no ADTS header), each worth
:data:`SAMPLES_PER_AU` samples, which is what an ``mp4a`` sample in an fMP4 fragment must
contain.

References: ISO/IEC 14496-3 §1.6.2.1 (AudioSpecificConfig), §4.4.1 (GASpecificConfig).
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache

import av
import numpy as np
import numpy.typing as npt

AAC_LC = 2  # audioObjectType of AAC Low Complexity
SAMPLES_PER_AU = 1024  # one AAC-LC access unit (frameLengthFlag = 0)
DEFAULT_BIT_RATE = 64_000

# samplingFrequencyIndex table, ISO/IEC 14496-3 Table 1.18.
SAMPLING_FREQUENCIES: tuple[int, ...] = (
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
)  # fmt: skip


class CodecError(RuntimeError):
    """The codec library failed; the FFmpeg error is chained as ``__cause__``."""


def audio_specific_config(sample_rate: int, channels: int, object_type: int = AAC_LC) -> bytes:
    """The AudioSpecificConfig for a plain (non-SBR) AAC stream.

    Layout, most significant bit first: audioObjectType (5 bits), samplingFrequencyIndex
    (4 bits; 0xF escapes to an explicit 24-bit rate), channelConfiguration (4 bits), then the
    GASpecificConfig: frameLengthFlag=0 (1024-sample frames), dependsOnCoreCoder=0,
    extensionFlag=0. AAC-LC, 48 kHz, mono is ``b"\\x11\\x88"``.
    """
    if not 1 <= object_type <= 30:
        raise ValueError(f"audio object type {object_type} needs the escape form; not supported")
    if not 1 <= channels <= 7:
        raise ValueError(f"channel configuration {channels} is not a plain 1..7 layout")
    if sample_rate <= 0 or sample_rate >= 1 << 24:
        raise ValueError(f"sample rate {sample_rate} out of range")
    bits: list[tuple[int, int]] = [(object_type, 5)]
    if sample_rate in SAMPLING_FREQUENCIES:
        bits.append((SAMPLING_FREQUENCIES.index(sample_rate), 4))
    else:
        bits += [(0xF, 4), (sample_rate, 24)]
    bits += [(channels, 4), (0, 1), (0, 1), (0, 1)]
    value = 0
    length = 0
    for field, width in bits:
        value = (value << width) | field
        length += width
    pad = -length % 8
    return (value << pad).to_bytes((length + pad) // 8, "big")


class AacEncoder:
    """Float32 mono PCM in, raw AAC-LC access units out. Synchronous; not thread-safe.

    Input of any length is buffered and fed to the codec in exact 1024-sample frames, so
    the caller can hand it the mixer's 20 ms (960-sample) frames directly. The encoder's
    priming delay (one access unit) is not trimmed: for live audio 21 ms of leading silence
    does not matter, and the packager lays access units end to end from time zero.
    """

    def __init__(
        self, sample_rate: int = 48_000, bit_rate: int = DEFAULT_BIT_RATE, channels: int = 1
    ) -> None:
        if channels != 1:
            raise ValueError("AacEncoder encodes the mono program mix only")
        self.sample_rate = sample_rate
        self._time_base = Fraction(1, sample_rate)
        try:
            ctx = av.CodecContext.create("aac", "w")
            ctx.sample_rate = sample_rate
            ctx.layout = "mono"
            ctx.format = "fltp"
            ctx.bit_rate = bit_rate
            ctx.time_base = self._time_base
            ctx.open()
        except av.FFmpegError as exc:
            raise CodecError(f"cannot open the AAC encoder: {exc}") from exc
        self._ctx = ctx
        self._pending: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)
        self._pts = 0
        self._flushed = False

    @property
    def pending_samples(self) -> int:
        """Samples buffered short of a whole 1024-sample frame (not yet in the codec)."""
        return len(self._pending)

    @property
    def audio_specific_config(self) -> bytes:
        """The AudioSpecificConfig for the init segment (derived, not read from FFmpeg)."""
        return audio_specific_config(self.sample_rate, 1)

    def encode(self, pcm: npt.ArrayLike) -> list[bytes]:
        """Buffer ``pcm`` (float32 mono in [-1, 1]) and return the access units now ready."""
        if self._flushed:
            raise ValueError("encoder already flushed")
        samples = np.asarray(pcm, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"expected mono samples (1-D), got shape {samples.shape}")
        self._pending = np.concatenate((self._pending, samples))
        out: list[bytes] = []
        whole = len(self._pending) - len(self._pending) % SAMPLES_PER_AU
        for start in range(0, whole, SAMPLES_PER_AU):
            out += self._encode_frame(self._pending[start : start + SAMPLES_PER_AU])
        self._pending = self._pending[whole:]
        return out

    def flush(self) -> list[bytes]:
        """Encode what is buffered (zero-padded to a whole frame) and drain the codec."""
        if self._flushed:
            return []
        out: list[bytes] = []
        if len(self._pending):
            padded = np.zeros(SAMPLES_PER_AU, dtype=np.float32)
            padded[: len(self._pending)] = self._pending
            out += self._encode_frame(padded)
            self._pending = np.zeros(0, dtype=np.float32)
        out += self._drain(None)
        self._flushed = True
        return out

    def _encode_frame(self, samples: npt.NDArray[np.float32]) -> list[bytes]:
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples).reshape(1, -1), format="fltp", layout="mono"
        )
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        frame.time_base = self._time_base
        self._pts += len(samples)
        return self._drain(frame)

    def _drain(self, frame: av.AudioFrame | None) -> list[bytes]:
        try:
            return [bytes(packet) for packet in self._ctx.encode(frame)]
        except av.FFmpegError as exc:
            raise CodecError(f"AAC encoding failed: {exc}") from exc


@cache
def silent_access_unit(sample_rate: int = 48_000, bit_rate: int = DEFAULT_BIT_RATE) -> bytes:
    """One raw AAC-LC access unit of digital silence, as :class:`AacEncoder` makes it once
    its input has been silent for a while (the bytes it then repeats). Encoded once per
    process and parameters, then reused: an idle space's stream is these bytes, laid end to
    end, with no codec work (media/encoder.py)."""
    encoder = AacEncoder(sample_rate, bit_rate=bit_rate)
    previous = b""
    for _ in range(64):
        for au in encoder.encode(np.zeros(SAMPLES_PER_AU, dtype=np.float32)):
            if au == previous:
                return au
            previous = au
    raise CodecError("the AAC encoder never settled on one silent access unit")
