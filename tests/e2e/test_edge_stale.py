"""Listeners who ask the edge for a live playlist together, after nobody asked for a
while, get a current one: a stale copy is served while the edge refreshes it only if it
went stale within the last second (the origin's ``stale-while-revalidate=1``), never one
from however long ago the last listener asked.

(With ``proxy_cache_use_stale updating`` on the live playlists, nginx served such a crowd
the last cached copy whatever its age: listeners who started together after a lull began
seconds behind live.)"""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

import pytest

from tests.e2e.test_edge import _enough_descriptors, _get_all, quiet_space_behind_edge
from tests.support import hls
from tests.support.poll import wait_until

pytestmark = pytest.mark.e2e

CROWD = 150
LULL_S = 4.0  # of media since the edge last fetched the playlist
FRESH_S = 2.5  # max-age 1 s + stale-while-revalidate 1 s + the crowd's own spread


def _playlist(answer: bytes) -> hls.Playlist:
    """The playlist in a whole HTTP/1.1 answer (gzipped, as browsers take it)."""
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:80]
    assert b"\r\ncontent-encoding: gzip" in head.lower(), head
    return hls.parse_playlist(gzip.decompress(body).decode())


def _newest(pl: hls.Playlist) -> float:
    """The media time at the end of the playlist's newest part, in seconds."""
    last = pl.parts[-1]
    per_segment = len(pl.segments[-1].parts)
    return (last.msn * per_segment + last.index + 1) * last.duration


def test_a_crowd_after_a_lull_gets_a_current_playlist(tmp_path: Path) -> None:
    _enough_descriptors(CROWD + 256)
    with quiet_space_behind_edge(tmp_path) as q:
        path = f"/media/{q.space}/live.m3u8"
        port = int(q.edge_url.rsplit(":", 1)[1])

        def origin_now() -> hls.Playlist | None:
            r = q.direct.get(path)
            pl = hls.parse_playlist(r.text) if r.status_code == 200 else None
            return pl if pl is not None and pl.segments and pl.parts else None

        wait_until(origin_now, 20, "the space's playlist with a full segment")
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept-Encoding: gzip\r\n"
            "Connection: close\r\n\r\n"
        ).encode()

        async def crowd(n: int) -> list[bytes]:
            return list(await asyncio.gather(*await _get_all(port, request, n)))

        (first,) = asyncio.run(crowd(1))  # the edge caches this copy
        cached = _newest(_playlist(first))

        def lull_over() -> bool:
            pl = origin_now()
            return pl is not None and _newest(pl) >= cached + LULL_S

        wait_until(lull_over, 30, f"{LULL_S} s of media after the cached copy")
        answers = asyncio.run(crowd(CROWD))
        live = origin_now()
        assert live is not None
        behind = []
        for answer in answers:
            behind.append(_newest(live) - _newest(_playlist(answer)))
        stale = [b for b in behind if b > FRESH_S]
        assert not stale, (
            f"{len(stale)} of {CROWD} listeners got a copy up to {max(stale):.2f} s behind live"
        )
