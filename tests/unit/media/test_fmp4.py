from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from pnyx.media import fmp4
from pnyx.media.aac import AacEncoder, audio_specific_config
from pnyx.media.fmp4 import Box, box, fragment, full_box, init_segment, read_boxes

from .golden import check_golden
from .signals import dominant_frequency, tone

ASC = audio_specific_config(48_000, 1)


def child(parent: Box, kind: bytes, header: int = 0) -> Box:
    (found,) = [b for b in parent.children(header) if b.kind == kind]
    return found


def kinds(boxes: list[Box]) -> list[bytes]:
    return [b.kind for b in boxes]


def test_box_helpers() -> None:
    assert box(b"free", b"ab") == b"\x00\x00\x00\x0afreeab"
    assert full_box(b"tfdt", 1, 0x020001, b"") == b"\x00\x00\x00\x0ctfdt\x01\x02\x00\x01"
    with pytest.raises(ValueError, match="4 bytes"):
        box(b"abc")


def test_descriptor_sizes_use_the_expandable_encoding() -> None:
    assert fmp4._descriptor(0x05, b"\x11\x88") == b"\x05\x02\x11\x88"
    big = fmp4._descriptor(0x05, bytes(200))
    assert big[:3] == b"\x05\x81\x48"  # 200 = 1·128 + 72
    assert len(big) == 203


def test_init_segment_layout() -> None:
    data = init_segment(48_000, 1, ASC)
    top = read_boxes(data)
    assert kinds(top) == [b"ftyp", b"moov"]
    assert sum(b.size for b in top) == len(data)
    assert top[0].payload[:4] == b"iso6"
    assert b"cmfc" in top[0].payload

    moov = top[1]
    assert kinds(moov.children()) == [b"mvhd", b"trak", b"mvex"]
    trak = child(moov, b"trak")
    assert kinds(trak.children()) == [b"tkhd", b"mdia"]
    mdia = child(trak, b"mdia")
    assert kinds(mdia.children()) == [b"mdhd", b"hdlr", b"minf"]
    (timescale,) = struct.unpack_from(">I", child(mdia, b"mdhd").payload, 12)
    assert timescale == 48_000
    assert child(mdia, b"hdlr").payload[8:12] == b"soun"
    minf = child(mdia, b"minf")
    assert kinds(minf.children()) == [b"smhd", b"dinf", b"stbl"]
    stbl = child(minf, b"stbl")
    assert kinds(stbl.children()) == [b"stsd", b"stts", b"stsc", b"stsz", b"stco"]
    mp4a = child(child(stbl, b"stsd"), b"mp4a", header=8)
    channels, bits = struct.unpack_from(">HH", mp4a.payload, 16)
    (rate,) = struct.unpack_from(">I", mp4a.payload, 24)
    assert (channels, bits, rate >> 16) == (1, 16, 48_000)
    esds = child(mp4a, b"esds", header=28)
    assert esds.payload.endswith(b"\x05\x02\x11\x88\x06\x01\x02")  # ASC, then SLConfig
    trex = child(child(moov, b"mvex"), b"trex")
    assert struct.unpack(">IIIII", trex.payload[4:]) == (1, 1, 0, 0, 0)


def test_init_segment_golden_bytes() -> None:
    data = init_segment(48_000, 1, ASC)
    lines = [data[i : i + 16].hex(" ", 4) for i in range(0, len(data), 16)]
    check_golden("init_48000_mono.hex", "\n".join(lines) + "\n")


def test_fragment_layout_and_data_offset() -> None:
    samples = [b"\x01" * 10, b"\x02" * 7, b"\x03" * 12]
    data = fragment(7, 123_456_789_012, samples)
    moof, mdat = read_boxes(data)
    assert (moof.kind, mdat.kind) == (b"moof", b"mdat")
    assert mdat.payload == b"".join(samples)

    assert kinds(moof.children()) == [b"mfhd", b"traf"]
    assert struct.unpack(">I", child(moof, b"mfhd").payload[4:]) == (7,)
    traf = child(moof, b"traf")
    assert kinds(traf.children()) == [b"tfhd", b"tfdt", b"trun"]
    tfhd = child(traf, b"tfhd").payload
    assert struct.unpack(">II", tfhd) == (0x020000, 1)  # default-base-is-moof, track 1
    tfdt = child(traf, b"tfdt").payload
    assert tfdt[0] == 1
    assert struct.unpack(">Q", tfdt[4:]) == (123_456_789_012,)
    trun = child(traf, b"trun").payload
    flags, count, offset = struct.unpack_from(">IIi", trun)
    assert (flags, count) == (0x000301, 3)
    entries = [struct.unpack_from(">II", trun, 12 + 8 * i) for i in range(count)]
    assert entries == [(1024, 10), (1024, 7), (1024, 12)]
    assert offset == moof.size + 8
    assert data[moof.offset + offset :][:10] == samples[0]


