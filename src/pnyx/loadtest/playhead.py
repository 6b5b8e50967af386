"""A virtual player's playhead (pure: the caller hands in ``now``).

Downloaded media is a set of [start, end) intervals of media time. Playback starts at a
chosen position once half a second of media from there has arrived (a media element
needs data ahead of the playhead before it plays); from then on the playhead advances
with wall time while the media under it is buffered. Reaching media not yet downloaded is
a STALL: the playhead waits there (rebuffers) until data covering it arrives, and the
stalled wall time is counted. A hole in the media with data after it (a discontinuity,
a segment the server never made) is jumped, as players' gap controllers do, and counted
as a skip, not a stall.
"""

from __future__ import annotations

GAP_TOLERANCE_S = 0.1  # intervals this close are one (rounding in durations)
START_BUFFER_S = 0.5  # media needed ahead of the start position before playing begins


class Playhead:
    def __init__(self, start_buffer_s: float = START_BUFFER_S) -> None:
        self.start_buffer_s = start_buffer_s
        self.position: float | None = None  # media time under the playhead
        self.playing = False  # started (whether or not stalled now)
        self.stalled_since: float | None = None
        self.stalls = 0
        self.stalled_s = 0.0
        self.skips = 0
        self.skipped_s = 0.0
        self._ranges: list[list[float]] = []  # sorted, merged [start, end]
        self._last: float | None = None  # wall time of the last advance

    # -- inputs --------------------------------------------------------------------------
    def start_at(self, position: float) -> None:
        """Choose where playback begins (before it has begun)."""
        if not self.playing:
            self.position = position

    def add(self, start: float, end: float, now: float) -> None:
        """Media [start, end) finished downloading at wall time ``now``."""
        self.advance(now)
        self._insert(start, end)
        if not self.playing:
            pos = self.position
            r = self._covering(pos) if pos is not None else None
            if pos is not None and r is not None and r[1] - pos >= self.start_buffer_s:
                self.playing = True
                self._last = now
        elif self.stalled_since is not None:
            self._resume(now)

    def advance(self, now: float) -> None:
        """Move the playhead to wall time ``now``."""
        last = self._last
        self._last = now
        if not self.playing or last is None or now <= last:
            return
        if self.stalled_since is not None:
            self._resume(now)
            if self.stalled_since is not None:
                return
            last = now  # resumed just now: nothing more to play in this step
        pos = self.position
        assert pos is not None
        budget = now - last
        while budget > 0:
            r = self._covering(pos)
            if r is None:
                self.stalled_since = now - budget
                self.stalls += 1
                break
            step = min(budget, r[1] - pos)
            pos += step
            budget -= step
            if budget > 0 and pos >= r[1]:
                nxt = self._after(pos)
                if nxt is None or nxt[0] - pos > GAP_TOLERANCE_S:
                    # jump a hole only when data lies beyond it
                    if nxt is not None:
                        self.skips += 1
                        self.skipped_s += nxt[0] - pos
                        pos = nxt[0]
                    else:
                        self.stalled_since = now - budget
                        self.stalls += 1
                        break
        self.position = pos
        self._drop_before(pos)

    # -- reading -------------------------------------------------------------------------
    @property
    def stalled(self) -> bool:
        return self.stalled_since is not None

    def buffered_end(self) -> float | None:
        """Where the next download should begin: the end of the newest media held
        (downloads go forward in order), or the start position before anything came."""
        pos = self.position
        ranges = self._ranges
        if not ranges:
            return pos
        end = ranges[-1][1]
        return end if pos is None else max(pos, end)

    def stalled_total(self, now: float) -> float:
        """Stalled seconds including a stall still in progress."""
        if self.stalled_since is None:
            return self.stalled_s
        return self.stalled_s + max(0.0, now - self.stalled_since)

    # -- internals -----------------------------------------------------------------------
    def _resume(self, now: float) -> None:
        pos = self.position
        assert pos is not None and self.stalled_since is not None
        if self._covering(pos) is None:
            nxt = self._after(pos)
            if nxt is None:
                return
            self.skips += 1
            self.skipped_s += nxt[0] - pos
            self.position = nxt[0]
        self.stalled_s += max(0.0, now - self.stalled_since)
        self.stalled_since = None

    def _covering(self, pos: float) -> list[float] | None:
        for r in self._ranges:
            if r[0] - GAP_TOLERANCE_S <= pos < r[1]:
                return r
        return None

    def _after(self, pos: float) -> list[float] | None:
        for r in self._ranges:
            if r[0] >= pos - GAP_TOLERANCE_S and r[1] > pos:
                return r
        return None

    def _insert(self, start: float, end: float) -> None:
        if end <= start:
            return
        ranges = self._ranges
        ranges.append([start, end])
        ranges.sort()
        merged: list[list[float]] = []
        for r in ranges:
            if merged and r[0] <= merged[-1][1] + GAP_TOLERANCE_S:
                merged[-1][1] = max(merged[-1][1], r[1])
            else:
                merged.append(r)
        self._ranges = merged

    def _drop_before(self, pos: float) -> None:
        ranges = self._ranges
        while len(ranges) > 1 and ranges[0][1] <= pos:
            ranges.pop(0)
