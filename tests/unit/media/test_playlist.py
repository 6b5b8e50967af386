from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np
import pytest

from pnyx.media.aac import AacEncoder
from pnyx.media.fmp4 import init_segment
from pnyx.media.hls import Output, Packager, PackagerConfig, Part, PlaylistState, Segment
from pnyx.media.playlist import (
    SKIP_TARGETS,
    is_ready,
    is_too_far,
    render_ll_hls,
    render_plain_hls,
    render_vod,
)

from .golden import check_golden
from .signals import dominant_frequency, tone

START = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
SEGMENT_AUS = 90
PART_AUS = 15


def push(packager: Packager, count: int) -> list[Output]:
    out: list[Output] = []
    for n in range(count):
        out += packager.push(bytes([n % 256]) * 4)
    return out


def scenario() -> tuple[Packager, list[Segment]]:
    """Three segments, a discontinuity 30 s later, two segments and two parts more."""
    packager = Packager(PackagerConfig(window=4), program_date_time=START)
    out = push(packager, 3 * SEGMENT_AUS)
    out += packager.discontinuity(START + timedelta(seconds=30))
    out += push(packager, 2 * SEGMENT_AUS + 2 * PART_AUS + 3)
    return packager, [o for o in out if isinstance(o, Segment)]


def test_ll_hls_golden() -> None:
    packager, _ = scenario()
    text = render_ll_hls(packager.state)
    check_golden("live_ll.m3u8", text)
    # Parts show for the segments near the live edge only (within 3 target durations).
    assert 'URI="part/1.0.m4s"' not in text
    assert 'URI="part/2.0.m4s"' in text
    assert text.endswith('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part/5.2.m4s"\n')


def test_plain_hls_golden() -> None:
    packager, _ = scenario()
    text = render_plain_hls(packager.state)
    check_golden("live_plain.m3u8", text)
    assert "#EXT-X-PART" not in text
    assert "PRELOAD-HINT" not in text


def test_ended_and_slid_golden() -> None:
    packager, _ = scenario()
    push(packager, 2 * SEGMENT_AUS)
    packager.end()
    state = packager.state
    assert state.discontinuity_sequence == 1
    text = render_ll_hls(state)
    check_golden("ended_ll.m3u8", text)
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:1\n" in text
    assert text.endswith("#EXT-X-ENDLIST\n")
    assert render_plain_hls(state).endswith("#EXT-X-ENDLIST\n")


def test_vod_golden() -> None:
    packager, segments = scenario()
    segments += [o for o in packager.end() if isinstance(o, Segment)]
    recorded = [s.ref for s in segments if s.ref.msn != 1]  # a gap: msn 1 was lost
    text = render_vod(recorded)
    check_golden("replay_vod.m3u8", text)
    assert text.count("#EXT-X-DISCONTINUITY\n") == 2  # the gap and the failover
    assert render_vod([]).endswith(
        '#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-MAP:URI="init.mp4"\n#EXT-X-ENDLIST\n'
    )


def test_empty_live_playlist_hints_the_first_part() -> None:
    state = Packager(program_date_time=START, start_msn=7).state
    text = render_ll_hls(state, init_uri="i.mp4", part_hold_back=1.0, hold_back=4.5)
    assert "#EXT-X-MEDIA-SEQUENCE:7\n" in text
    assert '#EXT-X-MAP:URI="i.mp4"\n' in text
    assert "PART-HOLD-BACK=1.0,HOLD-BACK=4.5" in text
    assert text.endswith('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part/7.0.m4s"\n')


def long_running(*, discontinuity_at: int | None = None) -> PlaylistState:
    """The production shape (0.128 s parts, 15 to a segment, the default 10-segment
    window) after 25 segments and 4 parts; a discontinuity before segment
    ``discontinuity_at`` if given."""
    packager = Packager(PackagerConfig.of_part(6), program_date_time=START)
    for msn in range(25):
        if msn == discontinuity_at:
            packager.discontinuity(START + timedelta(seconds=60 + 2 * msn))
        push(packager, SEGMENT_AUS)
    push(packager, 4 * 6 + 2)
    return packager.state


