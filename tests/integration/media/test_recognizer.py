"""The real recogniser (faster-whisper with the bundled tiny.en) and the node's caption
worker, on espeak-ng speech: the words come back, timed on the window's media clock and
named after who spoke; a tampered model file is refused; a full queue and a shedding node
drop windows instead of delaying anything."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pnyx.media import metrics
from pnyx.media.caption_worker import CaptionWorker
from pnyx.media.captions import CaptionCutter, Cue, Window, to_16k
from pnyx.media.mixer import FRAME_SAMPLES, SAMPLE_RATE
from pnyx.media.recognizer import (
    BUNDLED,
    ModelError,
    Recognizer,
    bundled_model,
    load_recognizer,
    verified,
)
from tests.support.speech import SENTENCES, say, word_error

TEXT = " ".join(SENTENCES)


def recognizer() -> Recognizer:
    return load_recognizer("whisper", BUNDLED, language="en", threads=1, compute_type="int8")


def count(outcome: str) -> float:
    return float(metrics.CAPTION_WINDOWS.labels(outcome)._value.get())


def test_whisper_hears_the_words(tmp_path: Path) -> None:
    speech = say(TEXT, tmp_path)
    phrases = recognizer().transcribe(to_16k(speech))
    heard = " ".join(p.text for p in phrases)
    assert word_error(TEXT, heard) <= 0.1, heard
    assert phrases[0].start < 0.5 and phrases[-1].end <= len(speech) / SAMPLE_RATE + 0.5
    assert recognizer() is recognizer()  # loaded once per process


def test_silence_is_not_captioned() -> None:
    quiet = np.zeros(3 * 16_000, np.float32)
    assert recognizer().transcribe(quiet) == []


def test_a_changed_model_file_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(bundled_model(), copy)
    assert verified(copy) == copy
    with (copy / "vocabulary.txt").open("a") as f:
        f.write("tampered\n")
    with pytest.raises(ModelError, match=r"vocabulary\.txt"):
        verified(copy)


def test_the_worker_captions_windows_from_the_cutter(tmp_path: Path) -> None:
    speech = say(SENTENCES[1], tmp_path)
    got: list[tuple[Window, list[Cue]]] = []
    arrived = threading.Event()

    def deliver(window: Window, cues: list[Cue]) -> None:
        got.append((window, cues))
        arrived.set()

    worker = CaptionWorker(recognizer, deliver, queue_windows=4, max_lag_s=30)
    worker.start()
    try:
        start = 10 * SAMPLE_RATE  # ten seconds into the space
        cutter = CaptionCutter("space", start, max_s=8.0)
        padded = np.concatenate([speech, np.zeros(SAMPLE_RATE // 2, np.float32)])
        for i in range(len(padded) // FRAME_SAMPLES):
            frame = padded[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
            window = cutter.feed(frame, ("ada",), time.monotonic())
            if window is not None:
                worker.submit(window)
        last = cutter.flush(time.monotonic())
        if last is not None:
            worker.submit(last)
        assert arrived.wait(30), "no captions within 30 s"
        assert worker.drain("space", 30)
    finally:
        worker.stop()
    cues = [c for _, cs in got for c in cs]
    assert word_error(SENTENCES[1], " ".join(c.text for c in cues)) <= 0.15
    assert all(c.speaker == "ada" for c in cues)
    assert 10.0 <= cues[0].start < 10.0 + 1.0  # the space's clock, not the window's


def test_a_full_queue_and_a_shedding_node_drop_windows(tmp_path: Path) -> None:
    speech = say(SENTENCES[0], tmp_path)
    shedding = True
    delivered: list[Window] = []
    worker = CaptionWorker(
        recognizer,
        lambda w, cues: delivered.append(w),
        queue_windows=2,
        max_lag_s=30,
        shed=lambda: shedding,
    )

    def window(i: int) -> Window:
        return Window(
            "s", i * len(speech), speech, ((),) * (len(speech) // FRAME_SAMPLES), time.monotonic()
        )

    queue_before, shed_before = count("queue"), count("shed")
    for i in range(5):  # not started yet: the queue keeps the newest two
        worker.submit(window(i))
    assert count("queue") - queue_before == 3
    worker.start()
    try:
        assert worker.drain("s", 30)
        assert count("shed") - shed_before == 2 and delivered == []
        shedding = False
        worker.submit(window(9))
        assert worker.drain("s", 30)
    finally:
        worker.stop()
    assert [w.start for w in delivered] == [9 * len(speech)]
