"""Live captions from the program mix: cutting it into windows, who spoke, and WebVTT.

Pure parts, no threads (the worker is :mod:`pnyx.media.caption_worker`):

* :class:`CaptionCutter` runs in the mix clock's thread, one per captioned space. It keeps
  the program frames since the last cut with their level and who the speaking detector
  said was speaking, and cuts a :class:`Window` at a pause (at least ``min_s`` of audio
  and ``pause_s`` of quiet at the end) or, in unbroken speech, at the quietest frame of the
  window's last part once it reaches ``max_s``. Windows with no speech at all are never
  made (no recogniser time, no phantom "Thank you." on silence). Its cost per tick is one
  copy of the frame and a level.
* :func:`attribute`: the speaker of a phrase is the member the detector marked speaking in
  most of its frames (at least a quarter of them), else nobody.
* :func:`vtt_segment`, :func:`render_vtt`, :func:`render_text`: a live WebVTT segment with
  ``X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000``, so cue times are the audio's own media
  times (its decode time in seconds: the 90 kHz MPEG-TS clock and the fMP4 track's
  48 kHz decode times count the same seconds), and the transcript as WebVTT and as text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pnyx.media.mixer import FRAME_SAMPLES, SAMPLE_RATE

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
LEAD_FRAMES = 10  # quiet kept before speech begins (200 ms): the onset is never clipped
ATTRIBUTE_SHARE = 0.25  # of a phrase's frames, for its speaker to be named
SMOOTH_FRAMES = 5  # unbroken speech is cut in the quietest 100 ms


@dataclass(frozen=True, slots=True)
class Cue:
    """A caption: media seconds (the audio's decode time), the speaker's handle if known."""

    start: float
    end: float
    speaker: str | None
    text: str

    @property
    def line(self) -> str:
        return f"@{self.speaker}: {self.text}" if self.speaker else self.text


@dataclass(frozen=True, slots=True)
class Window:
    """Program audio to recognise: 48 kHz mono from media sample ``start``; per 20 ms frame,
    who was speaking. ``made`` is when it was cut (the clock's monotonic time)."""

    space: str
    start: int  # media samples (48 kHz) of its first sample
    audio: npt.NDArray[np.float32]
    speaking: tuple[tuple[str, ...], ...]
    made: float
    onset: float = 0.0  # seconds into the window where speech begins (after the lead-in)
    speech_end: float | None = None  # where its last voiced frame ends (None: its end)

    @property
    def start_s(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@dataclass(slots=True)
class CaptionCutter:
    """Cuts one space's program into windows (the mix clock's thread only)."""

    space: str
    next_sample: int  # media sample of the next frame fed (48 kHz)
    min_s: float = 1.0
    max_s: float = 3.0
    pause_s: float = 0.3
    quiet_dbov: float = -45.0
    _frames: list[npt.NDArray[np.float32]] = field(default_factory=list)
    _quiet: list[bool] = field(default_factory=list)
    _speaking: list[tuple[str, ...]] = field(default_factory=list)
    _voiced: int = 0  # frames above the quiet level in the buffer

    def feed(
        self, pcm: npt.NDArray[np.float32], speaking: tuple[str, ...], now: float
    ) -> Window | None:
        """One program frame (copied); a window when this frame completes one."""
        level = float(np.sqrt(np.dot(pcm, pcm) / len(pcm))) if len(pcm) else 0.0
        quiet = level <= 10 ** (self.quiet_dbov / 20)
        self._frames.append(np.array(pcm, dtype=np.float32, copy=True))
        self._quiet.append(quiet)
        self._speaking.append(speaking)
        self._voiced += not quiet
        self.next_sample += len(pcm)
        if not self._voiced:  # nothing said yet: keep only a short lead-in
            if len(self._frames) > LEAD_FRAMES:
                self._drop(len(self._frames) - LEAD_FRAMES)
            return None
        n = len(self._frames)
        pause = round(self.pause_s / FRAME_S)
        if n * FRAME_S >= self.min_s and n > pause and all(self._quiet[-pause:]):
            return self._cut(n, now)
        if n * FRAME_S >= self.max_s:
            return self._cut(self._quietest_end(), now)
        return None

    def silence(self, samples: int, now: float) -> Window | None:
        """``samples`` of silence (nobody publishes): a pause, so whatever was said is cut."""
        window = self._cut(len(self._frames), now) if self._voiced else None
        self._drop(len(self._frames))
        self.next_sample += samples
        return window

    def flush(self, now: float) -> Window | None:
        """The end: what is pending, if anything was said."""
        window = self._cut(len(self._frames), now) if self._voiced else None
        self._drop(len(self._frames))
        return window

    def _quietest_end(self) -> int:
        """Where to cut unbroken speech: in the quietest 100 ms of the window's second
        half (a gap between words, most likely), after its middle frame."""
        n = len(self._frames)
        first = max(1, n // 2)
        energy = np.array([float(np.dot(f, f)) for f in self._frames])
        smooth = np.convolve(energy, np.ones(SMOOTH_FRAMES), mode="same")
        return first + int(np.argmin(smooth[first:])) + 1

    def _cut(self, n: int, now: float) -> Window | None:
        start = self.next_sample - len(self._frames) * FRAME_SAMPLES
        loud = [i for i, q in enumerate(self._quiet[:n]) if not q]
        voiced = len(loud)
        window = Window(
            self.space,
            start,
            np.concatenate(self._frames[:n]),
            tuple(self._speaking[:n]),
            now,
            onset=loud[0] * FRAME_S if loud else 0.0,
            speech_end=(loud[-1] + 1) * FRAME_S if loud else None,
        )
        self._drop(n)
        return window if voiced else None

    def _drop(self, n: int) -> None:
        self._voiced -= sum(not q for q in self._quiet[:n])
        del self._frames[:n], self._quiet[:n], self._speaking[:n]


def to_16k(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """48 kHz to the recognisers' 16 kHz: the mean of each three samples (a box filter is
    low-pass enough for speech recognition)."""
    usable = len(audio) - len(audio) % 3
    out: npt.NDArray[np.float32] = audio[:usable].reshape(-1, 3).mean(axis=1).astype(np.float32)
    return out


def attribute(speaking: Sequence[tuple[str, ...]], start_s: float, end_s: float) -> str | None:
    """Who spoke most of ``[start_s, end_s)`` (seconds into the window), if anyone did for
    at least :data:`ATTRIBUTE_SHARE` of it."""
    first = max(0, int(start_s / FRAME_S))
    last = min(len(speaking), max(first + 1, int(np.ceil(end_s / FRAME_S))))
    frames = speaking[first:last]
    counts: Counter[str] = Counter(h for handles in frames for h in handles)
    if not counts:
        return None
    handle, count = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
    return handle if count >= ATTRIBUTE_SHARE * len(frames) else None


# -- WebVTT ------------------------------------------------------------------------------

TIMESTAMP_MAP = "X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000"


def _ts(seconds: float) -> str:
    ms = max(0, round(seconds * 1000))
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _escape(text: str) -> str:
    """Cue text: one line, and no markup of anyone's making."""
    flat = " ".join(text.split())
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_vtt(cues: Sequence[Cue], *, timestamp_map: bool = False, offset: float = 0.0) -> str:
    """WebVTT of ``cues`` (times minus ``offset``); with the HLS timestamp map for a live
    segment."""
    lines = ["WEBVTT"]
    if timestamp_map:
        lines.append(TIMESTAMP_MAP)
    lines.append("")
    for cue in cues:
        start = cue.start - offset
        end = max(cue.end - offset, start + 0.001)
        lines += [f"{_ts(start)} --> {_ts(end)}", _escape(cue.line), ""]
    return "\n".join(lines) + "\n"


def vtt_segment(cues: Sequence[Cue]) -> bytes:
    """A live subtitles segment: the cues recognised since the previous one."""
    return render_vtt(cues, timestamp_map=True).encode()


def render_text(cues: Sequence[Cue], *, offset: float = 0.0) -> str:
    """The transcript as text: ``[hh:mm:ss] @handle: words`` per line."""
    out = []
    for cue in cues:
        stamp = _ts(cue.start - offset).split(".")[0]
        out.append(f"[{stamp}] {' '.join(cue.line.split())}")
    return "\n".join(out) + ("\n" if out else "")
