"""LL-HLS packaging: a pure segmenter state machine and pure playlist renderers.

:class:`Packager` is fed AAC access units (1024 samples each at 48 kHz, ≈21.33 ms) and
cuts them, by count, into **parts** of ``part_aus`` access units (default 15 = 15360
samples = exactly 0.32 s) and **segments** of ``segment_parts`` whole parts (default 6 =
exactly 1.92 s), so a segment boundary is always a part boundary. Each part is one CMAF
chunk (:func:`pnyx.media.fmp4.fragment`: ``moof`` + ``mdat``); a segment's bytes are the
concatenation of its parts' bytes. That choice keeps one encoding of every sample, makes a
segment assemblable from stored parts alone (which is how a failed-over node closes the
segment its predecessor left open), and is a valid CMAF segment of several chunks.

The objects it emits are immutable; the playlist side of the world sees only
:class:`PlaylistState` (no media bytes, JSON round-trippable) which the renderers turn
into text. No clock is read: wall time (``EXT-X-PROGRAM-DATE-TIME``) is anchored by the
caller and advanced by sample counts.

URIs, relative to the playlist:

* ``init.mp4`` — the CMAF header (``EXT-X-MAP``);
* ``seg/{msn}.m4s`` — the whole segment with media sequence number ``msn``;
* ``part/{msn}.{index}.m4s`` — part ``index`` (from 0) of segment ``msn``.

The playlist renderers and blocking-reload checks live in :mod:`pnyx.media.playlist`.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pnyx.media.fmp4 import fragment, renumbered

SAMPLES_PER_AU = 1024
INIT_URI = "init.mp4"


SEGMENT_AUS = 90  # access units per segment: 1.92 s, whatever the part length


def caption_parts(segment_parts: int) -> int:
    """Parts per captions file: half a segment (rounded up), so two files per segment
    (three parts of 0.32 s, five of 0.213 s: about a second either way)."""
    return -(-segment_parts // 2)


def vtt_uri(msn: int, half: int) -> str:
    """The WebVTT file of the ``half``-th group of :func:`caption_parts` parts of segment
    ``msn`` (0 or 1): the captions recognised while they were made."""
    return f"vtt/{msn}.{half}.vtt"


def segment_uri(msn: int) -> str:
    return f"seg/{msn}.m4s"


def part_uri(msn: int, index: int) -> str:
    return f"part/{msn}.{index}.m4s"


@dataclass(frozen=True, slots=True)
class PackagerConfig:
    """How access units are cut. Durations are exact multiples of the AU duration."""

    timescale: int = 48_000
    au_samples: int = SAMPLES_PER_AU  # the largest access unit the packager accepts
    part_aus: int = 15  # 0.32 s parts
    segment_parts: int = 6  # 1.92 s segments
    window: int = 10  # segments kept in the live playlists (19.2 s)

    @classmethod
    def of_part(cls, part_aus: int) -> PackagerConfig:
        """Parts of ``part_aus`` access units, as many as make a segment of
        :data:`SEGMENT_AUS` (rounded; exact when ``part_aus`` divides it)."""
        return cls(part_aus=part_aus, segment_parts=max(1, round(SEGMENT_AUS / part_aus)))

    def __post_init__(self) -> None:
        for name in ("timescale", "au_samples", "part_aus", "segment_parts"):
            if getattr(self, name) < 1:
                raise ValueError(f"PackagerConfig.{name} must be at least 1")
        if self.segment_duration * self.window < 3 * self.target_duration:
            raise ValueError("the live window must span at least three target durations")

    @property
    def part_target(self) -> float:
        """``EXT-X-PART-INF:PART-TARGET``: the duration of a full part, in seconds."""
        return self.part_aus * self.au_samples / self.timescale

    @property
    def segment_duration(self) -> float:
        return self.part_target * self.segment_parts

    @property
    def target_duration(self) -> int:
        """``EXT-X-TARGETDURATION``: the full segment duration rounded to nearest."""
        return max(1, int(self.segment_duration + 0.5))


@dataclass(frozen=True, slots=True)
class PartRef:
    """What a playlist says about a part."""

    msn: int
    index: int
    duration: float  # seconds
    independent: bool = True  # every AAC access unit decodes on its own

    @property
    def uri(self) -> str:
        return part_uri(self.msn, self.index)


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """What a playlist says about a completed segment."""

    msn: int
    duration: float  # seconds
    program_date_time: datetime  # wall time of its first sample
    parts: tuple[PartRef, ...]
    discontinuity: bool = False  # preceded by EXT-X-DISCONTINUITY

    @property
    def uri(self) -> str:
        return segment_uri(self.msn)


@dataclass(frozen=True, slots=True)
class Part:
    """A finished part: store ``data`` at ``ref.uri`` (immutable) before publishing state."""

    ref: PartRef
    data: bytes


@dataclass(frozen=True, slots=True)
class Segment:
    """A finished segment: ``data`` is its parts' bytes, concatenated."""

    ref: SegmentRef
    data: bytes


