"""The front row's wire message: a few 20 ms Opus frames of a space's program, as one
binary WebSocket message (sans-IO: bytes in, values out; docs/conventions.md, rule 1).

Layout, big-endian::

    offset 0   u8   version (1)
    offset 1   u8   frame count n (1-255)
    offset 2   u32  sequence number of the message (per space, +1 per message, wraps)
    offset 6   u64  program media time of the first frame, in 48 kHz samples: the same
                    timeline as the LL-HLS stream's decode times (``tfdt``), so a player
                    can line the two up
    offset 14  n * (u16 length, that many bytes of one Opus packet: mono, 20 ms)

Frame ``i`` starts at ``media_time + i * 960``. A receiver that sees a sequence number
jump has lost messages (it conceals, or realigns on the media time).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

VERSION = 1
FRAME_SAMPLES = 960  # 20 ms at 48 kHz
SAMPLE_RATE = 48_000
_HEAD = struct.Struct(">BBIQ")
_LEN = struct.Struct(">H")
HEADER_BYTES = _HEAD.size  # 14


class BadMessage(ValueError):
    """Bytes that are not a front-row message of this version."""


@dataclass(frozen=True, slots=True)
class FrontRowMessage:
    seq: int
    media_time: int  # samples at 48 kHz, of the first frame
    frames: tuple[bytes, ...]  # Opus packets, 20 ms each

    @property
    def end_time(self) -> int:
        return self.media_time + len(self.frames) * FRAME_SAMPLES


def encode(seq: int, media_time: int, frames: tuple[bytes, ...] | list[bytes]) -> bytes:
    if not 1 <= len(frames) <= 255:
        raise ValueError("a message carries 1 to 255 frames")
    if media_time < 0:
        raise ValueError("media_time must be >= 0")
    parts = [_HEAD.pack(VERSION, len(frames), seq & 0xFFFFFFFF, media_time)]
    for frame in frames:
        if not 0 < len(frame) <= 0xFFFF:
            raise ValueError("an Opus frame is 1 to 65535 bytes")
        parts.append(_LEN.pack(len(frame)))
        parts.append(frame)
    return b"".join(parts)


def decode(data: bytes) -> FrontRowMessage:
    if len(data) < HEADER_BYTES:
        raise BadMessage(f"{len(data)} bytes: shorter than the {HEADER_BYTES}-byte header")
    version, count, seq, media_time = _HEAD.unpack_from(data)
    if version != VERSION:
        raise BadMessage(f"version {version}, expected {VERSION}")
    if count == 0:
        raise BadMessage("a message with no frames")
    frames = []
    at = HEADER_BYTES
    for _ in range(count):
        if at + 2 > len(data):
            raise BadMessage("truncated: a frame length is missing")
        (size,) = _LEN.unpack_from(data, at)
        at += 2
        if size == 0 or at + size > len(data):
            raise BadMessage("truncated or empty frame")
        frames.append(bytes(data[at : at + size]))
        at += size
    if at != len(data):
        raise BadMessage(f"{len(data) - at} bytes after the last frame")
    return FrontRowMessage(seq, media_time, tuple(frames))
