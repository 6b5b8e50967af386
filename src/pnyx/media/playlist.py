"""Pure HLS playlist rendering and LL-HLS blocking-reload checks (RFC 8216bis).

Renderings of the same :class:`~pnyx.media.hls.PlaylistState`:

* :func:`render_ll_hls` — the low-latency live playlist: parts of the segments near the live
  edge, a preload hint for the next part, blocking reload and delta updates advertised;
  with ``delta=True`` the Playlist Delta Update a ``_HLS_skip`` request gets;
* :func:`render_plain_hls` — the same window without parts, for players that predate LL-HLS;
* :func:`render_captions` — the live WebVTT subtitles rendition of a captioned space, and
  :func:`render_main`, the multivariant playlist that names it beside the audio;
* :func:`render_vod` — a replay over recorded segments, closed with EXT-X-ENDLIST.

:func:`is_ready` says whether a blocking request (``_HLS_msn``/``_HLS_part``) can be answered
from a state; :func:`is_too_far` whether it asks so far ahead that the origin should answer
400 at once (§6.2.5.2). The waiting itself (and its timeout) belongs to the origin.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pnyx.media.hls import (
    INIT_URI,
    PartRef,
    PlaylistState,
    SegmentRef,
    caption_parts,
    part_uri,
    vtt_uri,
)

LL_HLS_VERSION = 9
# CAN-SKIP-UNTIL in target durations: the spec's minimum (§4.4.3.8), so a delta update
# skips as much as it may. A player asks for deltas only while its copy is younger than
# half of it (6 s at 2 s targets): a low-latency one reloads every part, a plain one
# every target duration.
SKIP_TARGETS = 6
PLAIN_HLS_VERSION = 6  # EXT-X-MAP without I-frames-only needs 6


def _decimal(seconds: float) -> str:
    text = f"{seconds:.5f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _date(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _header(version: int, target_duration: int) -> list[str]:
    return [
        "#EXTM3U",
        f"#EXT-X-VERSION:{version}",
        f"#EXT-X-TARGETDURATION:{target_duration}",
        "#EXT-X-INDEPENDENT-SEGMENTS",  # every AAC access unit decodes on its own
    ]


def _sequence(
    media_sequence: int, discontinuity_sequence: int, init_uri: str, skipped: int = 0
) -> list[str]:
    lines = [f"#EXT-X-MEDIA-SEQUENCE:{media_sequence}"]
    if discontinuity_sequence:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}")
    if skipped:  # a delta update: EXT-X-SKIP stands for the first segments and their tags
        lines.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}")
    lines.append(f'#EXT-X-MAP:URI="{init_uri}"')
    return lines


def _part(part: PartRef) -> str:
    independent = ",INDEPENDENT=YES" if part.independent else ""
    return f'#EXT-X-PART:DURATION={_decimal(part.duration)},URI="{part.uri}"{independent}'


def _segment(seg: SegmentRef, *, with_parts: bool, discontinuity: bool) -> list[str]:
    lines = ["#EXT-X-DISCONTINUITY"] if discontinuity else []
    lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_date(seg.program_date_time)}")
    if with_parts:
        lines += [_part(p) for p in seg.parts]
    lines += [f"#EXTINF:{_decimal(seg.duration)},", seg.uri]
    return lines


def render_ll_hls(
    state: PlaylistState,
    *,
    init_uri: str = INIT_URI,
    part_hold_back: float | None = None,
    hold_back: float | None = None,
    parts_span: float | None = None,
    skip_until: float | None = None,
    delta: bool = False,
) -> str:
    """The LL-HLS live playlist.

    ``part_hold_back`` defaults to 3 part targets and ``hold_back`` to 3 target durations
    (the spec's recommendations). Parts are listed for every segment that ends within
    ``parts_span`` seconds (default 3 target durations) of the live edge, and for the open
    segment, followed by a preload hint for the next part unless the stream has ended.

    ``CAN-SKIP-UNTIL`` is ``skip_until`` (default :data:`SKIP_TARGETS` target
    durations). With ``delta`` (a request with ``_HLS_skip``), the Playlist Delta Update
    (§6.2.5.1): the leading segments that end ``skip_until`` or more before the end of the
    playlist (its last part) are replaced by ``EXT-X-SKIP:SKIPPED-SEGMENTS=N``, with
    their tags (date-time, discontinuity); the media and discontinuity sequence numbers
    stay those of the full playlist (the first, skipped, segment), and everything after
    the boundary — the segments within ``skip_until`` of the end, their parts, the open
    segment's parts, the preload hint — is as in the full playlist. ``EXT-X-MAP`` follows
    the skip tag (it applies to the segments that remain). Nothing to skip (a young
    stream): the full playlist, which is always a valid answer.
    """
    part_hold_back = 3 * state.part_target if part_hold_back is None else part_hold_back
    hold_back = 3 * state.target_duration if hold_back is None else hold_back
    parts_span = 3 * state.target_duration if parts_span is None else parts_span
    skip_until = SKIP_TARGETS * state.target_duration if skip_until is None else skip_until
    lines = _header(LL_HLS_VERSION, state.target_duration)
    lines += [
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,"
        f"CAN-SKIP-UNTIL={_decimal(skip_until)},"
        f"PART-HOLD-BACK={_decimal(part_hold_back)},HOLD-BACK={_decimal(hold_back)}",
        f"#EXT-X-PART-INF:PART-TARGET={_decimal(state.part_target)}",
    ]
    # Distance from each segment's end to the live edge decides whether its parts show,
    # and (in a delta update) whether it is skipped.
    to_edge = sum(p.duration for p in state.parts)
    shows_parts = []
    skipped = 0
    for seg in reversed(state.segments):
        shows_parts.append(to_edge < parts_span)
        skipped += to_edge >= skip_until
        to_edge += seg.duration
    if not delta:
        skipped = 0
    lines += _sequence(
        state.media_sequence,
        state.discontinuity_sequence,
        init_uri,
        skipped=skipped,
    )
    kept = zip(state.segments, reversed(shows_parts), strict=True)
    for seg, with_parts in list(kept)[skipped:]:
        lines += _segment(seg, with_parts=with_parts, discontinuity=seg.discontinuity)
    if state.parts:
        if state.pending_discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_date(state.pending_program_date_time)}")
        lines += [_part(p) for p in state.parts]
    if state.ended:
        lines.append("#EXT-X-ENDLIST")
    else:
        hint = part_uri(state.next_msn, len(state.parts))
        lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{hint}"')
    return "\n".join(lines) + "\n"


def render_plain_hls(state: PlaylistState, *, init_uri: str = INIT_URI) -> str:
    """The same live window as whole segments only, for players without LL-HLS."""
    lines = _header(PLAIN_HLS_VERSION, state.target_duration)
    lines += _sequence(state.media_sequence, state.discontinuity_sequence, init_uri)
    for seg in state.segments:
        lines += _segment(seg, with_parts=False, discontinuity=seg.discontinuity)
    if state.ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


CAPTIONS_GROUP = "captions"
CAPTIONS_URI = "captions.m3u8"
# What the multivariant playlist declares: AAC-LC in fMP4 at aac_bitrate plus headroom
# for the container.
AUDIO_CODECS = "mp4a.40.2"


def render_captions(state: PlaylistState) -> str:
    """The live subtitles rendition: a WebVTT file per half segment (:func:`caption_parts`
    parts, about a second; two per audio segment, so every other boundary is a
    segment's), numbered ``msn·2 + half``, each with the cues recognised while its parts
    were made. Listed as soon as its last part exists (a segment's short last file when
    the segment closes).

    No parts, but blocking reload on the files' numbers (``_HLS_msn``, see
    :func:`captions_ready`): a player keeps its playhead a part hold-back behind the
    audio's newest part, so a captions playlist fetched on a timer ends *before* the
    playhead about half the time, and hls.js loads no subtitles while the playlist ends
    before its playhead ("wait for live") — for as long as its timer keeps that phase. A
    reload held until the next file is listed arrives while that file still ends ahead
    of the playhead."""
    group_parts = caption_parts(state.segment_parts)
    per = -(-state.segment_parts // group_parts)  # files per segment
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{PLAIN_HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{max(1, round(group_parts * state.part_target + 0.49))}",
        f"#EXT-X-MEDIA-SEQUENCE:{state.media_sequence * per}",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES",
    ]
    if state.discontinuity_sequence:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{state.discontinuity_sequence}")

    def files(msn: int, parts: tuple[PartRef, ...], when: datetime, jump: bool, done: bool) -> None:
        offset = 0.0
        for half in range(per):
            group = parts[half * group_parts : (half + 1) * group_parts]
            if not group or (len(group) < group_parts and not done):
                return
            if jump and half == 0:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_date(when + timedelta(seconds=offset))}")
            duration = sum(p.duration for p in group)
            lines.extend([f"#EXTINF:{_decimal(duration)},", vtt_uri(msn, half)])
            offset += duration

    for seg in state.segments:
        files(seg.msn, seg.parts, seg.program_date_time, seg.discontinuity, True)
    files(
        state.next_msn,
        state.parts,
        state.pending_program_date_time,
        state.pending_discontinuity,
        False,
    )
    if state.ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def captions_next(state: PlaylistState) -> int:
    """The number the next captions file listed will have (``msn·files per segment +
    half``, as :func:`render_captions` numbers them)."""
    group_parts = caption_parts(state.segment_parts)
    per = -(-state.segment_parts // group_parts)
    return state.next_msn * per + len(state.parts) // group_parts


def captions_ready(state: PlaylistState, number: int) -> bool:
    """Does ``state`` satisfy a blocking reload of the captions for ``_HLS_msn=number``
    (that file, or a later one, is listed)? An ended stream is always ready."""
    return state.ended or number < captions_next(state)


def captions_too_far(state: PlaylistState, number: int) -> bool:
    """Refuse (400) rather than hold: more than two files past the last one listed."""
    return number > captions_next(state) + 1


def render_main(state: PlaylistState, *, bandwidth: int, language: str) -> str:
    """The multivariant playlist: the audio (``live.m3u8``) and, for a captioned space,
    its subtitles rendition (``captions.m3u8``), off unless the player turns it on."""
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{PLAIN_HLS_VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    subtitles = ""
    if state.captions:
        lines.append(
            f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{CAPTIONS_GROUP}",NAME="Captions",'
            f'LANGUAGE="{language}",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="{CAPTIONS_URI}"'
        )
        subtitles = f',SUBTITLES="{CAPTIONS_GROUP}"'
    lines += [
        f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},CODECS="{AUDIO_CODECS}"{subtitles}',
        "live.m3u8",
    ]
    return "\n".join(lines) + "\n"


def render_vod(segments: Sequence[SegmentRef], *, init_uri: str = INIT_URI) -> str:
    """A replay playlist over recorded segments, in order.

    EXT-X-DISCONTINUITY precedes a segment marked so (a failover) and any segment whose
    sequence number does not follow its predecessor's (a gap in the recording).
    """
    target = max((max(1, int(s.duration + 0.5)) for s in segments), default=1)
    lines = _header(PLAIN_HLS_VERSION, target)
    lines.append("#EXT-X-PLAYLIST-TYPE:VOD")
    lines += _sequence(segments[0].msn if segments else 0, 0, init_uri)
    previous: SegmentRef | None = None
    for seg in segments:
        jump = previous is not None and (seg.discontinuity or seg.msn != previous.msn + 1)
        lines += _segment(seg, with_parts=False, discontinuity=jump)
        previous = seg
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def is_ready(state: PlaylistState, msn: int, part: int | None = None) -> bool:
    """Does ``state`` satisfy a blocking reload for ``_HLS_msn=msn`` (``&_HLS_part=part``)?

    Without ``part``: segment ``msn`` (or a later one) is complete. With ``part``: part
    ``part`` of segment ``msn`` or a later part exists; a part index past the end of a
    completed segment means the first part of the next one. An ended stream is always ready.
    """
    if state.ended:
        return True
    if part is None:
        return msn < state.next_msn
    if msn < state.next_msn - 1:
        return True
    if msn == state.next_msn - 1:
        last = state.segments[-1] if state.segments else None
        closed_parts = len(last.parts) if last is not None and last.msn == msn else part + 1
        return part < closed_parts or bool(state.parts)
    if msn == state.next_msn:
        return part < len(state.parts)
    return False


def is_too_far(state: PlaylistState, msn: int, part: int | None = None) -> bool:
    """Should a blocking request be refused with 400 instead of held (§6.2.5.2)?

    True when ``msn`` is more than two past the last segment in the playlist, or ``part``
    is beyond the last part by more than the Advance Part Limit (3 parts' worth of
    seconds: ``3 / PART-TARGET`` parts when the part target is under a second, else 3).
    """
    last_msn = state.next_msn if state.parts else state.next_msn - 1
    if msn > last_msn + 2:
        return True
    if part is None:
        return False
    limit = 3 / state.part_target if state.part_target < 1 else 3.0
    last_position = state.next_msn * state.segment_parts + len(state.parts) - 1
    return msn * state.segment_parts + part - last_position > limit
