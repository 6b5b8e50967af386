"""A minimal aiortc speaker for the media tests: sends a tone (or nothing), records what
it hears back as float32 mono 48 kHz."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from collections.abc import Sequence

import av
import numpy as np
import numpy.typing as npt
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

RATE = 48_000
FRAME = 960


class ToneTrack(MediaStreamTrack):
    """A sine of ``freq`` Hz at ``amplitude`` (1.0 = full scale), 20 ms frames, real time."""

    kind = "audio"

    def __init__(self, freq: float, amplitude: float = 0.3) -> None:
        super().__init__()
        self.freq = freq
        self.amplitude = amplitude
        self._start: float | None = None
        self._pts = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += FRAME
            wait = self._start + self._pts / RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        t = (np.arange(FRAME) + self._pts) / RATE
        pcm = self.amplitude * np.sin(2 * np.pi * self.freq * t)
        s16 = np.clip(np.round(pcm * 32767), -32768, 32767).astype(np.int16)
        # Stereo with equal channels, as a browser's mono Opus decodes: full level arrives.
        stereo = np.repeat(s16, 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        return frame


class Speaker:
    """One peer connection to the stage node. ``freq=None`` publishes no audio at all
    (an audio transceiver with no track: the speaker who sends nothing)."""

    def __init__(self, freq: float | None, amplitude: float = 0.3, *, hears: bool = True) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.heard: list[npt.NDArray[np.float32]] = []
        self._reader: asyncio.Task[None] | None = None
        if freq is None:
            self.pc.addTransceiver("audio", direction="sendrecv")
        elif hears:
            self.pc.addTrack(ToneTrack(freq, amplitude))
        else:  # a=sendonly: no mix-minus back (less for this process to decode)
            self.pc.addTransceiver(ToneTrack(freq, amplitude), direction="sendonly")
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._reader = asyncio.create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.AudioFrame)
                channels = len(frame.layout.channels)
                pcm = frame.to_ndarray().reshape(-1, channels).astype(np.float32).mean(axis=1)
                self.heard.append(pcm / 32768.0)

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    def clear(self) -> None:
        self.heard.clear()

    def last(self, seconds: float) -> npt.NDArray[np.float32]:
        pcm = np.concatenate(self.heard) if self.heard else np.zeros(0, dtype=np.float32)
        return pcm[-int(seconds * RATE) :]

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.pc.close()


def tone_level(pcm: npt.NDArray[np.float32], freq: float) -> float:
    """Amplitude of the ``freq`` Hz component of ``pcm`` (Hann window; ~amplitude of a
    sine at that frequency)."""
    return tone_levels(pcm, [freq])[0]


def tone_levels(pcm: npt.NDArray[np.float32], freqs: Sequence[float]) -> list[float]:
    """:func:`tone_level` of each of ``freqs``, from one transform."""
    x = pcm.astype(np.float64)
    window = np.hanning(len(x))
    spectrum = np.abs(np.fft.rfft(x * window)) * 2 / window.sum()
    bins = np.fft.rfftfreq(len(x), 1 / RATE)
    return [float(spectrum[(bins > freq - 15) & (bins < freq + 15)].max()) for freq in freqs]
