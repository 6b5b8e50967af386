"""The recogniser in a process of its own.

A node's speech recogniser must never slow its audio. Run in a thread, it shared the node's
interpreter lock: whenever the recogniser ran Python (feature extraction, decoding loops)
the mix clock's thread and the event loop waited for the lock, and the recogniser's thread
ran at the lowest CPU priority, so on a busy machine the lock's holder could be
descheduled while the audio threads waited for it (a priority inversion): speaker to
speaker latency grew by tens of milliseconds with captions on (docs/benchmarks.md).

:class:`RecognizerProcess` is a :class:`~pnyx.media.recognizer.Recognizer` whose
``transcribe`` hands the window to a child process (``python -m
pnyx.media.recognizer_process``, at ``nice`` 19, the model loaded there once) and waits
for its phrases: the caller's thread blocks on a pipe, holding nothing. The protocol on
the child's stdin/stdout: the settings as one JSON line, answered ``{"ready": true}`` (or
``{"error": …}``: the model could not be loaded); then per window a 4-byte little-endian
length and that many bytes of float32 samples at 16 kHz, answered by one JSON line
``{"phrases": [[start, end, text], …]}`` or ``{"error": …}``. An empty window (length 0)
or the end of stdin ends the child, so it never outlives its node (its stdin closes when
the node dies, however it dies).

A child that dies, stops answering within ``timeout_s``, or cannot load its model makes
``transcribe`` raise :class:`RecognizerError`; the next call starts a new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import struct
import subprocess
import sys
import time
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from pnyx.media.recognizer import ModelError, Phrase, load_recognizer

NICE = 19
LOAD_TIMEOUT_S = 120.0  # loading the model (reading and checking its files) is the slow part
_LENGTH = struct.Struct("<I")


class RecognizerError(RuntimeError):
    """The recogniser's process failed, died or did not answer."""


class RecognizerProcess:
    def __init__(
        self,
        engine: str,
        model: str,
        *,
        language: str,
        threads: int,
        compute_type: str,
        timeout_s: float = 60.0,
    ) -> None:
        self._settings = {
            "engine": engine,
            "model": model,
            "language": language,
            "threads": threads,
            "compute_type": compute_type,
        }
        self._timeout = timeout_s
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def transcribe(self, audio: npt.NDArray[np.float32]) -> list[Phrase]:
        data = np.ascontiguousarray(audio, dtype="<f4").tobytes()
        if not data:
            return []
        proc = self._sent(data)
        assert proc.stdout is not None
        try:
            reply = _read_reply(proc.stdout, self._timeout)
        except (OSError, ValueError, TimeoutError) as exc:
            self.close()
            raise RecognizerError(f"the recogniser's process failed: {exc}") from exc
        if "error" in reply:
            raise RecognizerError(str(reply["error"]))
        return [Phrase(float(s), float(e), str(t)) for s, e, t in reply["phrases"]]

    def _sent(self, data: bytes) -> subprocess.Popen[bytes]:
        """The child, with ``data`` (a window) written to it. A child that died since the
        last window can still look alive (a killed process whose threads are still
        exiting is not reaped yet): its closed pipe is the sign, and a new child takes
        the window (once)."""
        for attempt in range(2):
            proc = self._running()
            assert proc.stdin is not None
            try:
                proc.stdin.write(_LENGTH.pack(len(data)) + data)
                proc.stdin.flush()
                return proc
            except OSError as exc:
                self.close()
                if attempt:
                    raise RecognizerError(f"the recogniser's process failed: {exc}") from exc
        raise AssertionError("unreachable")

    def _running(self) -> subprocess.Popen[bytes]:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            return proc
        self.close()
        proc = self._proc = subprocess.Popen(
            [sys.executable, "-m", "pnyx.media.recognizer_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(self._settings).encode() + b"\n")
            proc.stdin.flush()
            ready = _read_reply(proc.stdout, LOAD_TIMEOUT_S)
        except (OSError, ValueError, TimeoutError) as exc:
            self.close()
            raise RecognizerError(f"the recogniser's process did not start: {exc}") from exc
        if not ready.get("ready"):
            self.close()
            raise ModelError(str(ready.get("error", "the recogniser's process did not start")))
        return proc

    def close(self) -> None:
        """End the child (at once: whatever it was recognising is not wanted any more)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _read_reply(stdout: IO[bytes], timeout_s: float) -> dict[str, Any]:
    """One JSON line from the child, within ``timeout_s``."""
    fd = stdout.fileno()
    deadline = time.monotonic() + timeout_s
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no answer within {timeout_s:.0f} s")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            raise ValueError("the process ended")
        line += chunk
    reply = json.loads(line)
    if not isinstance(reply, dict):
        raise ValueError("not an answer")
    return reply


# -- the child ------------------------------------------------------------------------------


def _read_exactly(stream: IO[bytes], n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _answer(out: IO[bytes], reply: dict[str, Any]) -> None:
    out.write(json.dumps(reply).encode() + b"\n")
    out.flush()


def main() -> None:
    stdin = sys.stdin.buffer
    # The answers keep the real stdout; anything else written there (a library's print,
    # from Python or C) goes to stderr instead of corrupting them.
    stdout = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    with contextlib.suppress(OSError):  # not allowed: still correct, only less polite
        os.nice(NICE)
    settings = json.loads(stdin.readline() or "{}")
    try:
        recognizer = load_recognizer(
            settings["engine"],
            settings["model"],
            language=settings["language"],
            threads=int(settings["threads"]),
            compute_type=settings["compute_type"],
        )
    except Exception as exc:  # the parent says it in its log: the model's own message
        _answer(stdout, {"error": f"{type(exc).__name__}: {exc}"})
        return
    _answer(stdout, {"ready": True})
    while (head := _read_exactly(stdin, _LENGTH.size)) is not None:
        (length,) = _LENGTH.unpack(head)
        data = _read_exactly(stdin, length) if length else None
        if data is None:
            return
        try:
            phrases = recognizer.transcribe(np.frombuffer(data, dtype="<f4"))
        except Exception as exc:
            _answer(stdout, {"error": f"{type(exc).__name__}: {exc}"})
            continue
        _answer(stdout, {"phrases": [[p.start, p.end, p.text] for p in phrases]})


if __name__ == "__main__":
    main()
