"""Recordings on disk: every finished segment of a recorded space, kept for the replay.

Blocking file I/O: callers run these methods in a worker thread (``asyncio.to_thread``).

Layout, per space, under ``root`` (``settings.recordings_dir``)::

    {space}/init.mp4          the CMAF header (the same bytes for the whole space)
    {space}/seg/{msn}.m4s     one file per finished segment (its parts, concatenated)
    {space}/index.jsonl       one JSON line per segment: the SegmentRef's fields
    {space}/finished          present once the space has ended (the recording is complete)

Crash safety: a segment's file is written to a temporary name, fsynced and renamed into
place (``os.replace``) *before* its index line is appended (and fsynced), so the index never
names a file that is not whole. A crash mid-append leaves at most a torn last line, which
readers skip and the next append starts after (it first ends the torn line).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pnyx.errors import ErrorKind, PnyxError
from pnyx.media.hls import PartRef, SegmentRef

log = logging.getLogger(__name__)

INIT = "init.mp4"
INDEX = "index.jsonl"
FINISHED = "finished"
SEGMENTS = "seg"
EXPORT_CHUNK = 256 * 1024  # bytes per chunk handed to the HTTP layer by ``export``

_SPACE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)


def valid_space(space: str) -> str:
    """``space`` if it is a plausible space id (letters, digits, ``_`` and ``-``), else
    PnyxError NOT_FOUND: nothing else may become a path (no ``..``, no separators)."""
    if not _SPACE_ID.fullmatch(space):
        raise PnyxError(ErrorKind.NOT_FOUND, f"no space {space!r}", code="no_space")
    return space


def ref_to_json(ref: SegmentRef) -> str:
    doc = {
        "msn": ref.msn,
        "duration": ref.duration,
        "program_date_time": ref.program_date_time.isoformat(),
        "parts": [
            {"msn": p.msn, "index": p.index, "duration": p.duration, "independent": p.independent}
            for p in ref.parts
        ],
        "discontinuity": ref.discontinuity,
    }
    return json.dumps(doc, separators=(",", ":"))


def ref_from_json(line: str) -> SegmentRef:
    """Raises ValueError (json.JSONDecodeError included), KeyError or TypeError when the
    line is not a whole index entry."""
    doc: dict[str, Any] = json.loads(line)
    msn = int(doc["msn"])
    return SegmentRef(
        msn=msn,
        duration=float(doc["duration"]),
        program_date_time=datetime.fromisoformat(doc["program_date_time"]),
        parts=tuple(
            PartRef(msn, int(p["index"]), float(p["duration"]), bool(p["independent"]))
            for p in doc["parts"]
        ),
        discontinuity=bool(doc["discontinuity"]),
    )


class Recordings:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()  # appends to an index are whole lines, one at a time

    # -- paths ------------------------------------------------------------------------
    def folder(self, space: str) -> Path:
        return self.root / valid_space(space)

    def init_path(self, space: str) -> Path:
        return self.folder(space) / INIT

    def segment_path(self, space: str, msn: int) -> Path:
        if msn < 0:
            raise PnyxError(ErrorKind.NOT_FOUND, f"no recorded segment {msn}", code="no_segment")
        return self.folder(space) / SEGMENTS / f"{msn}.m4s"

    # -- writing (the stage node) --------------------------------------------------------
    def write_init(self, space: str, data: bytes) -> None:
        folder = self.folder(space)
        (folder / SEGMENTS).mkdir(parents=True, exist_ok=True)
        _fsync_dir(folder.parent)
        _write_atomic(folder / INIT, data)

    def add_segment(self, space: str, ref: SegmentRef, data: bytes) -> None:
        """Durably store one finished segment (file + index entry, fsynced)."""
        path = self.segment_path(space, ref.msn)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, data)
        line = (ref_to_json(ref) + "\n").encode()
        with self._lock, (path.parent.parent / INDEX).open("a+b") as index:
            if index.tell() > 0:
                index.seek(-1, os.SEEK_END)
                if index.read(1) != b"\n":
                    line = b"\n" + line  # end a line torn by a crash; readers skip it
            index.write(line)
            index.flush()
            os.fsync(index.fileno())

    def finish(self, space: str) -> None:
        folder = self.folder(space)
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(folder / FINISHED, b"")
        log.info("recording of space %s finished", space)

    # -- reading (the origin) ---------------------------------------------------------------
    def exists(self, space: str) -> bool:
        """Is there a recording (at least its header) for ``space``?"""
        return self.init_path(space).is_file()

    def finished(self, space: str) -> bool:
        return (self.folder(space) / FINISHED).is_file()

    def refs(self, space: str) -> list[SegmentRef]:
        """The recorded segments in sequence order (one per sequence number: the last entry
        wins); unreadable lines (a torn last line after a crash) and entries whose file is
        gone are skipped."""
        try:
            text = (self.folder(space) / INDEX).read_text(errors="replace")
        except FileNotFoundError:
            return []
        by_msn: dict[int, SegmentRef] = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                ref = ref_from_json(line)
            except (ValueError, KeyError, TypeError):
                log.warning("recording %s: skipping unreadable index line %d", space, number)
                continue
            by_msn[ref.msn] = ref
        return [by_msn[msn] for msn in sorted(by_msn) if self.segment_path(space, msn).is_file()]

    def export_size(self, space: str, refs: Sequence[SegmentRef]) -> int:
        """The byte length of :meth:`export` over ``refs``."""
        paths = [self.init_path(space)] + [self.segment_path(space, r.msn) for r in refs]
        return sum(p.stat().st_size for p in paths)

    def export(self, space: str, refs: Sequence[SegmentRef]) -> Iterator[bytes]:
        """The whole recording as one fragmented MP4: the header, then every segment, in
        chunks of about :data:`EXPORT_CHUNK` bytes (a blocking iterator)."""
        paths = [self.init_path(space)] + [self.segment_path(space, r.msn) for r in refs]
        buffer = bytearray()
        for path in paths:
            buffer += path.read_bytes()
            if len(buffer) >= EXPORT_CHUNK:
                yield bytes(buffer)
                buffer.clear()
        if buffer:
            yield bytes(buffer)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all, and make it durable."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    with tmp.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
