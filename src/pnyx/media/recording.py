"""What the stage node hands to the recording of a recorded space, and the vocabulary the
recording shares with the rest of the media layer.

The recording itself lives in the durable store (``store/recordings.py``), written off the
media path by ``services/recorder.py`` ``Recorder``, which implements :class:`Recordings`:
the sink only enqueues (never waits for the database), and the writer flushes, retries
and finally marks the recording finished.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Protocol

from prometheus_client import Counter, Gauge

from pnyx.errors import ErrorKind, PnyxError
from pnyx.media.hls import PartRef, SegmentRef

_SPACE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)

SEGMENTS_WRITTEN = Counter(
    "pnyx_recording_segments_written_total", "Recorded segments stored in the durable store"
)
SEGMENTS_DROPPED = Counter(
    "pnyx_recording_segments_dropped_total",
    "Recorded segments lost: the pending queue was full (the store was away too long), the "
    "recording was already finished, or the node shut down before it could store them",
    ["why"],  # queue_full, finished, shutdown
)
WRITE_FAILURES = Counter(
    "pnyx_recording_write_failures_total", "Failed writes of a batch of recorded segments"
)
PENDING = Gauge(
    "pnyx_recording_pending_segments", "Recorded segments waiting to be stored, on this node"
)


def valid_space(space: str) -> str:
    """``space`` if it is a plausible space id (letters, digits, ``_`` and ``-``), else
    PnyxError NOT_FOUND: nothing else may become a key or a path."""
    if not _SPACE_ID.fullmatch(space):
        raise PnyxError(ErrorKind.NOT_FOUND, f"no space {space!r}", code="no_space")
    return space


class Recordings(Protocol):
    """Where a stage node's sink hands a recorded space's media. Never blocks and never
    raises for a store outage: the implementation queues (bounded) and retries."""

    def add_init(self, space: str, data: bytes) -> None:
        """The CMAF header (the same bytes on every node)."""

    def add_segment(self, space: str, ref: SegmentRef, data: bytes) -> None:
        """One finished segment (idempotent per ``ref.msn``)."""

    def finish(self, space: str) -> None:
        """The space has ended: store what is pending, then mark the recording finished."""


def parts_of(ref: SegmentRef) -> tuple[tuple[int, float, bool], ...]:
    return tuple((p.index, p.duration, p.independent) for p in ref.parts)


def ref_of(
    msn: int,
    duration: float,
    program_date_time: datetime,
    discontinuity: bool,
    parts: tuple[tuple[int, float, bool], ...],
) -> SegmentRef:
    return SegmentRef(
        msn=msn,
        duration=duration,
        program_date_time=program_date_time,
        parts=tuple(PartRef(msn, i, d, ind) for i, d, ind in parts),
        discontinuity=discontinuity,
    )
