"""Reading LL-HLS playlists the way the simulated players do."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from pnyx.loadtest.playlist import ParseCache, parse

GOLDEN = Path(__file__).parents[1] / "media" / "golden"
BASE = b"/media/sp/"

LIVE = """#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.96,HOLD-BACK=6.0
#EXT-X-PART-INF:PART-TARGET=0.32
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2025-05-01T12:00:00.000Z
#EXTINF:1.92,
seg/10.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-05-01T12:00:01.920Z
#EXT-X-PART:DURATION=0.32,URI="part/11.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.32,URI="part/11.1.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.32,URI="part/11.2.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.32,URI="part/11.3.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.32,URI="part/11.4.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.32,URI="part/11.5.m4s",INDEPENDENT=YES
#EXTINF:1.92,
seg/11.m4s
#EXT-X-PROGRAM-DATE-TIME:2025-05-01T12:00:03.840Z
#EXT-X-PART:DURATION=0.32,URI="part/12.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.32,URI="part/12.1.m4s",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part/12.2.m4s"
"""
T0 = 1746100800.0  # 2025-05-01T12:00:00Z


def test_live_playlist_units_and_times() -> None:
    pl = parse(LIVE, BASE)
    assert pl.media_sequence == 10 and pl.next_msn == 12
    assert pl.target_duration == 2 and pl.part_target == 0.32 and pl.part_hold_back == 0.96
    assert pl.init_path == b"/media/sp/init.mp4"
    assert pl.hint == (12, 2)
    assert not pl.ended
    # standard: whole segments only
    assert [u.path for u in pl.standard_units] == [b"/media/sp/seg/10.m4s", b"/media/sp/seg/11.m4s"]
    # low latency: the segment without listed parts, then every part (open segment too)
    paths = [u.path.decode() for u in pl.low_units]
    assert paths[0] == "/media/sp/seg/10.m4s"
    assert paths[1:7] == [f"/media/sp/part/11.{i}.m4s" for i in range(6)]
    assert paths[7:] == ["/media/sp/part/12.0.m4s", "/media/sp/part/12.1.m4s"]
    # media time comes from PROGRAM-DATE-TIME; parts follow each other
    assert pl.standard_units[0].start == pytest.approx(T0)
    assert pl.low_units[3].start == pytest.approx(T0 + 1.92 + 2 * 0.32)
    assert pl.low_units[-1].end == pytest.approx(T0 + 3.84 + 0.64)
    assert pl.edge == pytest.approx(T0 + 3.84 + 0.64)
    assert pl.segment_edge == pytest.approx(T0 + 3.84)


def test_start_positions_and_next_unit() -> None:
    pl = parse(LIVE, BASE)
    assert pl.start_position(True) == pytest.approx(pl.edge - 0.96)
    assert pl.start_position(False) == pytest.approx(pl.segment_edge - 6.0)
    # what to fetch after everything up to a point is buffered
    after_seg10 = pl.standard_units[0].end
    assert pl.next_after(after_seg10, low_latency=False) == pl.standard_units[1]
    assert pl.next_after(after_seg10, low_latency=True) == pl.low_units[1]
    mid_part = pl.low_units[2].start + 0.1
    assert pl.next_after(mid_part, low_latency=True) == pl.low_units[2]
    assert pl.next_after(pl.edge, low_latency=True) is None
    assert pl.next_after(pl.segment_edge, low_latency=False) is None


def test_a_young_stream_is_not_started_closer_than_the_hold_back() -> None:
    young = parse(LIVE, BASE)  # two segments: 3.84 s of whole segments, HOLD-BACK 6 s
    assert not young.can_start(low_latency=False)
    assert young.can_start(low_latency=True)  # parts: PART-HOLD-BACK 0.96 s is there
    older = LIVE.replace(
        '#EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-MAP:URI="init.mp4"\n',
        '#EXT-X-MEDIA-SEQUENCE:8\n#EXT-X-MAP:URI="init.mp4"\n'
        "#EXT-X-PROGRAM-DATE-TIME:2025-05-01T11:59:56.160Z\n#EXTINF:1.92,\nseg/8.m4s\n"
        "#EXT-X-PROGRAM-DATE-TIME:2025-05-01T11:59:58.080Z\n#EXTINF:1.92,\nseg/9.m4s\n",
    )
    assert parse(older, BASE).can_start(low_latency=False)


def test_server_golden_playlists() -> None:
    live = parse((GOLDEN / "live_ll.m3u8").read_text(), BASE)
    assert live.low_units and live.standard_units and live.hint is not None
    ended = parse((GOLDEN / "ended_ll.m3u8").read_text(), BASE)
    assert ended.ended and ended.hint is None
    plain = parse((GOLDEN / "live_plain.m3u8").read_text(), BASE)
    assert plain.low_units == plain.standard_units  # no parts: segments in both modes


def test_not_a_playlist() -> None:
    with pytest.raises(ValueError, match="not an HLS playlist"):
        parse('{"error": {}}', BASE)


def test_parse_cache_parses_each_body_once() -> None:
    cache = ParseCache(BASE, size=2)
    a = cache.get(LIVE.encode())
    assert cache.get(LIVE.encode()) is a
    assert cache.parsed == 1
    cache.get((GOLDEN / "live_ll.m3u8").read_bytes())
    cache.get((GOLDEN / "ended_ll.m3u8").read_bytes())  # evicts the oldest
    assert cache.get(LIVE.encode()) is not a
    assert cache.parsed == 4


def test_parse_cache_unzips_a_gzipped_playlist() -> None:
    cache = ParseCache(BASE)
    zipped = cache.get(gzip.compress(LIVE.encode()))
    plain = parse(LIVE, BASE)
    assert zipped.low_units == plain.low_units and zipped.hint == plain.hint
    assert zipped.low_units  # the playlist was read, not an empty one