Output = Part | Segment


@dataclass(frozen=True, slots=True)
class PlaylistState:
    """Everything the playlists and blocking reload need; no media bytes.

    ``segments`` is the live window of completed segments, oldest first; ``parts`` are the
    finished parts of segment ``next_msn``, still in progress.
    """

    target_duration: int
    part_target: float
    segment_parts: int
    next_msn: int
    pending_program_date_time: datetime
    segments: tuple[SegmentRef, ...] = ()
    parts: tuple[PartRef, ...] = ()
    pending_discontinuity: bool = False
    discontinuity_sequence: int = 0  # EXT-X-DISCONTINUITY tags slid out of the window
    decode_time: int = 0  # tfdt of the next part, in the track timescale
    ended: bool = False
    captions: bool = False  # each half segment has a WebVTT file (vtt/{msn}.{half}.vtt)

    @property
    def media_sequence(self) -> int:
        return self.segments[0].msn if self.segments else self.next_msn

    def to_doc(self) -> dict[str, Any]:
        """The state as a JSON document (what the live state stores), built directly."""
        doc = {name: getattr(self, name) for name in self.__dataclass_fields__}
        doc["pending_program_date_time"] = self.pending_program_date_time.isoformat()
        doc["segments"] = [_segment_doc(s) for s in self.segments]
        doc["parts"] = [_ref_dict(p) for p in self.parts]
        return doc

    def to_json(self) -> str:
        """Compact JSON, as the live state stores it (``StateEncoder`` makes the same text
        incrementally)."""
        return _dumps(self.to_doc())

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> PlaylistState:
        raw = dict(doc)
        raw["pending_program_date_time"] = datetime.fromisoformat(raw["pending_program_date_time"])
        raw["parts"] = tuple(PartRef(**p) for p in raw["parts"])
        raw["segments"] = tuple(
            SegmentRef(
                **{
                    **s,
                    "program_date_time": datetime.fromisoformat(s["program_date_time"]),
                    "parts": tuple(PartRef(**p) for p in s["parts"]),
                }
            )
            for s in raw["segments"]
        )
        return cls(**raw)

    @classmethod
    def from_json(cls, text: str) -> PlaylistState:
        return cls.from_doc(json.loads(text))


class StateEncoder:
    """:meth:`PlaylistState.to_json`, text for text, for one space's successive states,
    reusing the encoding of every segment and part already encoded.

    A live window changes by one part at a time while its JSON (the full window: 150
    parts at 0.128 s) is what the live state stores on every part; encoding it whole
    each time cost ~0.27 ms, most of an idle space's CPU. Here a state costs its few
    scalars plus joining cached texts. Segments and parts are recognised by identity
    (the packager hands the same objects on); anything else is encoded afresh."""

    def __init__(self) -> None:
        self._segments: dict[int, tuple[SegmentRef, str]] = {}
        self._parts: dict[tuple[int, int], tuple[PartRef, str]] = {}

    def encode(self, state: PlaylistState) -> str:
        held = self._segments
        segments = []
        for seg in state.segments:
            known = held.get(seg.msn)
            if known is None or known[0] is not seg:
                known = held[seg.msn] = (seg, _dumps(_segment_doc(seg)))
            segments.append(known[1])
        if len(held) > len(state.segments):
            window = {seg.msn for seg in state.segments}
            for msn in [m for m in held if m not in window]:
                del held[msn]
        held_parts = self._parts
        parts = []
        for part in state.parts:
            known_part = held_parts.get((part.msn, part.index))
            if known_part is None or known_part[0] is not part:
                known_part = held_parts[part.msn, part.index] = (part, _dumps(_ref_dict(part)))
            parts.append(known_part[1])
        if len(held_parts) > len(state.parts):
            self._parts = {(p.msn, p.index): held_parts[p.msn, p.index] for p in state.parts}
        head = _dumps(
            {
                "target_duration": state.target_duration,
                "part_target": state.part_target,
                "segment_parts": state.segment_parts,
                "next_msn": state.next_msn,
                "pending_program_date_time": state.pending_program_date_time.isoformat(),
            }
        )
        tail = _dumps(
            {
                "pending_discontinuity": state.pending_discontinuity,
                "discontinuity_sequence": state.discontinuity_sequence,
                "decode_time": state.decode_time,
                "ended": state.ended,
                "captions": state.captions,
            }
        )
        return "".join(
            (
                head[:-1],
                ',"segments":[',
                ",".join(segments),
                '],"parts":[',
                ",".join(parts),
                "],",
                tail[1:],
            )
        )


