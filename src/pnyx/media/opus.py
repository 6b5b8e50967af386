"""Opus for the mix-minus: one small synchronous encoder per speaker, over PyAV.

Each speaker's mix-minus is encoded by the mix clock's thread (docs/conventions.md, rule 10; PyAV
releases the GIL inside libopus) and handed to aiortc *pre-encoded*: a
:class:`MixMinusTrack <pnyx.media.ingest.MixMinusTrack>` returns ``av.Packet`` objects,
which aiortc only packetises into RTP. That skips aiortc's own per-frame work on the event
loop: its pure-Python RFC 6464 level computation, its resampler and its hop through a
thread pool for every 20 ms frame of every speaker.

The stream is mono (RFC 7587: a receiver decodes mono or stereo whatever the
``opus/48000/2`` in the SDP), 20 ms per packet, with the ``voip`` application tuning.
"""

from __future__ import annotations

from fractions import Fraction
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
