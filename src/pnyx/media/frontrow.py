"""The front row's encoder: a space's program as Opus, batched into wire messages
(:mod:`pnyx.protocol.frontrow`), for the push tier that edges fan out over WebSocket.

One :class:`FrontRowEncoder` per space whose front row is on, fed by the mix clock's
thread with the same 20 ms program frames the AAC encoder gets (one Opus encode per
space, never per listener). Every ``batch_frames`` frames it hands one message to its
:class:`FrontRowTap` (the services layer posts it to the edges). Each message carries its
sequence number and the program media time of its first frame, counted on the LL-HLS
stream's timeline (the packager's decode time when the runner started, plus every sample
mixed or handed over as silence since), so a player can line the two up.

While nobody publishes, the runner hands the silence over in batches of a few ticks;
they are encoded here as silent frames, so the stream and its clock never stop.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from pnyx.media.mixer import FRAME_SAMPLES, Frame
from pnyx.media.opus import OpusEncoder
from pnyx.protocol import frontrow

_SILENCE: Frame = np.zeros(FRAME_SAMPLES, np.float32)
_SILENCE.setflags(write=False)


class FrontRowTap(Protocol):
    """Where a space's front-row messages go. Called from the mix clock's thread: it
    must only hand the message over (never block)."""

    def submit(self, space: str, message: bytes) -> None: ...


class FrontRowEncoder:
    """Program frames in, front-row messages out to ``tap``. The clock's thread only."""

    def __init__(
        self,
        space: str,
        tap: FrontRowTap,
        *,
        media_time: int,
        batch_frames: int,
        bit_rate: int,
        complexity: int,
    ) -> None:
        if not 1 <= batch_frames <= 255:
            raise ValueError("batch_frames must be 1 to 255")
        self._space = space
        self._tap = tap
        self._batch = batch_frames
        self._opus = OpusEncoder(bit_rate, complexity)
        self._next = media_time  # media time of the next frame fed
        self._first = media_time  # of the first frame waiting in _frames
        self._frames: list[bytes] = []
        self._seq = 0
        self.messages = 0  # handed to the tap so far (tests, stats)

    @property
    def media_time(self) -> int:
        """The media time of the next frame (48 kHz samples)."""
        return self._next

    def feed(self, pcm: Frame) -> None:
        if not self._frames:
            self._first = self._next
        (packet,) = self._opus.encode(pcm, self._next)
        self._frames.append(packet.data)
        self._next += FRAME_SAMPLES
        if len(self._frames) >= self._batch:
            self._flush()

    def silence(self, samples: int) -> None:
        """``samples`` of silence (whole frames; a remainder is carried by the clock)."""
        for _ in range(samples // FRAME_SAMPLES):
            self.feed(_SILENCE)

    def _flush(self) -> None:
        message = frontrow.encode(self._seq, self._first, self._frames)
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        self._frames = []
        self.messages += 1
        self._tap.submit(self._space, message)

    def close(self) -> None:
        self._frames = []
        self._opus.close()
