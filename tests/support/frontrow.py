"""A front-row listener as a test or bench sees it: a WebSocket client on an edge's
``/frontrow/{space}`` that keeps every message (with its arrival time) and decodes the
Opus frames into one 48 kHz mono timeline, placed by each message's media time (a lost
message is a gap of silence, not a shift)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import websockets

from pnyx.media.opus import OpusDecoder
from pnyx.protocol import frontrow
from pnyx.protocol.frontrow import FRAME_SAMPLES, FrontRowMessage


@dataclass
class Arrival:
    message: FrontRowMessage
    at: float  # time.time() when it arrived


@dataclass
class FrontRowClient:
    url: str  # ws://edge/frontrow/{space}
    arrivals: list[Arrival] = field(default_factory=list)
    failed: BaseException | None = None
    closed: bool = False

    async def run(self, *, seconds: float, open_timeout: float = 10.0) -> None:
        """Subscribe and keep what arrives for ``seconds`` (bounded), then close."""
        deadline = time.monotonic() + seconds
        try:
            async with websockets.connect(
                self.url, open_timeout=open_timeout, max_size=1 << 16, compression=None
            ) as ws:
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        data = await asyncio.wait_for(ws.recv(), left)
                    except TimeoutError:
                        break
                    if isinstance(data, str):
                        raise AssertionError(f"a text frame on the front row: {data[:80]!r}")
                    self.arrivals.append(Arrival(frontrow.decode(data), time.time()))
        except websockets.ConnectionClosed:
            self.closed = True
        except Exception as exc:
            self.failed = exc

    def decode(self) -> tuple[int, npt.NDArray[np.float32], npt.NDArray[np.float64]]:
        """(media time of sample 0, the samples, the arrival time of each frame's
        message per 20 ms frame). Frames missing in between are silence."""
        if not self.arrivals:
            return 0, np.zeros(0, np.float32), np.zeros(0)
        start = self.arrivals[0].message.media_time
        end = max(a.message.end_time for a in self.arrivals)
        n_frames = (end - start) // FRAME_SAMPLES
        out = np.zeros(n_frames * FRAME_SAMPLES, np.float32)
        arrived = np.full(n_frames, np.nan)
        decoder = OpusDecoder()
        try:
            for a in sorted(self.arrivals, key=lambda a: a.message.media_time):
                for i, packet in enumerate(a.message.frames):
                    k = (a.message.media_time - start) // FRAME_SAMPLES + i
                    pcm = decoder.decode(packet)
                    out[k * FRAME_SAMPLES : k * FRAME_SAMPLES + len(pcm)] = pcm[:FRAME_SAMPLES]
                    arrived[k] = a.at
        finally:
            decoder.close()
        return start, out, arrived