def _segment_blocks(text: str) -> list[str]:
    """The text of each complete segment (from the line after the previous segment's URI
    through its own URI), after the header."""
    body = text.split('#EXT-X-MAP:URI="init.mp4"\n', 1)[1]
    blocks = body.split(".m4s\n")
    return [b + ".m4s\n" for b in blocks if "#EXTINF" in b]


def test_the_live_playlist_offers_delta_updates_at_six_target_durations() -> None:
    state = long_running()
    full = render_ll_hls(state)
    assert SKIP_TARGETS == 6  # the spec's minimum: CAN-SKIP-UNTIL >= 6 target durations
    assert (
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,"
        "PART-HOLD-BACK=0.384,HOLD-BACK=6.0\n" in full
    )
    assert "#EXT-X-SKIP" not in full
    assert render_ll_hls(state, skip_until=30.5).count("CAN-SKIP-UNTIL=30.5,") == 1


def test_a_delta_update_skips_the_segments_beyond_the_boundary_and_keeps_the_rest() -> None:
    state = long_running()
    full = render_ll_hls(state)
    delta = render_ll_hls(state, delta=True)
    assert len(state.segments) == 10 and state.media_sequence == 15
    # The end of the playlist is the last part; a segment is skipped when it ends 12 s
    # or more before it.
    end = sum(s.duration for s in state.segments) + sum(p.duration for p in state.parts)
    ends, elapsed = [], 0.0
    for seg in state.segments:
        elapsed += seg.duration
        ends.append(end - elapsed)
    skipped = sum(1 for before_end in ends if before_end >= 12.0)
    assert skipped == 4  # 4 × 1.92 s + 0.8 s ago and older; the 5th ended 10.4 s ago
    assert f"\n#EXT-X-MEDIA-SEQUENCE:15\n#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}\n" in delta
    assert delta.count("#EXT-X-SKIP") == 1
    head = full.split("#EXT-X-MEDIA-SEQUENCE:15\n")[0]
    assert delta.startswith(head)  # version, target, server control, part target: the same
    # What follows the skip tag is the full playlist from the first segment kept on:
    # the segments within the window, their parts, the open parts and the preload hint.
    blocks = _segment_blocks(full)
    assert len(blocks) == 10
    assert delta.endswith("".join(blocks[skipped:]) + full.split(blocks[-1], 1)[1])
    assert '#EXT-X-MAP:URI="init.mp4"\n' in delta
    assert "seg/18.m4s" not in delta and "seg/19.m4s\n" in delta
    assert delta.endswith('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part/25.4.m4s"\n')
    assert len(delta) < len(full)


def test_a_skipped_discontinuity_goes_with_its_segment_and_its_sequence_stays() -> None:
    state = long_running(discontinuity_at=16)  # seg 16 starts after a jump; 15-18 skipped
    full = render_ll_hls(state, delta=False)
    delta = render_ll_hls(state, delta=True)
    assert "#EXT-X-DISCONTINUITY\n" in full
    assert "#EXT-X-DISCONTINUITY\n" not in delta
    assert "#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n" in delta
    # A later discontinuity, within the window kept, stays where it is.
    late = long_running(discontinuity_at=23)
    assert "#EXT-X-DISCONTINUITY\n" in render_ll_hls(late, delta=True)
    slid = long_running(discontinuity_at=5)  # slid out of the window: counted
    text = render_ll_hls(slid, delta=True)
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n" in text


