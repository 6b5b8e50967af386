from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pnyx.media import hls
from pnyx.media.fmp4 import fragment, read_boxes
from pnyx.media.hls import (
    Output,
    Packager,
    PackagerConfig,
    Part,
    PlaylistState,
    Segment,
    StateEncoder,
    part_uri,
    segment_uri,
)

START = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
PART_AUS = 15
SEGMENT_AUS = 90


def au(n: int) -> bytes:
    return bytes([n % 251]) * (5 + n % 7)


def push(packager: Packager, count: int, first: int = 0) -> list[Output]:
    out: list[Output] = []
    for n in range(first, first + count):
        out += packager.push(au(n))
    return out


def parts_of(outputs: list[Output]) -> list[Part]:
    return [o for o in outputs if isinstance(o, Part)]


def segments_of(outputs: list[Output]) -> list[Segment]:
    return [o for o in outputs if isinstance(o, Segment)]


def fragment_fields(data: bytes) -> tuple[int, int, int]:
    """(mfhd sequence number, tfdt, sample count) of a one-fragment part."""
    moof = read_boxes(data)[0]
    mfhd, traf = moof.children()
    _tfhd, tfdt, trun = traf.children()
    (sequence,) = struct.unpack(">I", mfhd.payload[4:])
    (decode_time,) = struct.unpack(">Q", tfdt.payload[4:])
    (count,) = struct.unpack_from(">I", trun.payload, 4)
    return sequence, decode_time, count


def test_default_config_durations() -> None:
    config = PackagerConfig()
    assert config.part_target == 0.32
    assert config.segment_duration == pytest.approx(1.92)
    assert config.target_duration == 2
    with pytest.raises(ValueError, match="three target durations"):
        PackagerConfig(window=3)
    with pytest.raises(ValueError, match="part_aus"):
        PackagerConfig(part_aus=0)


def test_uris() -> None:
    assert segment_uri(12) == "seg/12.m4s"
    assert part_uri(12, 3) == "part/12.3.m4s"


def test_parts_and_segments_are_cut_on_access_unit_counts() -> None:
    packager = Packager(program_date_time=START)
    outputs = push(packager, 2 * SEGMENT_AUS + 20)

    parts, segments = parts_of(outputs), segments_of(outputs)
    assert [(p.ref.msn, p.ref.index) for p in parts] == [
        (m, i) for m in (0, 1) for i in range(6)
    ] + [(2, 0)]
    assert all(p.ref.duration == 0.32 for p in parts)
    assert [s.ref.msn for s in segments] == [0, 1]
    # A segment follows its last part in the output and is exactly its parts' bytes.
    assert outputs.index(segments[0]) == outputs.index(parts[5]) + 1
    assert segments[0].data == b"".join(p.data for p in parts[:6])
    assert segments[0].ref.parts == tuple(p.ref for p in parts[:6])
    assert segments[1].ref.duration == pytest.approx(1.92)
    assert segments[1].ref.program_date_time == START + timedelta(seconds=1.92)

    fields = [fragment_fields(p.data) for p in parts]
    assert [f[0] for f in fields] == list(range(1, 14))  # mfhd increases
    assert [f[1] for f in fields] == [n * PART_AUS * 1024 for n in range(13)]  # tfdt contiguous
    assert all(f[2] == PART_AUS for f in fields)
    assert read_boxes(parts[0].data)[1].payload == b"".join(au(n) for n in range(PART_AUS))

    state = packager.state
    assert (state.next_msn, len(state.parts), state.decode_time) == (2, 1, 13 * 15 * 1024)
    assert state.pending_program_date_time == START + timedelta(seconds=3.84)