def _dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def _segment_doc(seg: SegmentRef) -> dict[str, Any]:
    doc = _ref_dict(seg)
    doc["program_date_time"] = seg.program_date_time.isoformat()
    return doc


def _ref_dict(ref: SegmentRef | PartRef) -> dict[str, Any]:
    out = {name: getattr(ref, name) for name in ref.__dataclass_fields__}
    if isinstance(ref, SegmentRef):
        out["parts"] = [_ref_dict(p) for p in ref.parts]
    return out


@dataclass(slots=True)
class _Open:
    """The segment being built."""

    msn: int
    program_date_time: datetime
    discontinuity: bool
    parts: list[Part] = field(default_factory=list)
    aus: list[bytes] = field(default_factory=list)
    au_samples: list[int] = field(default_factory=list)
    samples: int = 0  # in its finished parts


class Packager:
    """Access units in, :class:`Part` and :class:`Segment` objects out, in order.

    ``program_date_time`` (timezone-aware) is the wall time of the first sample pushed.
    To continue a space on another node, use :meth:`resume` with the last published state.
    """

    def __init__(
        self,
        config: PackagerConfig | None = None,
        *,
        program_date_time: datetime,
        start_msn: int = 0,
        decode_time: int = 0,
        discontinuity: bool = False,
        discontinuity_sequence: int = 0,
        history: tuple[SegmentRef, ...] = (),
        captions: bool = False,
    ) -> None:
        _require_aware(program_date_time)
        if start_msn < 0 or decode_time < 0 or discontinuity_sequence < 0:
            raise ValueError("start_msn, decode_time and discontinuity_sequence must be >= 0")
        for i, seg in enumerate(history):
            if seg.msn != start_msn - len(history) + i:
                raise ValueError("history must be consecutive segments ending at start_msn - 1")
        self.config = config or PackagerConfig()
        self._window: deque[SegmentRef] = deque()
        self._discontinuity_sequence = discontinuity_sequence
        for seg in history:
            self._keep(seg)
        self._decode_time = decode_time  # tfdt of the next part
        self._anchor = program_date_time
        self._elapsed = 0  # samples from the anchor to the open segment's start
        self._open = _Open(start_msn, program_date_time, discontinuity)
        self._ended = False
        self.captions = captions  # playlists list a subtitles rendition
        # The last part's access units, durations and bytes: a part with the same ones
        # (silence, while nobody publishes) is those bytes renumbered, not laid out again.
        self._last_part: tuple[list[bytes], list[int], bytes] | None = None

    @classmethod
    def resume(
        cls,
        previous: PlaylistState,
        *,
        program_date_time: datetime,
        config: PackagerConfig | None = None,
        captions: bool = False,
    ) -> tuple[Packager, SegmentRef | None]:
        """Continue after a failover from the last state the failed node published.

        Sequence numbers and decode times continue; the next segment is marked with
        EXT-X-DISCONTINUITY. If the failed node had published parts of a segment it never
        finished, that segment is closed here, short, from those parts, and returned: the
        caller must store its bytes (the stored parts' bytes, concatenated) at its URI.
        """
        history = previous.segments
        orphan = None
        if previous.parts:
            orphan = SegmentRef(
                msn=previous.next_msn,
                duration=sum(p.duration for p in previous.parts),
                program_date_time=previous.pending_program_date_time,
                parts=previous.parts,
                discontinuity=previous.pending_discontinuity,
            )
            history += (orphan,)
        packager = cls(
            config,
            program_date_time=program_date_time,
            start_msn=previous.next_msn + (1 if orphan else 0),
            decode_time=previous.decode_time,
            discontinuity=True,
            discontinuity_sequence=previous.discontinuity_sequence,
            history=history,
            captions=captions,
        )
        return packager, orphan

    @property
    def state(self) -> PlaylistState:
        cfg = self.config
        return PlaylistState(
            target_duration=cfg.target_duration,
            part_target=cfg.part_target,
            segment_parts=cfg.segment_parts,
            next_msn=self._open.msn,
            pending_program_date_time=self._open.program_date_time,
            segments=tuple(self._window),
            parts=tuple(p.ref for p in self._open.parts),
            pending_discontinuity=self._open.discontinuity,
            discontinuity_sequence=self._discontinuity_sequence,
            decode_time=self._decode_time,
            ended=self._ended,
            captions=self.captions,
        )

    @property
    def aus_to_part(self) -> int:
        """Access units still to push before the open part completes."""
        return self.config.part_aus - len(self._open.aus)

    def push(self, au: bytes, samples: int = SAMPLES_PER_AU) -> list[Output]:
        """Add one access unit; returns the part (and segment) it completed, if any."""
        if self._ended:
            raise ValueError("the stream has ended")
        if not 0 < samples <= self.config.au_samples:
            raise ValueError(f"an access unit of {samples} samples does not fit the config")
        self._open.aus.append(au)
        self._open.au_samples.append(samples)
        out: list[Output] = []
        if len(self._open.aus) == self.config.part_aus:
            out += self._close_part()
            if len(self._open.parts) == self.config.segment_parts:
                out += self._close_segment()
        return out

    def flush(self) -> list[Output]:
        """Close the open part and segment now, short if need be."""
        return self._close_part() + self._close_segment()

    def discontinuity(self, program_date_time: datetime) -> list[Output]:
        """Flush, then mark the next segment with EXT-X-DISCONTINUITY and re-anchor wall
        time at ``program_date_time`` (e.g. the encoder restarted after a gap)."""
        _require_aware(program_date_time)
        out = self.flush()
        self._anchor, self._elapsed = program_date_time, 0
        self._open.program_date_time = program_date_time
        self._open.discontinuity = True
        return out

    def end(self) -> list[Output]:
        """Flush and mark the stream ended (playlists get EXT-X-ENDLIST)."""
        out = self.flush()
        self._ended = True
        return out

    def _close_part(self) -> list[Output]:
        seg = self._open
        if not seg.aus:
            return []
        index = len(seg.parts)
        sequence = seg.msn * self.config.segment_parts + index + 1
        last = self._last_part
        if last is not None and last[0] == seg.aus and last[1] == seg.au_samples:
            data = renumbered(last[2], sequence, self._decode_time)
        else:
            data = fragment(
                sequence_number=sequence,
                base_media_decode_time=self._decode_time,
                samples=seg.aus,
                sample_duration=seg.au_samples,
            )
            self._last_part = (seg.aus, seg.au_samples, data)
        samples = sum(seg.au_samples)
        part = Part(PartRef(seg.msn, index, samples / self.config.timescale), data)
        seg.parts.append(part)
        seg.aus, seg.au_samples = [], []
        seg.samples += samples
        self._decode_time += samples
        return [part]

    def _close_segment(self) -> list[Output]:
        seg = self._open
        if not seg.parts:
            return []
        ref = SegmentRef(
            msn=seg.msn,
            duration=sum(p.ref.duration for p in seg.parts),
            program_date_time=seg.program_date_time,
            parts=tuple(p.ref for p in seg.parts),
            discontinuity=seg.discontinuity,
        )
        self._keep(ref)
        self._elapsed += seg.samples
        start = self._anchor + timedelta(
            microseconds=self._elapsed * 1_000_000 // self.config.timescale
        )
        self._open = _Open(seg.msn + 1, start, discontinuity=False)
        return [Segment(ref, b"".join(p.data for p in seg.parts))]

    def _keep(self, ref: SegmentRef) -> None:
        self._window.append(ref)
        while len(self._window) > self.config.window:
            if self._window.popleft().discontinuity:
                self._discontinuity_sequence += 1


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("program date times must be timezone-aware")
