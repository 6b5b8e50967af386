"""Pure LL-HLS playlist reading for simulated players (no I/O, no clock).

Media time is the playlist's own clock: ``EXT-X-PROGRAM-DATE-TIME`` (seconds since the
epoch) of each segment, parts following one another from there. Every listener reading
the same playlist therefore agrees on where each part and segment sits, across reloads.

A :class:`Playlist` lists the units a player fetches in each mode:

* ``low_units`` — what a low-latency player (hls.js ``lowLatencyMode``) loads: the parts
  of every segment the playlist still lists parts for, whole segments before those;
* ``standard_units`` — whole segments only.

URIs come out resolved against the playlist's directory, as encoded request paths.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from datetime import datetime

_HINT = re.compile(r"(\d+)\.(\d+)\.m4s$")
_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


@dataclass(frozen=True, slots=True)
class Unit:
    """A part or a segment: media time [start, end) and the path to GET it."""

    start: float
    end: float
    path: bytes
    is_part: bool


@dataclass(frozen=True, slots=True)
class Playlist:
    target_duration: float
    part_target: float | None
    part_hold_back: float | None
    media_sequence: int
    init_path: bytes | None
    low_units: tuple[Unit, ...]
    standard_units: tuple[Unit, ...]
    hint: tuple[int, int] | None  # (msn, part) of EXT-X-PRELOAD-HINT
    next_msn: int  # the first segment not yet complete
    ended: bool

    @property
    def edge(self) -> float:
        """Media time of the newest sample listed (end of the last part or segment)."""
        ends = [u[-1].end for u in (self.low_units, self.standard_units) if u]
        return max(ends) if ends else 0.0

    @property
    def segment_edge(self) -> float:
        return self.standard_units[-1].end if self.standard_units else 0.0

    def units(self, low_latency: bool) -> tuple[Unit, ...]:
        return self.low_units if low_latency else self.standard_units

    def next_after(self, position: float, low_latency: bool, eps: float = 0.01) -> Unit | None:
        """The first unit (in this mode) that ends after ``position``: what to fetch
        next when everything up to ``position`` is buffered."""
        for unit in self.units(low_latency):
            if unit.end > position + eps:
                return unit
        return None

    def can_start(self, low_latency: bool, eps: float = 0.05) -> bool:
        """Whether the playlist reaches back to where a player joining now starts: a
        young stream has less than the hold-back behind its live edge, and a player must
        not start closer to the edge than that (RFC 8216bis, HOLD-BACK/PART-HOLD-BACK)."""
        start = self.start_position(low_latency)
        first = self.next_after(start, low_latency)
        return first is not None and first.start <= start + eps

    def start_position(self, low_latency: bool) -> float:
        """Where a player joining now starts: PART-HOLD-BACK behind the live edge
        (low latency), three target durations behind the last segment (standard)."""
        if low_latency and self.low_units:
            hold = self.part_hold_back
            if hold is None:
                hold = 3 * (self.part_target or self.target_duration)
            return self.edge - hold
        return self.segment_edge - 3 * self.target_duration


def _attrs(text: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in _ATTR.findall(text)}


def _pdt(text: str) -> float:
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()


def resolve(base_dir: bytes, uri: str) -> bytes:
    """``uri`` relative to the playlist's directory (absolute paths kept)."""
    if uri.startswith("/"):
        return uri.encode()
    if "://" in uri:
        # an absolute URL: keep its path (the load generator talks to one host)
        rest = uri.split("://", 1)[1]
        return ("/" + rest.split("/", 1)[1]).encode() if "/" in rest else b"/"
    return base_dir + uri.encode()


def parse(text: str, base_dir: bytes) -> Playlist:
    """Read an (LL-)HLS media playlist; ``base_dir`` is the playlist URL's directory path,
    ending in ``/``. Raises ValueError on something that is not a playlist."""
    if not text.startswith("#EXTM3U"):
        raise ValueError("not an HLS playlist")
    target = 0.0
    part_target: float | None = None
    hold_back: float | None = None
    msn0 = 0
    init: bytes | None = None
    hint: tuple[int, int] | None = None
    ended = False
    low: list[Unit] = []
    standard: list[Unit] = []
    open_parts: list[Unit] = []
    t: float | None = None  # media time of the next sample
    seg_start: float | None = None
    extinf: float | None = None
    segments = 0
    for line in text.splitlines():
        if not line:
            continue
        if line[0] != "#":  # a segment URI
            if extinf is None:
                raise ValueError(f"segment without EXTINF: {line}")
            start = seg_start if seg_start is not None else (t if t is not None else 0.0)
            seg = Unit(start, start + extinf, resolve(base_dir, line), False)
            standard.append(seg)
            if open_parts:
                low.extend(open_parts)
            else:
                low.append(seg)
            open_parts = []
            t = seg.end
            seg_start = None
            extinf = None
            segments += 1
        elif line.startswith("#EXT-X-PART:"):
            a = _attrs(line[12:])
            dur = float(a["DURATION"])
            if t is None:
                t = 0.0
            if seg_start is None:
                seg_start = t
            open_parts.append(Unit(t, t + dur, resolve(base_dir, a["URI"]), True))
            t += dur
        elif line.startswith("#EXTINF:"):
            extinf = float(line[8:].split(",", 1)[0])
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            t = _pdt(line[25:])
            seg_start = t
        elif line.startswith("#EXT-X-PRELOAD-HINT:"):
            found = _HINT.search(_attrs(line[20:]).get("URI", ""))
            if found:
                hint = (int(found.group(1)), int(found.group(2)))
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            target = float(line[22:])
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            msn0 = int(line[22:])
        elif line.startswith("#EXT-X-MAP:"):
            uri = _attrs(line[11:]).get("URI")
            init = resolve(base_dir, uri) if uri else None
        elif line.startswith("#EXT-X-PART-INF:"):
            part_target = float(_attrs(line[16:])["PART-TARGET"])
        elif line.startswith("#EXT-X-SERVER-CONTROL:"):
            phb = _attrs(line[22:]).get("PART-HOLD-BACK")
            hold_back = float(phb) if phb else None
        elif line.startswith("#EXT-X-ENDLIST"):
            ended = True
    low.extend(open_parts)
    return Playlist(
        target_duration=target,
        part_target=part_target,
        part_hold_back=hold_back,
        media_sequence=msn0,
        init_path=init,
        low_units=tuple(low),
        standard_units=tuple(standard),
        hint=hint,
        next_msn=msn0 + segments,
        ended=ended,
    )


GZIP_MAGIC = b"\x1f\x8b"  # playlists come gzipped, as to a browser (a playlist is text)


class ParseCache:
    """Every listener reads the same few playlists: parse (and unzip) each distinct body
    once."""

    def __init__(self, base_dir: bytes, size: int = 16) -> None:
        self.base_dir = base_dir
        self.size = size
        self._cache: dict[bytes, Playlist] = {}
        self.parsed = 0

    def get(self, body: bytes) -> Playlist:
        found = self._cache.get(body)
        if found is None:
            text = gzip.decompress(body) if body[:2] == GZIP_MAGIC else body
            found = parse(text.decode("utf-8", "replace"), self.base_dir)
            self.parsed += 1
            if len(self._cache) >= self.size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[body] = found
        return found
