"""Opus for the stage: one small synchronous encoder per speaker over PyAV (their
mix-minus), one decoder per speaker straight over libopus (their voice).

Each speaker's mix-minus is encoded by the mix clock's thread (docs/conventions.md, rule 10; PyAV
releases the GIL inside libopus) and handed to aiortc *pre-encoded*: a
:class:`MixMinusTrack <pnyx.media.ingest.MixMinusTrack>` returns ``av.Packet`` objects,
which aiortc only packetises into RTP. That skips aiortc's own per-frame work on the event
loop: its pure-Python RFC 6464 level computation, its resampler and its hop through a
thread pool for every 20 ms frame of every speaker.

The stream is mono (RFC 7587: a receiver decodes mono or stereo whatever the
``opus/48000/2`` in the SDP), 20 ms per packet, with the ``voip`` application tuning.

Speakers' packets are decoded by the mix clock's thread too (:mod:`pnyx.media.inbound`),
with :class:`OpusDecoder`: libopus called through :mod:`ctypes`, because it has what FFmpeg's
decoder API hides and a concealing receiver needs — packet loss concealment (decode "no
packet") and in-band FEC (rebuild a lost frame from the next packet's redundancy) — and
costs less per packet (19 µs against 29 µs through PyAV and 57 µs through
``opuslib-next``, which allocates per call; measured on a 20 ms mono packet). The library
is the copy PyAV's wheel ships (already loaded in the process, and pinned by hash in
the lock with PyAV), else the system's ``libopus.so.0``. ctypes releases the GIL during
each call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeAlias

import av
import numpy as np

from pnyx.media.aac import CodecError
from pnyx.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, Frame

TIME_BASE = Fraction(1, SAMPLE_RATE)
DEFAULT_BIT_RATE = 64_000
OpusPacket: TypeAlias = "av.Packet[Any]"


class OpusEncoder:
    """20 ms float32 mono frames in, Opus packets (``av.Packet``, pts in 1/48000 s) out.
    Synchronous and stateful; one per stream; not thread-safe."""

    def __init__(self, bit_rate: int = DEFAULT_BIT_RATE) -> None:
        try:
            ctx = av.CodecContext.create("libopus", "w")
            ctx.sample_rate = SAMPLE_RATE
            ctx.layout = "mono"
            ctx.format = "flt"
            ctx.bit_rate = bit_rate
            ctx.time_base = TIME_BASE
            ctx.options = {"application": "voip"}
            ctx.open()
        except av.FFmpegError as exc:
            raise CodecError(f"cannot open the Opus encoder: {exc}") from exc
        self._ctx = ctx
        self._pts = 0

    def encode(self, pcm: Frame, pts: int) -> list[OpusPacket]:
        """Encode one frame of :data:`FRAME_SAMPLES` samples; the packets carry ``pts``
        (the caller's sample clock: a jump in it is a gap the receiver conceals)."""
        if pcm.shape != (FRAME_SAMPLES,):
            raise ValueError(f"expected ({FRAME_SAMPLES},) samples, got {pcm.shape}")
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(pcm, dtype=np.float32).reshape(1, -1), format="flt", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = TIME_BASE
        self._pts += FRAME_SAMPLES
        try:
            packets = list(self._ctx.encode(frame))
        except av.FFmpegError as exc:
            raise CodecError(f"Opus encoding failed: {exc}") from exc
        for packet in packets:
            packet.pts = pts
            packet.dts = pts
            packet.time_base = TIME_BASE
        return packets


# libopus's API (opus_defines.h): OPUS_APPLICATION_VOIP, error codes are negative.
_MAX_FRAME_SAMPLES = 5760  # 120 ms at 48 kHz: the longest Opus packet


@functools.cache
def _libopus() -> ctypes.CDLL:
    """libopus: PyAV's bundled copy, else the system's (raises CodecError)."""
    candidates = sorted((Path(av.__file__).parent.parent / "av.libs").glob("libopus*.so*"))
    names = [str(p) for p in candidates]
    names.append(ctypes.util.find_library("opus") or "libopus.so.0")
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.opus_decoder_create.restype = ctypes.c_void_p
        lib.opus_decoder_create.argtypes = [
            ctypes.c_int32,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_int),
        ]
        lib.opus_decoder_destroy.restype = None
        lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_decode_float.restype = ctypes.c_int
        lib.opus_decode_float.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int32,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
        ]
        lib.opus_strerror.restype = ctypes.c_char_p
        lib.opus_strerror.argtypes = [ctypes.c_int]
        return lib
    raise CodecError(f"libopus not found (looked for {', '.join(names)})")


class OpusDecoder:
    """Opus packets in, float32 mono 48 kHz samples out; with loss concealment.
    Synchronous and stateful; one per stream; not thread-safe.

    Every method returns a fresh array (the caller may keep it). A packet that libopus
    refuses (corrupt, not Opus) raises :class:`~pnyx.media.aac.CodecError`; the decoder
    stays usable."""

    def __init__(self) -> None:
        lib = _libopus()
        error = ctypes.c_int()
        state = lib.opus_decoder_create(SAMPLE_RATE, 1, ctypes.byref(error))
        if not state or error.value != 0:
            raise CodecError(f"cannot create an Opus decoder: {_why(lib, error.value)}")
        self._lib = lib
        self._state: int | None = state
        self._out = np.zeros(_MAX_FRAME_SAMPLES, dtype=np.float32)
        self._ptr = self._out.ctypes.data

    def decode(self, data: bytes) -> Frame:
        """All the samples of one packet (960 for a 20 ms one)."""
        return self._call(data, len(data), _MAX_FRAME_SAMPLES, 0)

    def conceal(self, samples: int = FRAME_SAMPLES) -> Frame:
        """``samples`` of packet loss concealment: what the lost packet probably said
        (libopus extrapolates the last one, fading out over a longer loss)."""
        return self._call(None, 0, samples, 0)

    def recover(self, data: bytes, samples: int = FRAME_SAMPLES) -> Frame:
        """The ``samples`` *before* the packet ``data``, rebuilt from the redundancy a
        sender with in-band FEC puts in it (concealment when it has none). Then
        :meth:`decode` the same packet for its own samples."""
        return self._call(data, len(data), samples, 1)

    def _call(self, data: bytes | None, size: int, samples: int, fec: int) -> Frame:
        if self._state is None:
            raise CodecError("the Opus decoder is closed")
        n = self._lib.opus_decode_float(self._state, data, size, self._ptr, samples, fec)
        if n < 0:
            raise CodecError(f"Opus decoding failed: {_why(self._lib, n)}")
        return self._out[:n].copy()

    def close(self) -> None:
        if self._state is not None:
            self._lib.opus_decoder_destroy(self._state)
            self._state = None

    def __del__(self) -> None:
        self.close()


def _why(lib: ctypes.CDLL, code: int) -> str:
    text = lib.opus_strerror(code)
    return text.decode() if isinstance(text, bytes) else str(code)
