"""Known speech for caption tests and benchmarks: espeak-ng (Debian) says a text into a
WAV, and :class:`SpeechTrack` plays it as a microphone would (20 ms frames of 48 kHz mono,
paced in real time), with silence between repetitions.

:func:`word_error` is the word error rate of a recognised text against the reference
(Levenshtein distance over words, case and punctuation ignored), the figure the captions
tests and ``bench/captions.py`` assert. :func:`speaking` keeps a speaker saying it on a
space's stage from a thread of its own (for the browser tests).
"""

from __future__ import annotations

import asyncio
import fractions
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from tests.support.procs import require_binary
from tests.support.webrtc import Speaker, publish

RATE = 48_000
FRAME_S = 0.02
FRAME_SAMPLES = int(RATE * FRAME_S)
_TIME_BASE = fractions.Fraction(1, RATE)

# Plain sentences of common words, spoken at a conversational 140 words a minute.
SENTENCES = (
    "Welcome to the morning show.",
    "Today we talk about the weather and the news from the city.",
    "Thank you all for listening and see you next week.",
)


def say(
    text: str, folder: Path, *, voice: str = "en-us", wpm: int = 140
) -> npt.NDArray[np.float32]:
    """``text`` spoken by espeak-ng, as 48 kHz mono float32."""
    espeak = require_binary("espeak-ng")
    wav = folder / f"speech-{abs(hash((text, voice, wpm)))}.wav"
    subprocess.run(
        [espeak, "-v", voice, "-s", str(wpm), "-w", str(wav), text],
        check=True,
        capture_output=True,
        timeout=60,
    )
    with av.open(str(wav)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        chunks = [
            f.to_ndarray().reshape(-1)
            for frame in container.decode(audio=0)
            for f in resampler.resample(frame)
        ]
        chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32)


class SpeechTrack(MediaStreamTrack):
    """Plays ``speech`` (48 kHz mono float32), then ``gap_s`` of silence, ``repeat`` times
    (then silence). ``starts`` are the capture instants (``time.time()``) of each play."""

    kind = "audio"

    def __init__(
        self, speech: npt.NDArray[np.float32], *, gap_s: float = 1.0, repeat: int = 1
    ) -> None:
        super().__init__()
        gap = np.zeros(int(gap_s * RATE), np.float32)
        self._loop_audio = np.concatenate([speech, gap])
        self._speech_len = len(speech)
        self._repeat = repeat
        self._n = 0
        self._t0: float | None = None
        self.starts: list[float] = []

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.time() - FRAME_S
        else:
            await asyncio.sleep(max(0.0, self._t0 + (self._n + 1) * FRAME_S - time.time()))
        start = self._n * FRAME_SAMPLES
        play, offset = divmod(start, len(self._loop_audio))
        if play < self._repeat:
            if offset == 0:
                self.starts.append(self._t0 + self._n * FRAME_S)
            pcm = self._loop_audio[offset : offset + FRAME_SAMPLES]
            if len(pcm) < FRAME_SAMPLES:
                pcm = np.concatenate([pcm, np.zeros(FRAME_SAMPLES - len(pcm), np.float32)])
        else:
            pcm = np.zeros(FRAME_SAMPLES, np.float32)
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


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("’", "'"))


def word_error(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` (0 = perfect)."""
    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1] / len(ref)


@contextmanager
def speaking(
    base_url: str,
    space: str,
    token: str,
    speech: npt.NDArray[np.float32],
    *,
    repeat: int = 1000,
    within: float = 30.0,
) -> Iterator[Speaker]:
    """Publish ``speech`` (said ``repeat`` times, a second apart) to ``space`` as the
    account behind ``token``, from a thread with its own event loop: for tests driving
    Chromium through Playwright's synchronous API meanwhile. Connected when this yields;
    closed (the publish DELETEd) on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="speech-speaker", daemon=True)
    thread.start()

    async def start() -> Speaker:
        speaker = await publish(base_url, space, token, SpeechTrack(speech, repeat=repeat))
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