def test_flush_closes_a_short_part_and_segment() -> None:
    packager = Packager(program_date_time=START)
    push(packager, PART_AUS + 5)
    outputs = packager.flush()
    (part,) = parts_of(outputs)
    (segment,) = segments_of(outputs)
    assert (part.ref.msn, part.ref.index) == (0, 1)
    assert part.ref.duration == pytest.approx(5 * 1024 / 48_000)
    assert segment.ref.duration == pytest.approx(20 * 1024 / 48_000)
    assert packager.flush() == []
    assert packager.state.next_msn == 1
    assert packager.state.pending_program_date_time == START + timedelta(microseconds=426_666)


def test_discontinuity_flushes_and_marks_the_next_segment() -> None:
    packager = Packager(program_date_time=START)
    push(packager, SEGMENT_AUS + 2 * PART_AUS)
    later = START + timedelta(seconds=30)
    flushed = packager.discontinuity(later)
    assert [s.ref.msn for s in segments_of(flushed)] == [1]
    assert not segments_of(flushed)[0].ref.discontinuity
    assert packager.state.pending_discontinuity

    (segment,) = segments_of(push(packager, SEGMENT_AUS, first=1000))
    assert segment.ref.msn == 2
    assert segment.ref.discontinuity
    assert segment.ref.program_date_time == later
    assert fragment_fields(segment.data)[1] == (SEGMENT_AUS + 30) * 1024
    assert not packager.state.pending_discontinuity
    with pytest.raises(ValueError, match="timezone"):
        packager.discontinuity(datetime(2025, 1, 1))


def test_window_slides_and_counts_discontinuities_that_leave_it() -> None:
    packager = Packager(PackagerConfig(window=4), program_date_time=START)
    push(packager, 2 * SEGMENT_AUS)
    packager.discontinuity(START + timedelta(minutes=1))
    push(packager, 4 * SEGMENT_AUS)
    state = packager.state
    assert [s.msn for s in state.segments] == [2, 3, 4, 5]
    assert state.media_sequence == 2
    assert state.segments[0].discontinuity
    assert state.discontinuity_sequence == 0

    push(packager, SEGMENT_AUS)
    state = packager.state
    assert [s.msn for s in state.segments] == [3, 4, 5, 6]
    assert state.discontinuity_sequence == 1


def test_start_msn_and_end() -> None:
    packager = Packager(program_date_time=START, start_msn=500, decode_time=48_000)
    (part,) = parts_of(push(packager, PART_AUS))
    assert part.ref.uri == "part/500.0.m4s"
    assert fragment_fields(part.data)[:2] == (500 * 6 + 1, 48_000)
    outputs = packager.end()
    assert [s.ref.msn for s in segments_of(outputs)] == [500]
    assert packager.state.ended
    with pytest.raises(ValueError, match="ended"):
        packager.push(au(0))


def test_packager_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="timezone"):
        Packager(program_date_time=datetime(2025, 1, 1))
    packager = Packager(program_date_time=START)
    with pytest.raises(ValueError, match="2048 samples"):
        packager.push(b"x", 2048)
    stray = segments_of(push(Packager(program_date_time=START), SEGMENT_AUS))[0].ref
    with pytest.raises(ValueError, match="consecutive"):
        Packager(program_date_time=START, start_msn=5, history=(stray,))


def test_resume_closes_the_orphaned_segment_and_continues() -> None:
    old = Packager(program_date_time=START)
    push(old, 3 * SEGMENT_AUS + 2 * PART_AUS + 4)
    last = PlaylistState.from_json(old.state.to_json())  # as stored in the live state
    assert last == old.state

    takeover = START + timedelta(seconds=40)
    packager, orphan = Packager.resume(last, program_date_time=takeover)
    assert orphan is not None
    assert (orphan.msn, orphan.parts) == (3, last.parts)
    assert orphan.duration == pytest.approx(0.64)
    state = packager.state
    assert [s.msn for s in state.segments] == [0, 1, 2, 3]
    assert (state.next_msn, state.pending_discontinuity) == (4, True)
    assert state.decode_time == last.decode_time

    (part,) = parts_of(push(packager, PART_AUS))
    assert part.ref.uri == "part/4.0.m4s"
    assert fragment_fields(part.data)[1] == last.decode_time
    (segment,) = segments_of(push(packager, SEGMENT_AUS - PART_AUS))
    assert (segment.ref.msn, segment.ref.discontinuity) == (4, True)
    assert segment.ref.program_date_time == takeover


