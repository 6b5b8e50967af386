"""Cutting the program into caption windows, naming the speaker, and the WebVTT and
playlist renderings of captions (pure: no recogniser here; see
tests/integration/media/test_recognizer.py for the real one)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import pytest

from pnyx.media.captions import (
    FRAME_S,
    CaptionCutter,
    Cue,
    Window,
    attribute,
    render_text,
    render_vtt,
    to_16k,
    vtt_segment,
)
from pnyx.media.hls import Packager, PlaylistState
from pnyx.media.mixer import FRAME_SAMPLES, SAMPLE_RATE
from pnyx.media.playlist import render_captions, render_main

LOUD = np.full(FRAME_SAMPLES, 0.1, np.float32)  # -20 dBFS
QUIET = np.zeros(FRAME_SAMPLES, np.float32)


def run(
    cutter: CaptionCutter, frames: list[npt.NDArray[np.float32]], who: str = "ada"
) -> list[Window]:
    out = []
    for i, f in enumerate(frames):
        w = cutter.feed(f, (who,) if f is LOUD else (), now=i * FRAME_S)
        if w is not None:
            out.append(w)
    return out


def frames(*runs: tuple[npt.NDArray[np.float32], float]) -> list[npt.NDArray[np.float32]]:
    return [f for f, seconds in runs for _ in range(round(seconds / FRAME_S))]


def test_silence_makes_no_window_and_keeps_only_a_lead_in() -> None:
    cutter = CaptionCutter("s", 0)
    assert run(cutter, frames((QUIET, 10.0))) == []
    assert cutter.flush(0) is None


def test_a_pause_after_the_minimum_cuts_a_window_with_its_lead_in() -> None:
    cutter = CaptionCutter("s", 48_000, min_s=1.0, max_s=3.0, pause_s=0.3)
    windows = run(cutter, frames((QUIET, 1.0), (LOUD, 1.5), (QUIET, 0.3)))
    assert len(windows) == 1
    w = windows[0]
    # 200 ms of lead-in before the speech, which began 1 s after sample 48,000.
    assert w.start == 48_000 + SAMPLE_RATE * 1.0 - 10 * FRAME_SAMPLES
    assert w.duration == pytest.approx(0.2 + 1.5 + 0.3)
    assert w.speaking[10] == ("ada",)
    assert w.onset == pytest.approx(0.2) and w.speech_end == pytest.approx(1.7)


def test_a_short_pause_before_the_minimum_does_not_cut() -> None:
    cutter = CaptionCutter("s", 0, min_s=1.0, max_s=3.0, pause_s=0.3)
    assert run(cutter, frames((LOUD, 0.4), (QUIET, 0.4), (LOUD, 0.2))) == []


def test_unbroken_speech_is_cut_at_max_in_its_quietest_stretch() -> None:
    cutter = CaptionCutter("s", 0, min_s=1.0, max_s=3.0, pause_s=0.3)
    dip = np.full(FRAME_SAMPLES, 0.02, np.float32)  # a softer 100 ms between words
    windows = run(cutter, frames((LOUD, 2.0), (dip, 0.1), (LOUD, 1.5)))
    assert len(windows) == 1
    assert 2.0 <= windows[0].duration <= 2.2  # cut in the dip, not at 3 s
    rest = cutter.flush(0)
    assert rest is not None and rest.start == len(windows[0].audio)


def test_silence_counts_time_and_cuts_what_was_said() -> None:
    cutter = CaptionCutter("s", 0, min_s=1.0)
    assert run(cutter, frames((LOUD, 0.5))) == []
    w = cutter.silence(SAMPLE_RATE, now=1.0)
    assert w is not None and w.duration == pytest.approx(0.5)
    windows = run(cutter, frames((LOUD, 1.2), (QUIET, 0.3)))
    assert windows[0].start == SAMPLE_RATE + SAMPLE_RATE // 2  # after the silence


def test_the_speaker_is_who_spoke_most_of_the_phrase() -> None:
    speaking = (("ada",),) * 50 + (("bob",),) * 100 + ((),) * 50
    assert attribute(speaking, 0.0, 1.0) == "ada"
    assert attribute(speaking, 1.0, 3.0) == "bob"
    assert attribute(speaking, 0.0, 4.0) == "bob"
    assert attribute(speaking, 3.0, 4.0) is None  # nobody
    assert attribute((("ada",),) * 10 + ((),) * 90, 0.0, 2.0) is None  # 10 %: too little


def test_to_16k_keeps_a_tone_and_a_third_of_the_samples() -> None:
    t = np.arange(48_000) / 48_000
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    out = to_16k(tone)
    assert len(out) == 16_000 and out.dtype == np.float32
    peak = np.argmax(np.abs(np.fft.rfft(out)))
    assert peak == 440  # 1 Hz bins over one second


def test_vtt_escapes_and_maps_onto_the_audio_clock() -> None:
    cues = [Cue(3725.5, 3727.25, "ada", "a <b>bold</b> & new\nline"), Cue(1.0, 1.0, None, "x")]
    text = vtt_segment(cues).decode()
    assert text.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n")
    assert "01:02:05.500 --> 01:02:07.250\n@ada: a &lt;b&gt;bold&lt;/b&gt; &amp; new line\n" in text
    assert "00:00:01.000 --> 00:00:01.001\nx\n" in text  # never an empty cue
    assert vtt_segment([]).decode() == "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n"
    assert "X-TIMESTAMP-MAP" not in render_vtt(cues)


def test_the_transcript_as_text() -> None:
    cues = [Cue(62.4, 64.0, "ada", "Hello there."), Cue(3600.0, 3601.0, None, "Bye.")]
    assert render_text(cues) == "[00:01:02] @ada: Hello there.\n[01:00:00] Bye.\n"
    assert render_text([]) == ""


def _state(captions: bool) -> PlaylistState:
    p = Packager(program_date_time=datetime(2026, 12, 5, tzinfo=UTC), captions=captions)
    for _ in range(15 * (6 * 2 + 4)):  # two segments and four parts
        p.push(b"\x00" * 8)
    return p.state


def test_a_short_last_segment_has_its_short_last_file() -> None:
    p = Packager(program_date_time=datetime(2026, 12, 5, tzinfo=UTC), captions=True)
    for _ in range(15 * 4):
        p.push(b"\x00" * 8)
    p.end()
    text = render_captions(p.state)
    assert [ln for ln in text.splitlines() if ln.startswith("vtt/")] == [
        "vtt/0.0.vtt",
        "vtt/0.1.vtt",
    ]
    assert "#EXTINF:0.32," in text and text.endswith("#EXT-X-ENDLIST\n")


def test_the_captions_playlist_lists_the_audio_segments() -> None:
    state = _state(True)
    text = render_captions(state)
    assert "#EXT-X-MEDIA-SEQUENCE:0\n" in text
    # Two files per segment, numbered msn·2 + half, the open segment's first once it has
    # three parts.
    uris = [ln for ln in text.splitlines() if ln.startswith("vtt/")]
    assert uris == ["vtt/0.0.vtt", "vtt/0.1.vtt", "vtt/1.0.vtt", "vtt/1.1.vtt", "vtt/2.0.vtt"]
    assert "#EXT-X-TARGETDURATION:1\n" in text and "#EXTINF:0.96," in text
    assert "#EXT-X-ENDLIST" not in text
    dates = [ln for ln in text.splitlines() if ln.startswith("#EXT-X-PROGRAM-DATE-TIME")]
    assert dates[:2] == [
        "#EXT-X-PROGRAM-DATE-TIME:2026-12-05T00:00:00.000Z",
        "#EXT-X-PROGRAM-DATE-TIME:2026-12-05T00:00:00.960Z",
    ]
    assert PlaylistState.from_json(state.to_json()).captions is True


def test_the_main_playlist_names_captions_only_when_there_are_some() -> None:
    with_captions = render_main(_state(True), bandwidth=70_400, language="en")
    assert 'TYPE=SUBTITLES,GROUP-ID="captions"' in with_captions
    assert 'URI="captions.m3u8"' in with_captions and 'SUBTITLES="captions"' in with_captions
    assert with_captions.rstrip().endswith("live.m3u8")
    without = render_main(_state(False), bandwidth=70_400, language="en")
    assert "SUBTITLES" not in without and 'CODECS="mp4a.40.2"' in without
