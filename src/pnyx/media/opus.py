"""Opus for the stage, libopus straight through :mod:`ctypes`: per speaker one small
synchronous encoder (their mix-minus) and one decoder (their voice).

Each speaker's mix-minus is encoded by the mix clock's thread (docs/conventions.md, rule
10; ctypes releases the GIL inside libopus) as :class:`OpusPacket` objects, which the
session sends with aiortc's RTP serialisation and SRTP
(:class:`~pnyx.media.rtp_path.DirectSender`). That skips aiortc's own per-frame work on
the event loop: its pure-Python RFC 6464 level computation, its resampler and its hop
through a thread pool for every 20 ms frame of every speaker.

The stream is mono (RFC 7587: a receiver decodes mono or stereo whatever the
``opus/48000/2`` in the SDP), 20 ms per packet (:class:`OpusEncoder` says which
application and complexity, and why).

Speakers' packets are decoded by the mix clock's thread too (:mod:`pnyx.media.inbound`).
libopus is called directly rather than through PyAV because it has what FFmpeg's codec
API hides and a concealing receiver needs — packet loss concealment (decode "no packet")
and in-band FEC (rebuild a lost frame from the next packet's redundancy) — and because
it costs less per packet: decoding a 20 ms mono packet 19 µs against 29 µs through PyAV
(and 57 µs through ``opuslib-next``, which allocates per call); encoding one about 13 µs
less than through PyAV, which wraps every frame and packet in objects. The library
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
from typing import Any

import av
import numpy as np

from pnyx.media.aac import CodecError
from pnyx.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, Frame

TIME_BASE = Fraction(1, SAMPLE_RATE)
DEFAULT_BIT_RATE = 64_000
DEFAULT_COMPLEXITY = 5
_APPLICATION_AUDIO = 2049  # opus_defines.h
_SET_BITRATE = 4002
_SET_COMPLEXITY = 4010
_MAX_PACKET_BYTES = 1500  # one 20 ms frame at any bit rate fits far below this


class OpusPacket:
    """One encoded packet as aiortc's sender takes it pre-encoded (``bytes()`` of it,
    ``pts`` in ``time_base``): what ``av.Packet`` offers, without building one (whose
    ``time_base`` is a new Fraction at every read)."""

    __slots__ = ("data", "pts")
    time_base = TIME_BASE

    def __init__(self, data: bytes, pts: int) -> None:
        self.data = data
        self.pts = pts

    def __bytes__(self) -> bytes:
        return self.data

    @property
    def size(self) -> int:
        return len(self.data)


class OpusEncoder:
    """20 ms float32 mono frames in, Opus packets (pts in 1/48000 s) out; libopus over
    ctypes. Synchronous and stateful; one per stream; not thread-safe.

    The ``audio`` application and ``complexity`` 5 (of 0 to 10; the setting
    ``mix_minus_complexity``): at 64 kbit/s that is Opus's CELT mode, about 55 µs per
    20 ms frame of speech against 93 µs at libopus's default complexity 10, with the
    decoded waveform within about 1 dB (SNR 21 dB against 22 on espeak-ng speech). The
    ``voip`` application (which Janus's AudioBridge uses, at complexity 4) picks the
    SILK or hybrid modes below complexity 7, at 150 to 190 µs a frame; its speech filters
    are for low bit rates, not this one. ``bench/opus_encoder.py`` measures these
    (docs/benchmarks.md)."""

    def __init__(
        self, bit_rate: int = DEFAULT_BIT_RATE, complexity: int = DEFAULT_COMPLEXITY
    ) -> None:
        lib = _libopus()
        error = ctypes.c_int()
        state = lib.opus_encoder_create(SAMPLE_RATE, 1, _APPLICATION_AUDIO, ctypes.byref(error))
        if not state or error.value != 0:
            raise CodecError(f"cannot open the Opus encoder: {_why(lib, error.value)}")
        self._lib = lib
        self._state: int | None = state
        for request, value, what in (
            (_SET_BITRATE, bit_rate, "bit rate"),
            (_SET_COMPLEXITY, complexity, "complexity"),
        ):
            result = lib.opus_encoder_ctl(state, request, value)
            if result != 0:
                self.close()
                raise CodecError(f"cannot set the Opus {what} {value}: {_why(lib, result)}")
        self._out = ctypes.create_string_buffer(_MAX_PACKET_BYTES)

    def encode(self, pcm: Frame, pts: int) -> list[OpusPacket]:
        """Encode one frame of :data:`FRAME_SAMPLES` samples into one packet carrying
        ``pts`` (the caller's sample clock: a jump in it is a gap the receiver conceals)."""
        if pcm.shape != (FRAME_SAMPLES,):
            raise ValueError(f"expected ({FRAME_SAMPLES},) samples, got {pcm.shape}")
        if self._state is None:
            raise CodecError("the Opus encoder is closed")
        samples = np.ascontiguousarray(pcm, dtype=np.float32)
        n = self._lib.opus_encode_float(
            self._state, samples.ctypes.data, FRAME_SAMPLES, self._out, _MAX_PACKET_BYTES
        )
        if n < 0:
            raise CodecError(f"Opus encoding failed: {_why(self._lib, n)}")
        return [OpusPacket(ctypes.string_at(self._out, n), pts)]

    def close(self) -> None:
        _destroy(self, self._lib.opus_encoder_destroy)

    def __del__(self) -> None:
        self.close()


# libopus (opus.h): functions return a negative error code on failure.
_MAX_FRAME_SAMPLES = 5760  # 120 ms at 48 kHz: the longest Opus packet


_INT, _I32, _PTR = ctypes.c_int, ctypes.c_int32, ctypes.c_void_p
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {  # opus.h
    "opus_decoder_create": (_PTR, [_I32, _INT, ctypes.POINTER(_INT)]),
    "opus_decoder_destroy": (None, [_PTR]),
    "opus_decode_float": (_INT, [_PTR, ctypes.c_char_p, _I32, _PTR, _INT, _INT]),
    "opus_encoder_create": (_PTR, [_I32, _INT, _INT, ctypes.POINTER(_INT)]),
    "opus_encoder_destroy": (None, [_PTR]),
    # variadic in C; one int32 argument is passed alike on the platforms we run on
    "opus_encoder_ctl": (_INT, [_PTR, _INT, _I32]),
    "opus_encode_float": (_I32, [_PTR, _PTR, _INT, _PTR, _I32]),
    "opus_strerror": (ctypes.c_char_p, [_INT]),
}


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
        for function, (restype, argtypes) in _SIGNATURES.items():
            getattr(lib, function).restype = restype
            getattr(lib, function).argtypes = argtypes
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
        _destroy(self, self._lib.opus_decoder_destroy)

    def __del__(self) -> None:
        self.close()


def _destroy(owner: OpusEncoder | OpusDecoder, destroy: Any) -> None:
    """Free ``owner``'s libopus state once."""
    if owner._state is not None:
        destroy(owner._state)
        owner._state = None


def _why(lib: ctypes.CDLL, code: int) -> str:
    text = lib.opus_strerror(code)
    return text.decode() if isinstance(text, bytes) else str(code)