def test_resume_on_a_segment_boundary_has_no_orphan() -> None:
    old = Packager(program_date_time=START)
    push(old, 2 * SEGMENT_AUS)
    packager, orphan = Packager.resume(old.state, program_date_time=START)
    assert orphan is None
    assert packager.state.next_msn == 2
    assert packager.state.segments == old.state.segments


@pytest.mark.parametrize("part_aus", [6, 15])
def test_the_state_encoder_writes_what_to_json_writes(part_aus: int) -> None:
    """Incrementally, part after part, across a window that slides, a discontinuity, a
    resumption (new objects, equal or not) and the end."""
    packager = Packager(PackagerConfig.of_part(part_aus), program_date_time=START, captions=True)
    encoder = StateEncoder()
    checked = 0
    for n in range(13 * SEGMENT_AUS + 7):
        if packager.push(au(n)) or n % 17 == 0:
            state = packager.state
            assert encoder.encode(state) == state.to_json()
            checked += 1
    packager.discontinuity(START + timedelta(hours=1))
    state = packager.state
    assert state.pending_discontinuity and encoder.encode(state) == state.to_json()
    stored = PlaylistState.from_json(state.to_json())  # equal, but other objects
    assert encoder.encode(stored) == state.to_json()
    config = PackagerConfig.of_part(part_aus)
    later = START + timedelta(hours=2)
    resumed, _orphan = Packager.resume(stored, program_date_time=later, config=config)
    push(resumed, 11 * SEGMENT_AUS + 3)  # the marked segment slides out of the window
    resumed.end()
    state = resumed.state
    assert state.ended and state.discontinuity_sequence == 1
    assert encoder.encode(state) == state.to_json()
    assert PlaylistState.from_json(encoder.encode(state)) == state
    assert checked > 13 * SEGMENT_AUS // part_aus


def test_a_part_like_the_last_one_is_reused_renumbered_and_equal_to_a_fresh_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Silence (one access unit, again and again) makes its parts from the last part's
    bytes; every part must be exactly what fragment() makes of its access units."""
    laid_out: list[int] = []

    def counting(sequence_number: int, **kw: Any) -> bytes:
        laid_out.append(sequence_number)
        return fragment(sequence_number, **kw)

    monkeypatch.setattr(hls, "fragment", counting)
    packager = Packager(PackagerConfig.of_part(6), program_date_time=START, start_msn=40)
    silent = b"\x01\x40\x20\x07"
    pushed = [(au(n) if 30 <= n < 42 else silent, 1024) for n in range(2 * SEGMENT_AUS + 13)]
    pushed.append((silent, 512))  # a short access unit: another layout
    outputs: list[Output] = []
    for data, samples in pushed:
        outputs += packager.push(data, samples)
    outputs += packager.end()
    parts = parts_of(outputs)
    assert len(parts) == -(-len(pushed) // 6)
    decode_time = 0
    for k, part in enumerate(parts):
        aus = pushed[6 * k : 6 * k + 6]
        sequence = part.ref.msn * 15 + part.ref.index + 1
        expected = fragment(sequence, decode_time, [a for a, _ in aus], [n for _, n in aus])
        assert part.data == expected, part.ref
        decode_time += sum(n for _, n in aus)
    for segment in segments_of(outputs):
        mine = [p.data for p in parts if p.ref.msn == segment.ref.msn]
        assert segment.data == b"".join(mine)
    # Laid out: the first part, the two of speech, the first silent one after, the last.
    assert len(laid_out) == 5
