"""A stand-in for the stage node: a tone through the real encoder and packager into the
origin (and the recorder), exactly as services/media_sink.py hands them over; and what a
listener does with the bytes it fetched (decode them, find the tone)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import av
import numpy as np
import numpy.typing as npt

from pnyx.domain.types import SpaceId
from pnyx.media.aac import AacEncoder
from pnyx.media.fmp4 import init_segment
from pnyx.media.hls import Packager, PackagerConfig, Part, PlaylistState, Segment
from pnyx.services.origin import Origin
from pnyx.services.recorder import Recorder
from tests.support.poll import eventually

RATE = 48_000
FRAME = 960  # the mixer's 20 ms
TONE_HZ = 1000.0
START = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def sine(freq: float, samples: int, start: int, amplitude: float = 0.3) -> npt.NDArray[np.float32]:
    t = (np.arange(samples, dtype=np.float64) + start) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


class Stream:
    """One space's program: ``await start()``, then ``parts(n)`` / ``segments(n)``."""

    def __init__(
        self,
        origin: Origin,
        space: str,
        *,
        recordings: Recorder | None = None,
        freq: float = TONE_HZ,
        config: PackagerConfig | None = None,
        captions: bool = False,
    ) -> None:
        self.origin = origin
        self.space = SpaceId(space)
        self.recordings = recordings
        self.freq = freq
        self.encoder = AacEncoder()
        self.packager = Packager(config, program_date_time=START, captions=captions)
        self.samples = 0
        self.stored: dict[str, bytes] = {}  # name → bytes, as handed to the origin
        self.parts_made = 0
        self.segments_made: list[Segment] = []

    @property
    def state(self) -> PlaylistState:
        return self.packager.state

    async def start(self) -> None:
        init = init_segment(RATE, 1, self.encoder.audio_specific_config)
        self.stored["init.mp4"] = init
        await self.origin.store_init(self.space, init)
        if self.recordings is not None:
            self.recordings.add_init(self.space, init)

    async def parts(self, count: int) -> None:
        """Encode the tone until ``count`` more parts are out, storing each as it comes."""
        goal = self.parts_made + count
        while self.parts_made < goal:
            pcm = sine(self.freq, FRAME, self.samples)
            self.samples += FRAME
            for au in self.encoder.encode(pcm):
                await self._store(self.packager.push(au))

    async def segments(self, count: int) -> None:
        await self.parts(count * self.packager.config.segment_parts)

    async def end(self, *, flush_encoder: bool = True) -> None:
        """End the stream (ENDLIST); with ``flush_encoder``, what the encoder holds first."""
        for au in self.encoder.flush() if flush_encoder else ():
            await self._store(self.packager.push(au))
        await self._store(self.packager.end(), force=True)
        if self.recordings is not None:
            self.recordings.finish(self.space)
            await self.flushed()

    async def flushed(self) -> None:
        """Wait until the recorder has stored (and finished, if asked) what it was given."""
        rec = self.recordings
        assert rec is not None
        await eventually(lambda: not rec.pending(self.space), 10, "the recording written")

    async def _store(self, outputs: list[Part | Segment], *, force: bool = False) -> None:
        if not outputs and not force:
            return
        for out in outputs:
            self.stored[out.ref.uri] = out.data
            if isinstance(out, Part):
                self.parts_made += 1
            else:
                self.segments_made.append(out)
                if self.recordings is not None:
                    self.recordings.add_segment(self.space, out.ref, out.data)
        await self.origin.store(self.space, outputs, self.packager.state)


def decode(data: bytes) -> npt.NDArray[np.float32]:
    """Decode a fragmented MP4 (init + fragments) to mono float samples, like a player."""
    out: list[npt.NDArray[np.float32]] = []
    with av.open(io.BytesIO(data), mode="r", format="mp4") as container:
        for frame in container.decode(audio=0):
            out.append(frame.to_ndarray().astype(np.float32).reshape(-1))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def dominant_hz(samples: npt.ArrayLike) -> float:
    """The strongest frequency (Hann window, DC excluded)."""
    x = np.asarray(samples, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    spectrum[0] = 0.0
    return float(np.fft.rfftfreq(len(x), 1 / RATE)[int(np.argmax(spectrum))])


def assert_tone(samples: npt.NDArray[np.float32], seconds: float, freq: float = TONE_HZ) -> None:
    """At least ``seconds`` of audio, whose dominant frequency is the tone."""
    assert len(samples) >= seconds * RATE, (len(samples) / RATE, seconds)
    assert abs(dominant_hz(samples[RATE // 10 :]) - freq) < 5.0
    assert float(np.max(np.abs(samples))) > 0.1  # not silence
