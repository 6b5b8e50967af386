"""A listener that does what an LL-HLS player does, with httpx: reload the live playlist
with blocking requests (``_HLS_msn``/``_HLS_part``), fetch the init segment and every new
part in order as soon as it is listed, and decode what it fetched with PyAV to float
samples — keeping, for every part, when it was asked for and when it arrived, so that the
tests can check continuity and the benches can measure latency.

Only the public protocol is used (playlists and media URLs, RFC 8216bis); nothing here
imports the server.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import re
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import av
import httpx
import numpy as np
import numpy.typing as npt

RATE = 48_000


# -- playlists ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartEntry:
    msn: int
    index: int
    duration: float
    uri: str


@dataclass(frozen=True, slots=True)
class SegmentEntry:
    msn: int
    duration: float
    uri: str
    parts: tuple[PartEntry, ...]
    discontinuity: bool


@dataclass(frozen=True, slots=True)
class Playlist:
    text: str
    version: int | None
    target_duration: float | None
    media_sequence: int
    init_uri: str | None
    segments: tuple[SegmentEntry, ...]  # completed segments, oldest first
    open_parts: tuple[PartEntry, ...]  # parts of the segment in progress
    preload_hint: str | None
    part_target: float | None
    part_hold_back: float | None
    can_block_reload: bool
    ended: bool
    vod: bool
    can_skip_until: float | None = None  # CAN-SKIP-UNTIL: delta updates offered
    skipped_segments: int = 0  # a delta update: EXT-X-SKIP stood for this many first segments

    @property
    def parts(self) -> list[PartEntry]:
        """Every part listed, in order (completed segments' parts, then the open ones)."""
        return [p for s in self.segments for p in s.parts] + list(self.open_parts)

    @property
    def next_msn(self) -> int:
        return self.media_sequence + self.skipped_segments + len(self.segments)


_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def _attrs(value: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in _ATTR.findall(value)}


def parse_playlist(text: str) -> Playlist:
    """Parse a media playlist (live LL-HLS, plain live, or VOD). Strict where it matters to
    the tests: the first line must be #EXTM3U and every segment must have an #EXTINF."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise ValueError(f"not a playlist: {text[:80]!r}")
    version = target = part_target = part_hold_back = None
    media_sequence = 0
    init_uri = hint = None
    can_block = ended = vod = False
    can_skip_until: float | None = None
    skipped = 0
    segments: list[SegmentEntry] = []
    pending_parts: list[PartEntry] = []
    extinf: float | None = None
    discontinuity = False
    for line in lines[1:]:
        tag, _, value = line.partition(":")
        if tag == "#EXT-X-VERSION":
            version = int(value)
        elif tag == "#EXT-X-TARGETDURATION":
            target = float(value)
        elif tag == "#EXT-X-MEDIA-SEQUENCE":
            media_sequence = int(value)
        elif tag == "#EXT-X-MAP":
            init_uri = _attrs(value)["URI"]
        elif tag == "#EXT-X-PART-INF":
            part_target = float(_attrs(value)["PART-TARGET"])
        elif tag == "#EXT-X-SERVER-CONTROL":
            control = _attrs(value)
            can_block = control.get("CAN-BLOCK-RELOAD") == "YES"
            if "PART-HOLD-BACK" in control:
                part_hold_back = float(control["PART-HOLD-BACK"])
            if "CAN-SKIP-UNTIL" in control:
                can_skip_until = float(control["CAN-SKIP-UNTIL"])
        elif tag == "#EXT-X-SKIP":
            if skipped or segments or pending_parts:
                raise ValueError("EXT-X-SKIP must come once, before the first segment")
            skipped = int(_attrs(value)["SKIPPED-SEGMENTS"])
        elif tag == "#EXT-X-PRELOAD-HINT":
            hint = _attrs(value)["URI"]
        elif tag == "#EXT-X-ENDLIST":
            ended = True
        elif tag == "#EXT-X-PLAYLIST-TYPE":
            vod = value == "VOD"
        elif tag == "#EXT-X-DISCONTINUITY":
            discontinuity = True
        elif tag == "#EXTINF":
            extinf = float(value.split(",")[0])
        elif tag == "#EXT-X-PART":
            a = _attrs(value)
            msn = media_sequence + skipped + len(segments)
            pending_parts.append(PartEntry(msn, len(pending_parts), float(a["DURATION"]), a["URI"]))
        elif not line.startswith("#"):
            if extinf is None:
                raise ValueError(f"segment {line!r} without #EXTINF")
            msn = media_sequence + skipped + len(segments)
            segments.append(SegmentEntry(msn, extinf, line, tuple(pending_parts), discontinuity))
            pending_parts, extinf, discontinuity = [], None, False
    return Playlist(
        text=text,
        version=version,
        target_duration=target,
        media_sequence=media_sequence,
        init_uri=init_uri,
        segments=tuple(segments),
        open_parts=tuple(pending_parts),
        preload_hint=hint,
        part_target=part_target,
        part_hold_back=part_hold_back,
        can_block_reload=can_block,
        ended=ended,
        vod=vod,
        can_skip_until=can_skip_until,
        skipped_segments=skipped,
    )


# -- fMP4 --------------------------------------------------------------------------------


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in ``data[start:end]``."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError(f"truncated or corrupt box {kind!r} at {pos}")
        yield kind, pos + header, pos + size
        pos += size


def fragment_times(data: bytes) -> tuple[int, int]:
    """(baseMediaDecodeTime, total sample duration) of the first fragment in ``data``,
    read from its ``tfdt`` and ``trun`` (falling back on ``tfhd``'s default duration)."""
    for kind, a, b in _boxes(data):
        if kind != b"moof":
            continue
        for kind2, c, d in _boxes(data, a, b):
            if kind2 != b"traf":
                continue
            decode_time = None
            default_duration = 0
            duration = 0
            for kind3, e, _f in _boxes(data, c, d):
                version, flags = data[e], int.from_bytes(data[e + 1 : e + 4], "big")
                if kind3 == b"tfdt":
                    fmt = ">Q" if version == 1 else ">I"
                    (decode_time,) = struct.unpack_from(fmt, data, e + 4)
                elif kind3 == b"tfhd":
                    pos = e + 8  # version/flags, track_ID
                    pos += 8 if flags & 0x01 else 0  # base-data-offset
                    pos += 4 if flags & 0x02 else 0  # sample-description-index
                    if flags & 0x08:
                        (default_duration,) = struct.unpack_from(">I", data, pos)
                elif kind3 == b"trun":
                    (count,) = struct.unpack_from(">I", data, e + 4)
                    pos = e + 8 + (4 if flags & 0x01 else 0) + (4 if flags & 0x04 else 0)
                    per_sample = sum(4 for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit)
                    for _ in range(count):
                        if flags & 0x100:
                            duration += struct.unpack_from(">I", data, pos)[0]
                        else:
                            duration += default_duration
                        pos += per_sample
            if decode_time is None:
                raise ValueError("fragment without tfdt")
            return int(decode_time), duration
    raise ValueError("no moof in fragment")


@dataclass
class Decoded:
    """Decoded audio on the stream's decode timeline (timescale ``rate``)."""

    samples: npt.NDArray[np.float32]
    rate: int
    start: int  # decode time of samples[0], in 1/rate units

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate

    def between(self, t0: int, t1: int) -> npt.NDArray[np.float32]:
        """Samples with decode times in [t0, t1)."""
        a = max(0, t0 - self.start)
        b = max(a, min(len(self.samples), t1 - self.start))
        return self.samples[a:b]


def decode_fmp4(data: bytes) -> Decoded:
    """Decode an init segment followed by fragments (or a whole MP4/M4A file) with PyAV.

    Samples are placed on the decode timeline by each frame's pts (from the fragments'
    tfdt), so that a part's samples can be found by its decode time; a hole in the
    timeline is filled with silence rather than closing up.
    """
    chunks: list[tuple[int, npt.NDArray[np.float32]]] = []
    rate = RATE
    with av.open(io.BytesIO(data), mode="r", format="mp4") as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or RATE
        for frame in container.decode(stream):
            pcm = frame.to_ndarray()
            mono = (
                pcm[0] if frame.format.is_planar else pcm.reshape(-1)[:: frame.layout.nb_channels]
            )
            pts = int(frame.pts * frame.time_base * rate) if frame.pts is not None else None
            if pts is None:
                pts = chunks[-1][0] + len(chunks[-1][1]) if chunks else 0
            chunks.append((pts, np.asarray(mono, dtype=np.float32)))
    if not chunks:
        return Decoded(np.zeros(0, dtype=np.float32), rate, 0)
    start = chunks[0][0]
    end = max(t + len(c) for t, c in chunks)
    out = np.zeros(end - start, dtype=np.float32)
    for t, c in chunks:
        out[t - start : t - start + len(c)] = c
    return Decoded(out, rate, start)


# -- the listener ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FetchedPart:
    msn: int
    index: int
    uri: str
    duration: float  # from the playlist
    requested: float  # time.time() when the GET was sent
    arrived: float  # time.time() when its last byte arrived
    decode_time: int  # tfdt, 1/48000 s
    samples: int  # total sample duration in the fragment
    data: bytes = field(repr=False)


class HlsError(AssertionError):
    pass


class HlsListener:
    """Follows one space's live LL-HLS playlist like a player, from one origin.

    ``await listener.start()`` waits for the playlist to exist and fetches the init
    segment; ``await listener.follow(seconds)`` then fetches every new part, in order, as
    soon as a blocking playlist reload lists it. Run ``follow`` in a task to listen in the
    background; ``stop()`` ends it.

    Reloads are of the whole playlist unless ``delta``: then, where the playlist offers
    them (``CAN-SKIP-UNTIL``), blocking reloads ask for delta updates (``_HLS_skip=YES``).
    Nothing needs merging: the listener reads only the parts, which lie within three
    target durations of the edge, never past the skip boundary (six or more).
    """

    def __init__(
        self,
        base_url: str,
        space: str,
        *,
        client: httpx.AsyncClient | None = None,
        playlist: str = "live.m3u8",
        http_timeout: float = 15.0,
        delta: bool = False,
    ) -> None:
        self.delta = delta
        self.base = f"{base_url.rstrip('/')}/media/{space}/"
        self.playlist_url = urljoin(self.base, playlist)
        self._own = client is None
        self.client = client or httpx.AsyncClient(timeout=http_timeout)
        self.init: bytes | None = None
        self.parts: list[FetchedPart] = []
        self.playlists: list[Playlist] = []  # every playlist received (most recent last)
        self.reloads: list[tuple[float, float]] = []  # (sent, answered) of blocking reloads
        self.skipped: list[tuple[int, int]] = []  # parts that slid away before we got them
        self.ended = False
        self.failed: BaseException | None = None  # why follow() stopped, if it failed
        self._stop = asyncio.Event()

    @classmethod
    def at(cls, playlist_url: str, **kwargs: Any) -> HlsListener:
        """A listener of a full playlist URL, e.g. a private space's signed link
        (``…/p/{exp}/{sig}/media/{id}/live.m3u8``): the playlist's relative URIs resolve
        under the same prefix, as a player's do."""
        listener = cls(playlist_url, "", **kwargs)
        listener.playlist_url = playlist_url
        listener.base = urljoin(playlist_url, ".")
        return listener

    async def aclose(self) -> None:
        if self._own:
            await self.client.aclose()

    async def __aenter__(self) -> HlsListener:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def stop(self) -> None:
        self._stop.set()

    # -- requests -----------------------------------------------------------------------

    async def get(self, url: str, **params: Any) -> httpx.Response:
        try:
            r = await self.client.get(url, params=params or None)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            # The server closed (or reset) a kept-alive connection as the request went out
            # (nginx's old workers do when it reloads): sent once more on a new connection,
            # as a browser does with a request that got no byte back on a reused one.
            r = await self.client.get(url, params=params or None)
        if r.status_code != 200:
            raise HlsError(f"GET {r.url} → {r.status_code} {r.text[:200]}")
        return r

    async def playlist(self, msn: int | None = None, part: int | None = None) -> Playlist:
        params: dict[str, int | str] = {}
        if msn is not None:
            params["_HLS_msn"] = msn
            if part is not None:
                params["_HLS_part"] = part
            last = self.playlists[-1] if self.playlists else None
            if self.delta and last is not None and last.can_skip_until:
                params["_HLS_skip"] = "YES"
        sent = time.time()
        r = await self.get(self.playlist_url, **params)
        if params:
            self.reloads.append((sent, time.time()))
        pl = parse_playlist(r.text)
        self.playlists.append(pl)
        return pl

    async def start(self, within: float = 20.0, back: int = 0) -> Playlist:
        """Wait (polling, up to ``within`` s) until the playlist lists a part, then fetch the
        init segment and the newest part (and ``back`` parts before it)."""
        deadline = time.monotonic() + within
        while True:
            r = await self.client.get(self.playlist_url)
            if r.status_code == 200:
                pl = parse_playlist(r.text)
                self.playlists.append(pl)
                if pl.parts:
                    break
            elif r.status_code != 404:
                raise HlsError(f"GET {r.url} → {r.status_code} {r.text[:200]}")
            if time.monotonic() > deadline:
                raise HlsError(f"no live audio after {within}s (last: {r.status_code})")
            await asyncio.sleep(0.1)
        if pl.init_uri is None:
            raise HlsError("playlist without EXT-X-MAP")
        self.init = (await self.get(urljoin(self.playlist_url, pl.init_uri))).content
        for entry in pl.parts[-1 - back :]:
            await self._fetch(entry)
        return pl

    async def _fetch(self, entry: PartEntry) -> FetchedPart:
        requested = time.time()
        r = await self.get(urljoin(self.playlist_url, entry.uri))
        arrived = time.time()
        decode_time, samples = fragment_times(r.content)
        part = FetchedPart(
            entry.msn, entry.index, entry.uri, entry.duration, requested, arrived,
            decode_time, samples, r.content,
        )  # fmt: skip
        self.parts.append(part)
        return part

    async def step(self) -> list[FetchedPart]:
        """One blocking reload for the part after the last one fetched, then fetch every
        part listed after it. Returns what was fetched."""
        if not self.parts:
            raise HlsError("start() first")
        last = self.parts[-1]
        pl = await self.playlist(last.msn, last.index + 1)
        listed = pl.parts
        positions = [(p.msn, p.index) for p in listed]
        fetched = []
        if (last.msn, last.index) in positions:
            new = listed[positions.index((last.msn, last.index)) + 1 :]
        else:
            # We fell behind the parts the playlist still lists: skip to its edge, and say so.
            new = [p for p in listed if (p.msn, p.index) > (last.msn, last.index)][-1:]
            self.skipped.append((last.msn, last.index))
        for entry in new:
            fetched.append(await self._fetch(entry))
        if pl.ended and not pl.preload_hint:
            self.ended = True
        return fetched

    async def follow(self, seconds: float | None = None) -> None:
        """Keep fetching new parts for ``seconds`` (or until :meth:`stop` or the end).
        A failure (an HTTP error, a bad playlist) is kept in :attr:`failed` and raised."""
        try:
            await self._follow(seconds)
        except Exception as exc:
            self.failed = exc
            raise

    async def _follow(self, seconds: float | None) -> None:
        deadline = None if seconds is None else time.monotonic() + seconds
        while not self._stop.is_set() and not self.ended:
            if deadline is not None and time.monotonic() >= deadline:
                return
            step = asyncio.ensure_future(self.step())
            stopped = asyncio.ensure_future(self._stop.wait())
            done, _ = await asyncio.wait({step, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if step not in done:
                step.cancel()
                await asyncio.gather(step, return_exceptions=True)
                return
            stopped.cancel()
            await asyncio.gather(stopped, return_exceptions=True)
            step.result()

    # -- what was heard -----------------------------------------------------------------

    def decode(self, since: float | None = None) -> Decoded:
        """Decode the init segment and the parts that arrived at or after ``since``."""
        if self.init is None:
            raise HlsError("nothing fetched")
        parts = [p for p in self.parts if since is None or p.arrived >= since]
        return decode_fmp4(self.init + b"".join(p.data for p in parts))

    def part_at(self, decode_time: int) -> FetchedPart:
        """The fetched part whose samples include ``decode_time``."""
        for p in self.parts:
            if p.decode_time <= decode_time < p.decode_time + p.samples:
                return p
        raise KeyError(decode_time)

    def arrival_of(self, decode_time: int) -> float:
        """When a player fetching parts as they appear could first play ``decode_time``:
        the arrival of its part plus its offset within the part."""
        p = self.part_at(decode_time)
        return p.arrived + (decode_time - p.decode_time) / RATE

    def continuity(self, since: float | None = None) -> tuple[float, list[str]]:
        """(longest interval between consecutive part arrivals, problems): a problem is a
        hole or an overlap in the decode timeline, or a part out of order."""
        parts = [p for p in self.parts if since is None or p.arrived >= since]
        problems = []
        for a, b in itertools.pairwise(parts):
            if (b.msn, b.index) <= (a.msn, a.index):
                problems.append(f"{b.uri} after {a.uri}")
            if b.decode_time != a.decode_time + a.samples:
                problems.append(
                    f"{b.uri} starts at {b.decode_time}, {a.uri} ended at "
                    f"{a.decode_time + a.samples}"
                )
        arrivals = [p.arrived for p in parts]
        gap = max((b - a for a, b in itertools.pairwise(arrivals)), default=0.0)
        return gap, problems


async def fetch_vod(client: httpx.AsyncClient, playlist_url: str) -> tuple[Playlist, Decoded]:
    """Fetch a VOD (or any) playlist, its init segment and every segment; decode them."""
    r = await client.get(playlist_url)
    if r.status_code != 200:
        raise HlsError(f"GET {playlist_url} → {r.status_code} {r.text[:200]}")
    pl = parse_playlist(r.text)
    if pl.init_uri is None:
        raise HlsError("playlist without EXT-X-MAP")
    blobs = []
    for uri in [pl.init_uri, *(s.uri for s in pl.segments)]:
        got = await client.get(urljoin(playlist_url, uri))
        if got.status_code != 200:
            raise HlsError(f"GET {uri} → {got.status_code}")
        blobs.append(got.content)
    return pl, decode_fmp4(b"".join(blobs))
