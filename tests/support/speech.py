"""Known words, spoken: speech for the captions tests.

``espeak_wav`` has espeak-ng (a system package, scripts/install-system-deps.sh) say a text
into a WAV file; ``SpeechTrack`` is an aiortc microphone that plays such a file in real
time, over and over with a pause between, as 20 ms frames of 48 kHz mono (like
tests/support/webrtc.py ``ToneTrack``); ``speaking`` publishes one from a thread of its
own, so a test driving Chromium through Playwright's synchronous API can have a speaker
on stage meanwhile.

    wav = espeak_wav("Welcome to the garden party.", tmp_path / "speech.wav")
    with speaking(node.url, space, host.token, wav):
        ...  # the host is on stage, saying it again and again
"""

from __future__ import annotations

import asyncio
import fractions
import subprocess
import threading
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from tests.support.procs import require_binary
from tests.support.webrtc import FRAME_S, FRAME_SAMPLES, RATE, Speaker, publish

_TIME_BASE = fractions.Fraction(1, RATE)


def espeak_wav(text: str, path: Path, *, words_per_minute: int = 150) -> Path:
    """``text`` spoken by espeak-ng (American English voice) into the WAV ``path``."""
    espeak = require_binary("espeak-ng")
    subprocess.run(
        [espeak, "-v", "en-us", "-s", str(words_per_minute), "-w", str(path), text],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return path


def read_wav(path: Path, rate: int = RATE) -> npt.NDArray[np.float32]:
    """A 16-bit WAV file as mono float32 at ``rate`` (linear interpolation: plenty for
    speech that only has to be understood)."""
    with wave.open(str(path), "rb") as w:
        channels, width, source_rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"{path}: {8 * width}-bit samples, expected 16-bit")
    pcm = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    mono = pcm.reshape(-1, channels).mean(axis=1)
    if source_rate == rate:
        return mono.astype(np.float32)
    n = round(len(mono) * rate / source_rate)
    at = np.arange(n, dtype=np.float64) * source_rate / rate
    return np.interp(at, np.arange(len(mono)), mono).astype(np.float32)


class SpeechTrack(MediaStreamTrack):
    """A microphone saying the same thing again and again: the samples, then ``pause_s``
    of silence, looped, paced in real time (frame ``n`` is handed over at
    ``t0 + (n + 1)·20 ms``)."""

    kind = "audio"

    def __init__(self, samples: npt.NDArray[np.float32], *, pause_s: float = 1.0) -> None:
        super().__init__()
        loop = np.concatenate([samples, np.zeros(int(pause_s * RATE), dtype=np.float32)])
        pad = (-len(loop)) % FRAME_SAMPLES
        self._loop = np.concatenate([loop, np.zeros(pad, dtype=np.float32)])
        self._n = 0
        self._t0: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.time() - FRAME_S
        else:
            await asyncio.sleep(max(0.0, self._t0 + (self._n + 1) * FRAME_S - time.time()))
        at = (self._n * FRAME_SAMPLES) % len(self._loop)
        pcm = self._loop[at : at + FRAME_SAMPLES]
        frame = av.AudioFrame.from_ndarray(
            np.round(np.clip(pcm, -1, 1) * 32767).astype(np.int16).reshape(1, -1),
            format="s16",
            layout="mono",
        )
        frame.sample_rate = RATE
        frame.pts = self._n * FRAME_SAMPLES
        frame.time_base = _TIME_BASE
        self._n += 1
        return frame


@contextmanager
def speaking(
    base_url: str, space: str, token: str, wav: Path, *, within: float = 30.0
) -> Iterator[Speaker]:
    """Publish ``wav`` (looped) to ``space`` as the account behind ``token`` from a thread
    with its own event loop, connected before this yields; closed (the publish DELETEd)
    on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="speech-speaker", daemon=True)
    thread.start()

    async def start() -> Speaker:
        speaker = await publish(base_url, space, token, SpeechTrack(read_wav(wav)))
        try:
            await speaker.connected(within)
        except BaseException:
            await speaker.close()
            raise
        return speaker

    try:
        speaker = asyncio.run_coroutine_threadsafe(start(), loop).result(within + 30)
        try:
            yield speaker
        finally:
            asyncio.run_coroutine_threadsafe(speaker.close(), loop).result(30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
