"""Cutting a clip out of finished segments without re-encoding: decode times rebased to
start at zero, sequence numbers renumbered, the duration stated in the header; and the
result plays from 0 with the original samples (ffprobe says how long it is)."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import numpy as np

from pnyx.media import fmp4
from pnyx.media.aac import audio_specific_config
from pnyx.media.fmp4 import fragment, init_segment, read_boxes
from tests.support.procs import require_binary

from .test_fmp4 import child, decode_file, encode_tone

ASC = audio_specific_config(48_000, 1)


def times(data: bytes) -> list[tuple[int, int]]:
    """(sequence number, decode time) of each fragment."""
    out = []
    for top in read_boxes(data):
        if top.kind == b"moof":
            (seq,) = struct.unpack(">I", child(top, b"mfhd").payload[4:8])
            tfdt = child(child(top, b"traf"), b"tfdt")
            (t,) = struct.unpack(">Q", tfdt.payload[4:12])
            out.append((seq, t))
    return out


def segments(units: list[bytes], first: int, count: int, per: int = 15) -> bytes:
    """Fragments ``first`` .. ``first+count-1`` of ``per`` units, as a live stream
    would have numbered and timed them."""
    return b"".join(
        fragment(n + 1, n * per * 1024, units[n * per : (n + 1) * per], with_styp=True)
        for n in range(first, first + count)
    )


def test_rebase_starts_at_zero_and_renumbers() -> None:
    units = encode_tone(1000.0, 3.0)
    late = segments(units, 4, 3)
    assert times(late) == [(5, 4 * 15 * 1024), (6, 5 * 15 * 1024), (7, 6 * 15 * 1024)]
    rebased, after = fmp4.rebase(late)
    assert times(rebased) == [(1, 0), (2, 15 * 1024), (3, 2 * 15 * 1024)]
    assert after == 4 and len(rebased) == len(late)
    assert fmp4.decode_start(late) == 4 * 15 * 1024
    assert fmp4.decode_start(b"") is None


def test_a_clip_plays_from_zero_with_its_duration(tmp_path: Path) -> None:
    units = encode_tone(1000.0, 3.0)
    body, _ = fmp4.rebase(segments(units, 3, 4))  # 4 x 0.32 s, from 0.96 s in
    seconds = 4 * 15 * 1024 / 48_000
    header = fmp4.with_duration(init_segment(48_000, 1, ASC), 4 * 15 * 1024)
    moov = next(b for b in read_boxes(header) if b.kind == b"moov")
    mehd = child(child(moov, b"mvex"), b"mehd")
    assert struct.unpack(">I", mehd.payload[4:8]) == (4 * 15 * 1024,)
    path = tmp_path / "clip.m4a"
    path.write_bytes(header + body)

    pcm = decode_file(path)
    assert len(pcm) == 4 * 15 * 1024
    assert np.max(np.abs(pcm[4096:])) > 0.1
    probe = subprocess.run(
        [require_binary("ffprobe"), "-v", "error", "-show_format", "-show_streams",
         "-of", "json", str(path)],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert (probe.returncode, probe.stderr) == (0, "")
    info = json.loads(probe.stdout)
    assert abs(float(info["format"]["duration"]) - seconds) < 0.03, info["format"]
    assert float(info["streams"][0].get("start_time", 0)) == 0.0
