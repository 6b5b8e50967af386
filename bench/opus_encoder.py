"""What one 20 ms Opus frame costs to encode, by application and complexity, and how
close the decoded waveform stays: the measurement behind the mix-minus encoder's
settings (``media/opus.py``: the ``audio`` application, ``mix_minus_complexity`` 5).

Signals: espeak-ng speech (as the tests use), six steady tones (as the stage benches'
speakers send), and both together. For each setting the encoder runs over the whole
signal ``--rounds`` times (libopus through ctypes, as Pnyx calls it; the thread's CPU
time); the median round is reported, with the bit rate it produced and the waveform SNR
of the decoded speech (best alignment over the codec's delay): a crude distance, not a
listening test, but it tells a mode that keeps the waveform from one that filters it.

    .venv/bin/python bench/opus_encoder.py [--rounds 5] [--bit-rate 64000]
"""

from __future__ import annotations

import argparse
import ctypes
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from latency_support import machine, speech
from pnyx.loadtest.stats import percentile
from pnyx.media.opus import OpusDecoder, _libopus

FRAME = 960
APPLICATIONS = {"voip": 2048, "audio": 2049}  # opus_defines.h
SET_BITRATE, SET_COMPLEXITY = 4002, 4010
TEXT = (
    "The quick brown fox jumps over the lazy dog while the stage keeps talking about "
    "live audio, latency and the people listening"
)

Signal = npt.NDArray[np.float32]


def encode(signal: Signal, application: int, complexity: int, bit_rate: int) -> tuple[float, bytes]:
    """Thread CPU seconds per frame, and the packets (length-prefixed, concatenated)."""
    lib = _libopus()
    error = ctypes.c_int()
    state = lib.opus_encoder_create(48_000, 1, application, ctypes.byref(error))
    lib.opus_encoder_ctl(state, SET_BITRATE, bit_rate)
    lib.opus_encoder_ctl(state, SET_COMPLEXITY, complexity)
    out = ctypes.create_string_buffer(1500)
    frames = len(signal) // FRAME
    packets = []
    began = time.thread_time()
    for i in range(frames):
        n = lib.opus_encode_float(state, signal[i * FRAME :].ctypes.data, FRAME, out, 1500)
        packets.append(ctypes.string_at(out, n))
    spent = (time.thread_time() - began) / frames
    lib.opus_encoder_destroy(state)
    return spent, b"".join(len(p).to_bytes(2, "big") + p for p in packets)


def snr_db(signal: Signal, stream: bytes) -> float:
    decoder = OpusDecoder()
    out, i = [], 0
    while i < len(stream):
        n = int.from_bytes(stream[i : i + 2], "big")
        out.append(decoder.decode(stream[i + 2 : i + 2 + n]))
        i += 2 + n
    y = np.concatenate(out).astype(np.float64)
    x = signal[: len(y)].astype(np.float64)
    best = -np.inf
    for lag in range(1000):  # the codec's delay is a few ms
        yy = y[lag:]
        xx = x[: len(yy)]
        best = max(best, 10 * np.log10(np.sum(xx**2) / max(np.sum((xx - yy) ** 2), 1e-12)))
    return float(best)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--bit-rate", type=int, default=64_000)
    args = ap.parse_args()
    if not 1 <= args.rounds <= 50:
        ap.error("--rounds must be 1 to 50")
    with tempfile.TemporaryDirectory() as folder:
        voice = speech.say(TEXT, Path(folder)).astype(np.float32)
    t = np.arange(len(voice)) / 48_000
    tones = sum(0.05 * np.sin(2 * np.pi * f * t) for f in (300, 450, 600, 750, 900, 1050))
    signals = {
        "speech": voice,
        "tones": np.asarray(tones, np.float32),
        "speech+tones": np.asarray(0.6 * voice + tones, np.float32),
    }
    seconds = len(voice) / 48_000
    print(f"machine: {machine()}")
    print(f"bit rate {args.bit_rate}; {seconds:.1f} s of each signal; median of {args.rounds}")
    print(
        "| application | complexity | "
        + " | ".join(f"{k} µs/frame" for k in signals)
        + " | speech kbit/s | speech SNR dB |"
    )
    print("| --- | --- |" + " --- |" * (len(signals) + 2))
    for app_name, app in APPLICATIONS.items():
        for complexity in (10, 8, 5, 4, 2, 0):
            costs = []
            stream = b""
            for name, signal in signals.items():
                rounds = []
                for _ in range(args.rounds):
                    spent, packets = encode(signal, app, complexity, args.bit_rate)
                    rounds.append(spent)
                    if name == "speech":
                        stream = packets
                costs.append(percentile(rounds, 0.5) * 1e6)
            frames = len(voice) // FRAME
            payload = len(stream) - 2 * frames
            kbps = payload * 8 / (frames * 0.02) / 1000
            cells = " | ".join(f"{c:.0f}" for c in costs)
            snr = snr_db(voice, stream)
            print(f"| {app_name} | {complexity} | {cells} | {kbps:.0f} | {snr:.1f} |")


if __name__ == "__main__":
    main()