def test_fragment_with_styp_and_per_sample_durations() -> None:
    data = fragment(1, 0, [b"ab", b"cd"], [1024, 960], with_styp=True)
    styp, moof, _mdat = read_boxes(data)
    assert styp.kind == b"styp"
    assert styp.payload[:4] == b"msdh"
    trun = child(child(moof, b"traf"), b"trun").payload
    (offset,) = struct.unpack_from(">i", trun, 8)
    assert data[moof.offset + offset :] == b"abcd"  # offset counts from moof, not styp
    assert struct.unpack_from(">IIII", trun, 12) == (1024, 2, 960, 2)


@pytest.mark.parametrize("durations", [1024, [1024, 512, 1024]])
def test_a_renumbered_fragment_is_the_fragment_made_afresh(durations: int | list[int]) -> None:
    samples = [b"\x01\x40\x20\x07", b"\xff" * 300, b"\x00"]
    made = fragment(7, 3 * 48_000, samples, durations)
    for sequence, decode_time in [(8, 3 * 48_000 + 2560), (2**32 - 1, 2**40 + 5), (0, 0)]:
        again = fmp4.renumbered(made, sequence, decode_time)
        assert again == fragment(sequence, decode_time, samples, durations)
    assert made == fragment(7, 3 * 48_000, samples, durations)  # not touched


def test_fragment_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="at least one"):
        fragment(1, 0, [])
    with pytest.raises(ValueError, match="durations"):
        fragment(1, 0, [b"a", b"b"], [1024])


def test_read_boxes_catches_bad_sizes() -> None:
    with pytest.raises(ValueError, match="bad size"):
        read_boxes(b"\x00\x00\x00\x10free1234")
    with pytest.raises(ValueError, match="truncated"):
        read_boxes(b"\x00\x00\x00")


def encode_tone(freq: float, seconds: float) -> list[bytes]:
    encoder = AacEncoder()
    units: list[bytes] = []
    frames = int(seconds * 50)
    for n in range(frames):
        units += encoder.encode(tone(freq, 960, 0.5, start=n * 960))
    return units + encoder.flush()


def decode_file(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        (stream,) = container.streams.audio
        assert (stream.codec_context.name, stream.codec_context.sample_rate) == ("aac", 48_000)
        chunks = [frame.to_ndarray()[0] for frame in container.decode(stream)]
    return np.concatenate(chunks)


def test_aac_in_fmp4_plays_back(tmp_path: Path) -> None:
    units = encode_tone(1000.0, 2.0)
    parts = [units[i : i + 15] for i in range(0, len(units), 15)]
    body = b"".join(
        fragment(n + 1, n * 15 * 1024, chunk, with_styp=n == 0) for n, chunk in enumerate(parts)
    )
    path = tmp_path / "tone.mp4"
    path.write_bytes(init_segment(48_000, 1, ASC) + body)

    pcm = decode_file(path)
    assert len(pcm) == len(units) * 1024
    assert abs(dominant_frequency(pcm) - 1000.0) <= 10.0
    assert 0.3 < float(np.max(np.abs(pcm[4096:-4096]))) < 0.6

    ffprobe = shutil.which("ffprobe") or "/usr/bin/ffprobe"
    probe = subprocess.run(
        [ffprobe, "-v", "error", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert probe.returncode == 0
    assert probe.stderr == ""
    (stream,) = json.loads(probe.stdout)["streams"]
    assert (stream["codec_name"], stream["profile"]) == ("aac", "LC")
    assert (stream["sample_rate"], stream["channels"]) == ("48000", 1)
    ffmpeg = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
    decode = subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert (decode.returncode, decode.stderr) == (0, "")
