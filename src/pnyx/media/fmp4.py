"""A minimal ISO-BMFF / CMAF writer for one AAC-LC audio track. Pure: bytes in, bytes out.

Two products:

* :func:`init_segment` — the CMAF header (``ftyp`` + ``moov``), served as ``init.mp4``
  (``EXT-X-MAP``). Its bytes depend only on its arguments, so every stage node (including
  the one that takes over after a failover) produces the identical header.
* :func:`fragment` — one CMAF chunk (``moof`` + ``mdat``, optionally led by ``styp``)
  holding whole AAC access units; an LL-HLS part is one such chunk.

Track id is 1; every fragment uses ``default-base-is-moof`` and a ``trun`` with per-sample
durations and sizes and a data offset into the following ``mdat``. Box layouts follow
ISO/IEC 14496-12 (boxes) and 14496-14 (``esds``); :func:`read_boxes` parses them back.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

TRACK_ID = 1
UNITY_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
LANGUAGE_UND = 0x55C4  # ISO-639-2 "und", 3x5 bits
HEADER_BRANDS = (b"iso6", b"cmfc")
SEGMENT_BRANDS = (b"msdh", b"cmfs")

# trun flags (14496-12 §8.8.8)
TRUN_DATA_OFFSET = 0x000001
TRUN_SAMPLE_DURATION = 0x000100
TRUN_SAMPLE_SIZE = 0x000200
TFHD_DEFAULT_BASE_IS_MOOF = 0x020000


def box(kind: bytes, *payload: bytes) -> bytes:
    """A plain box: 32-bit size, 4-character type, payload."""
    if len(kind) != 4:
        raise ValueError(f"box type must be 4 bytes, got {kind!r}")
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    """A full box: a box whose payload starts with an 8-bit version and 24-bit flags."""
    return box(kind, struct.pack(">I", (version << 24) | (flags & 0xFFFFFF)), *payload)


def _brands(kind: bytes, major: bytes, compatible: Iterable[bytes]) -> bytes:
    return box(kind, major, struct.pack(">I", 0), *compatible)


def _descriptor(tag: int, *payload: bytes) -> bytes:
    """An MPEG-4 descriptor (14496-1 §8.3.3): tag, expandable size, payload."""
    body = b"".join(payload)
    size, groups = len(body), []
    while True:
        groups.append(size & 0x7F)
        size >>= 7
        if not size:
            break
    encoded = bytes(g | (0x80 if i else 0) for i, g in reversed(list(enumerate(groups))))
    return bytes([tag]) + encoded + body


def _esds(audio_specific_config: bytes, bit_rate: int) -> bytes:
    decoder_config = _descriptor(
        0x04,
        # objectTypeIndication 0x40 (MPEG-4 Audio); streamType 5 (audio) << 2 | upStream 0 | 1
        struct.pack(">BB", 0x40, 0x15),
        (0).to_bytes(3, "big"),  # bufferSizeDB
        struct.pack(">II", bit_rate, bit_rate),  # maxBitrate, avgBitrate
        _descriptor(0x05, audio_specific_config),  # DecoderSpecificInfo
    )
    sl_config = _descriptor(0x06, b"\x02")  # predefined: reserved for MP4 files
    es = _descriptor(0x03, struct.pack(">HB", TRACK_ID, 0), decoder_config, sl_config)
    return full_box(b"esds", 0, 0, es)


def _mp4a(sample_rate: int, channels: int, audio_specific_config: bytes, bit_rate: int) -> bytes:
    if not 0 < sample_rate < 1 << 16:
        raise ValueError(f"sample rate {sample_rate} does not fit an AudioSampleEntry")
    return box(
        b"mp4a",
        bytes(6),  # SampleEntry reserved
        struct.pack(">H", 1),  # data_reference_index
        bytes(8),  # AudioSampleEntry reserved
        struct.pack(">HHHH", channels, 16, 0, 0),  # channelcount, samplesize, pre_defined, res.
        struct.pack(">I", sample_rate << 16),  # samplerate, 16.16
        _esds(audio_specific_config, bit_rate),
    )


def init_segment(
    sample_rate: int,
    channels: int,
    audio_specific_config: bytes,
    timescale: int = 48_000,
    bit_rate: int = 64_000,
) -> bytes:
    """``ftyp`` + ``moov`` for a fragmented file with one AAC audio track (no samples)."""
    mvhd = full_box(
        b"mvhd", 0, 0,
        struct.pack(">IIII", 0, 0, timescale, 0),  # creation, modification, timescale, duration
        struct.pack(">IH", 0x10000, 0x0100), bytes(10),  # rate 1.0, volume 1.0, reserved
        UNITY_MATRIX, bytes(24),  # matrix, pre_defined
        struct.pack(">I", TRACK_ID + 1),  # next_track_ID
    )  # fmt: skip
    tkhd = full_box(
        b"tkhd", 0, 0x000003,  # track enabled, in movie
        struct.pack(">IIIII", 0, 0, TRACK_ID, 0, 0),  # creation, modification, id, res., duration
        bytes(8), struct.pack(">HHHH", 0, 0, 0x0100, 0),  # reserved, layer, group, volume, res.
        UNITY_MATRIX, struct.pack(">II", 0, 0),  # matrix, width, height
    )  # fmt: skip
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, 0, LANGUAGE_UND, 0))
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I4s", 0, b"soun"), bytes(12), b"SoundHandler\0")
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
    stbl = box(
        b"stbl",
        full_box(
            b"stsd",
            0,
            0,
            struct.pack(">I", 1),
            _mp4a(sample_rate, channels, audio_specific_config, bit_rate),
        ),
        full_box(b"stts", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        full_box(b"stco", 0, 0, struct.pack(">I", 0)),
    )
    minf = box(b"minf", full_box(b"smhd", 0, 0, struct.pack(">HH", 0, 0)), dinf, stbl)
    trak = box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf))
    # trex: default sample description 1, no default duration/size/flags (trun carries them).
    mvex = box(b"mvex", full_box(b"trex", 0, 0, struct.pack(">IIIII", TRACK_ID, 1, 0, 0, 0)))
    return _brands(b"ftyp", HEADER_BRANDS[0], HEADER_BRANDS) + box(b"moov", mvhd, trak, mvex)


def fragment(
    sequence_number: int,
    base_media_decode_time: int,
    samples: Sequence[bytes],
    sample_duration: int | Sequence[int] = 1024,
    *,
    with_styp: bool = False,
) -> bytes:
    """One ``moof`` + ``mdat`` with ``samples`` (raw AAC access units), in decode order.

    ``sequence_number`` (``mfhd``) must increase from fragment to fragment;
    ``base_media_decode_time`` (``tfdt``, version 1) is the first sample's decode time in the
    track timescale. ``sample_duration`` is one duration for all samples or one per sample.
    """
    if not samples:
        raise ValueError("a fragment needs at least one sample")
    if isinstance(sample_duration, int):
        durations: Sequence[int] = [sample_duration] * len(samples)
    else:
        durations = sample_duration
    if len(durations) != len(samples):
        raise ValueError(f"{len(durations)} durations for {len(samples)} samples")
    entries = b"".join(
        struct.pack(">II", d, len(s)) for d, s in zip(durations, samples, strict=True)
    )

    def moof(data_offset: int) -> bytes:
        trun = full_box(
            b"trun", 0, TRUN_DATA_OFFSET | TRUN_SAMPLE_DURATION | TRUN_SAMPLE_SIZE,
            struct.pack(">Ii", len(samples), data_offset), entries,
        )  # fmt: skip
        traf = box(
            b"traf",
            full_box(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, struct.pack(">I", TRACK_ID)),
            full_box(b"tfdt", 1, 0, struct.pack(">Q", base_media_decode_time)),
            trun,
        )
        return box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", sequence_number)), traf)

    # The data offset is relative to the start of moof and points past the mdat header;
    # moof's size does not depend on the offset's value, so measure it once.
    size = len(moof(0))
    styp = _brands(b"styp", SEGMENT_BRANDS[0], SEGMENT_BRANDS) if with_styp else b""
    return styp + moof(size + 8) + box(b"mdat", *samples)


# Where fragment() (without styp) puts the fields renumbered() rewrites: moof's header
# (8), then mfhd's header and version/flags (12): the sequence number; then mfhd's
# 4 bytes, traf's header (8), tfhd (16: header, version/flags, track id) and tfdt's
# header and version/flags (12): the 64-bit decode time.
_MFHD_SEQUENCE_AT = 8 + 12
_TFDT_TIME_AT = _MFHD_SEQUENCE_AT + 4 + 8 + 16 + 12


def renumbered(fragment_bytes: bytes, sequence_number: int, base_media_decode_time: int) -> bytes:
    """A fragment made by :func:`fragment` (without ``styp``) with another sequence
    number and decode time: the same bytes :func:`fragment` would make for its samples
    (the packager reuses a part of silence so, instead of laying it out again)."""
    out = bytearray(fragment_bytes)
    struct.pack_into(">I", out, _MFHD_SEQUENCE_AT, sequence_number)
    struct.pack_into(">Q", out, _TFDT_TIME_AT, base_media_decode_time)
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Box:
    """A box found by :func:`read_boxes`: its type, where it starts and its payload."""

    kind: bytes
    offset: int
    size: int
    payload: bytes

    def children(self, header: int = 0) -> list[Box]:
        """Parse the payload as child boxes, after ``header`` bytes (4 for full boxes)."""
        return read_boxes(self.payload[header:], base=self.offset + 8 + header)


def read_boxes(data: bytes, base: int = 0) -> list[Box]:
    """Split ``data`` into consecutive boxes (no recursion); raise if sizes do not add up."""
    found: list[Box] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 8:
            raise ValueError(f"truncated box header at offset {base + pos}")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = len(data) - pos
        if size < header or pos + size > len(data):
            raise ValueError(f"box {kind!r} at offset {base + pos} has bad size {size}")
        found.append(Box(kind, base + pos, size, data[pos + header : pos + size]))
        pos += size
    return found


def rebase(fragments: bytes, first_sequence: int = 1) -> tuple[bytes, int]:
    """``fragments`` (``styp``/``moof``/``mdat`` boxes, as segments are stored) with their
    decode times shifted so the first starts at 0, and their ``mfhd`` sequence numbers
    renumbered from ``first_sequence``: the same samples, no re-encode, a file that plays
    from 0 on its own. Returns the bytes and the next sequence number. Only fixed-size
    fields are rewritten, so every offset stays valid."""
    out = bytearray(fragments)
    sequence = first_sequence
    shift: int | None = None
    for top in read_boxes(fragments):
        if top.kind != b"moof":
            continue
        for child in top.children():
            if child.kind == b"mfhd":
                struct.pack_into(">I", out, child.offset + 12, sequence)
                sequence += 1
            elif child.kind == b"traf":
                for leaf in child.children():
                    if leaf.kind != b"tfdt":
                        continue
                    version = leaf.payload[0]
                    fmt = ">Q" if version == 1 else ">I"
                    (time,) = struct.unpack_from(fmt, leaf.payload, 4)
                    if shift is None:
                        shift = time
                    struct.pack_into(fmt, out, leaf.offset + 12, max(0, time - shift))
    return bytes(out), sequence


def decode_start(fragments: bytes) -> int | None:
    """The first ``tfdt`` in ``fragments`` (track timescale), or None if there is none."""
    for top in read_boxes(fragments):
        if top.kind != b"moof":
            continue
        for child in top.children():
            if child.kind == b"traf":
                for leaf in child.children():
                    if leaf.kind == b"tfdt":
                        fmt = ">Q" if leaf.payload[0] == 1 else ">I"
                        return int(struct.unpack_from(fmt, leaf.payload, 4)[0])
    return None


def with_duration(header: bytes, duration: int) -> bytes:
    """``header`` (``ftyp`` + ``moov`` from :func:`init_segment`) stating ``duration``
    (in the timescale of ``mvhd``, which ``init_segment`` shares with the track): in
    ``mvhd``, ``tkhd`` and ``mdhd``, and as a ``mehd`` (the whole fragmented file's
    duration, 14496-12 §8.8.2), so that players show a finished file's length before
    reading it all. Raises ValueError on a header it does not know."""
    if not 0 <= duration < 1 << 32:
        raise ValueError(f"duration {duration} does not fit 32 bits")
    out = b""
    for top in read_boxes(header):
        if top.kind != b"moov":
            out += header[top.offset : top.offset + top.size]
            continue
        children = []
        for child in top.children():
            raw = bytearray(header[child.offset : child.offset + child.size])
            if child.kind == b"mvhd":
                _version0(child)
                struct.pack_into(">I", raw, 8 + 4 + 12, duration)  # after times and scale
            elif child.kind == b"trak":
                raw = bytearray(_trak_with_duration(header, child, duration))
            elif child.kind == b"mvex":
                mehd = full_box(b"mehd", 0, 0, struct.pack(">I", duration))
                kept = [header[b.offset : b.offset + b.size] for b in child.children()]
                raw = bytearray(box(b"mvex", mehd, *(k for k in kept if k[4:8] != b"mehd")))
            children.append(bytes(raw))
        out += box(b"moov", *children)
    return out


def _version0(full: Box) -> None:
    if full.payload[0] != 0:
        raise ValueError(f"{full.kind!r} version {full.payload[0]}: only version 0 is known")


def _trak_with_duration(data: bytes, trak: Box, duration: int) -> bytes:
    """The ``trak`` with ``tkhd`` and ``mdhd`` durations set (same sizes: patched)."""
    raw = bytearray(data[trak.offset : trak.offset + trak.size])
    base = trak.offset
    for child in trak.children():
        if child.kind == b"tkhd":
            _version0(child)
            # creation, modification, track id, reserved, then duration
            struct.pack_into(">I", raw, child.offset - base + 12 + 16, duration)
        elif child.kind == b"mdia":
            for leaf in child.children():
                if leaf.kind == b"mdhd":
                    _version0(leaf)
                    # creation, modification, timescale, then duration
                    struct.pack_into(">I", raw, leaf.offset - base + 12 + 12, duration)
    return bytes(raw)