def test_a_young_stream_has_nothing_to_skip_and_an_ended_one_keeps_its_end() -> None:
    young = state_with(4, 2)  # 7.7 s of audio: nothing ended 12 s before the edge
    assert render_ll_hls(young, delta=True) == render_ll_hls(young)
    packager = Packager(PackagerConfig.of_part(6), program_date_time=START)
    push(packager, 20 * SEGMENT_AUS)
    packager.end()
    delta = render_ll_hls(packager.state, delta=True)
    assert "#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n" in delta  # 10, 3 of them ended >= 12 s ago
    assert delta.endswith("seg/19.m4s\n#EXT-X-ENDLIST\n")


def state_with(segments: int, parts: int) -> PlaylistState:
    """Segments 0..segments-1 complete, ``parts`` parts of the next one."""
    packager = Packager(program_date_time=START)
    push(packager, segments * SEGMENT_AUS + parts * PART_AUS)
    return packager.state


@pytest.mark.parametrize(
    ("msn", "part", "ready"),
    [
        (1, None, True),  # the last complete segment
        (2, None, False),  # in progress
        (0, 5, True),
        (1, 5, True),  # last part of the last complete segment
        (1, 6, True),  # past its end = part 0 of segment 2, which exists
        (2, 0, True),
        (2, 1, True),
        (2, 2, False),  # the preload-hinted part
        (3, 0, False),
    ],
)
def test_is_ready(msn: int, part: int | None, ready: bool) -> None:
    assert is_ready(state_with(2, 2), msn, part) is ready


def test_is_ready_on_a_segment_boundary_and_after_the_end() -> None:
    state = state_with(2, 0)
    assert is_ready(state, 1, 5)
    assert not is_ready(state, 1, 6)  # means part 2.0, not there yet
    assert not is_ready(state, 2, 0)
    packager = Packager(program_date_time=START)
    packager.end()
    assert is_ready(packager.state, 10, 3)


def test_is_too_far() -> None:
    state = state_with(2, 2)  # last part is 2.1, last segment in the playlist is 2
    assert not is_too_far(state, 4)
    assert is_too_far(state, 5)
    assert not is_too_far(state, 3, 4)  # 9 parts ahead: within 3 s / 0.32 s ≈ 9.4 parts
    assert is_too_far(state, 3, 5)
    assert not is_too_far(state, 0, 0)


def write(root: Path, outputs: list[Output]) -> None:
    for item in outputs:
        path = root / item.ref.uri
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(item.data)


def run_ffmpeg(playlist: Path) -> subprocess.CompletedProcess[str]:
    ffmpeg = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
    return subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-i", str(playlist), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_packaged_tone_plays_through_ffmpeg(tmp_path: Path) -> None:
    encoder = AacEncoder()
    packager = Packager(program_date_time=START)
    outputs: list[Output] = []
    for n in range(300):  # 6 s of 20 ms frames
        for unit in encoder.encode(tone(440.0, 960, 0.5, start=n * 960)):
            outputs += packager.push(unit)
    for unit in encoder.flush():
        outputs += packager.push(unit)
    outputs += packager.end()
    state = packager.state

    (tmp_path / "init.mp4").write_bytes(init_segment(48_000, 1, encoder.audio_specific_config))
    write(tmp_path, outputs)
    (tmp_path / "playlist.m3u8").write_text(render_plain_hls(state))
    (tmp_path / "ll.m3u8").write_text(render_ll_hls(state))
    assert [s.msn for s in state.segments] == [0, 1, 2, 3]
    assert sum(isinstance(o, Part) for o in outputs) == 19  # 283 AUs: 18 whole parts + 13

    for name in ("playlist.m3u8", "ll.m3u8"):
        result = run_ffmpeg(tmp_path / name)
        assert (result.returncode, result.stderr) == (0, "")

    with av.open(str(tmp_path / "playlist.m3u8")) as container:
        (stream,) = container.streams.audio
        pcm = np.concatenate([f.to_ndarray()[0] for f in container.decode(stream)])
    assert len(pcm) == 283 * 1024
    assert abs(dominant_frequency(pcm) - 440.0) <= 10.0
