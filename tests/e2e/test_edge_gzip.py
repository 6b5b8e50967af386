"""Playlists travel gzipped: the node zips them for whoever accepts it, the edge asks for
gzip, keeps one copy, and unzips it only for a client that does not take it — whole
playlists (nginx's cache) and blocking reloads (Varnish's) alike, one origin request per
object whatever the client accepts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.test_edge import _metric, quiet_space_behind_edge
from tests.support import hls
from tests.support.poll import wait_until

pytestmark = pytest.mark.e2e

ROUTE = 'route="/media/{space_id}/live.m3u8"'


def _get(c: httpx.Client, path: str, accept: str) -> httpx.Response:
    r = c.get(path, headers={"Accept-Encoding": accept})
    assert r.status_code == 200, (r.status_code, r.text)
    return r


def test_playlists_are_gzipped_and_unzipped_for_who_cannot_take_it(tmp_path: Path) -> None:
    with (
        quiet_space_behind_edge(tmp_path) as q,
        httpx.Client(base_url=q.edge_url, timeout=30) as edge,
    ):
        path = f"/media/{q.space}/live.m3u8"

        def playlist() -> hls.Playlist | None:
            r = q.direct.get(path)
            pl = hls.parse_playlist(r.text) if r.status_code == 200 else None
            return pl if pl is not None and pl.segments and pl.parts else None

        wait_until(playlist, 20, "the space's playlist with a full segment")

        # The node itself: gzip when asked, plain otherwise, and it says it varies.
        zipped = _get(q.direct, path, "gzip, deflate")
        plain = _get(q.direct, path, "identity")
        assert zipped.headers["content-encoding"] == "gzip"
        assert "content-encoding" not in plain.headers
        assert zipped.headers["vary"] == plain.headers["vary"] == "Accept-Encoding"
        assert int(zipped.headers["content-length"]) * 2 < len(plain.content)

        # Through the edge: a whole playlist, then a blocking reload on the next part.
        newest = playlist()
        assert newest is not None
        last = newest.parts[-1]
        per_segment = len(newest.segments[-1].parts)
        msn, part = (
            (last.msn, last.index + 1)
            if last.index + 1 < per_segment
            else (
                last.msn + 1,
                0,
            )
        )
        for url in (path, f"{path}?_HLS_msn={msn}&_HLS_part={part}"):
            before = _metric(q.direct, "pnyx_http_requests_total", ROUTE)
            first = _get(edge, url, "gzip")
            second = _get(edge, url, "identity")
            assert first.headers.get("content-encoding") == "gzip", (url, first.headers)
            assert "content-encoding" not in second.headers, (url, second.headers)
            # the same object: unzipped at the edge for the second client
            assert second.text == first.text
            assert hls.parse_playlist(second.text).parts, second.text
            assert _metric(q.direct, "pnyx_http_requests_total", ROUTE) - before == 1, url
