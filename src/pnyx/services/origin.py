"""The origin: LL-HLS for listeners, from the live state, so any node serves any space.
(The replay of recorded spaces comes from the durable store: services/replays.py.)

Storage layout in the live state (the names are made in live/keys.py):
  blob ``{space}/init.mp4``                 the CMAF init segment (TTL: a day, refreshed)
  blob ``{space}/part/{msn}.{i}.m4s``       LL-HLS parts (immutable; TTL media_part_ttl_s)
  blob ``{space}/seg/{msn}.m4s``            segments (immutable; TTL media_segment_ttl_s)
  blob ``{space}/vtt/{msn}.{half}.vtt``     WebVTT per half segment (segment TTL)
  snapshot of key ``hls_key(space)``, part "playlist": ``PlaylistState.to_json()`` (as a JSON
    document); its version grows with every published part, which is what blocking
    reload waits on. The part's own version is :func:`state_version`, so a late writer
    (a stage node that lost its lease) never overwrites a newer state.
Bytes are always stored before the state that lists them.

Listener reads touch the live state only. Blocking reload (RFC 8216bis §6.2.5.2): a
request for ``_HLS_msn``/``_HLS_part`` beyond the playlist's Advance Part Limit is refused
at once (MALFORMED → 400); otherwise it is held until the state satisfies it, for at most
``hls_block_s`` (by default three 2-second target durations, the spec's limit), and then
refused with UNAVAILABLE (→ 503): a 200 without the awaited part is what players treat as
a broken server, a 503 is what they retry.

Delta updates (§6.2.5.1): ``live.m3u8`` advertises ``CAN-SKIP-UNTIL``; ``_HLS_skip=YES``
gets the Playlist Delta Update of the same state (media/playlist.py), blocking or not.
``_HLS_skip=v2`` asks to skip ``EXT-X-DATERANGE`` tags too; these playlists have none, so
the YES delta is the v2 delta as well (nothing to skip, nothing recently removed) and is
what v2 gets (no ``CAN-SKIP-DATERANGES`` is advertised, so hls.js sends YES anyway). Any
other value, or a skip on a playlist that offers no deltas, is MALFORMED (→ 400).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pnyx.config import Settings
from pnyx.domain.types import SpaceId
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.base import JSON, EncodedJSON, LiveState, Snapshot
from pnyx.live.keys import blob_key, hls_key
from pnyx.media.hls import INIT_URI, Part, PlaylistState, Segment, StateEncoder
from pnyx.media.playlist import (
    captions_ready,
    captions_too_far,
    is_ready,
    is_too_far,
    render_captions,
    render_ll_hls,
    render_main,
    render_plain_hls,
)
from pnyx.media.recording import valid_space

log = logging.getLogger(__name__)

PlaylistKind = Literal["ll", "plain", "captions", "main"]
Rendering = Literal[PlaylistKind, "ll-delta"]
SKIP_VALUES = ("YES", "v2")  # _HLS_skip: the spec's two values (enumerated, case-sensitive)

PLAYLIST = "playlist"  # the snapshot part holding the PlaylistState
INIT_TTL_S = 24 * 3600.0
INIT_REFRESH_S = 3600.0  # the writer re-stores the init this often (spaces outlive a day)
_CACHED_SPACES = 1024

_MEDIA_NAME = re.compile(
    r"init\.mp4|part/(0|[1-9]\d{0,11})\.(0|[1-9]\d{0,5})\.m4s|seg/(0|[1-9]\d{0,11})\.m4s"
    r"|vtt/(0|[1-9]\d{0,11})\.[0-9]\.vtt",
    re.ASCII,
)


def state_version(state: PlaylistState) -> int:
    """The snapshot part version of ``state``: greater for every state that lists more
    media or ends the stream, whichever node (first or taking over) publishes it."""
    return ((state.next_msn << 16) + len(state.parts)) * 2 + int(state.ended)


@dataclass(slots=True)
class _Seen:
    """The last playlist state seen for a space, and its renderings, made once each."""

    doc: JSON
    state: PlaylistState
    texts: dict[Rendering, str] = field(default_factory=dict)

    def render(self, kind: Rendering, settings: Settings) -> str:
        text = self.texts.get(kind)
        if text is None:
            state = self.state
            if kind == "ll":
                text = render_ll_hls(state)
            elif kind == "ll-delta":
                text = render_ll_hls(state, delta=True)
            elif kind == "plain":
                text = render_plain_hls(state)
            elif kind == "captions":
                text = render_captions(state)
            else:
                text = render_main(
                    state,
                    bandwidth=settings.aac_bitrate * 11 // 10,
                    language=settings.captions_language,
                )
            self.texts[kind] = text
        return text


class Origin:
    def __init__(self, settings: Settings, live: LiveState) -> None:
        self._s = settings
        self._live = live
        self._inits: dict[str, tuple[bytes, float]] = {}  # writer side: bytes, stored at
        self._encoders: dict[str, StateEncoder] = {}  # writer side: the state's JSON
        self._seen_by_space: dict[str, _Seen] = {}

    # -- written by the stage node (services/media.py) -----------------------------------
    async def store_init(self, space: SpaceId, data: bytes) -> None:
        await self._live.put_blob(blob_key(valid_space(space), INIT_URI), data, INIT_TTL_S)
        self._inits[space] = (data, time.monotonic())

    async def store(
        self,
        space: SpaceId,
        outputs: Sequence[Part | Segment],
        state: PlaylistState,
        captions: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """Store the new parts/segments (and their segments' captions: ``(uri, bytes)``),
        then publish ``state`` (which lists them)."""
        valid_space(space)
        s = self._s
        writes = [
            *(
                self._live.put_blob(
                    blob_key(space, out.ref.uri),
                    out.data,
                    s.media_part_ttl_s if isinstance(out, Part) else s.media_segment_ttl_s,
                )
                for out in outputs
            ),
            *(
                self._live.put_blob(blob_key(space, uri), data, s.media_segment_ttl_s)
                for uri, data in captions
            ),
        ]
        if len(writes) == 1:  # the usual batch, one part: no task to gather it
            await writes[0]
        elif writes:
            await asyncio.gather(*writes)
        await self._refresh_init(space, ended=state.ended)
        doc = EncodedJSON(self._encoder(space, ended=state.ended).encode(state))
        if await self._live.put_part(hls_key(space), PLAYLIST, doc, state_version(state)) is None:
            level = logging.WARNING if outputs else logging.DEBUG
            log.log(level, "space %s: stale playlist state ignored (msn %d)", space, state.next_msn)

    def _encoder(self, space: str, *, ended: bool) -> StateEncoder:
        """The space's playlist-state encoder (its last window's texts), forgotten when
        the stream ends."""
        encoder = self._encoders.pop(space, None) if ended else self._encoders.get(space)
        if encoder is None:
            encoder = StateEncoder()
            if not ended:
                if len(self._encoders) >= _CACHED_SPACES:  # spaces this node stopped running
                    self._encoders.clear()
                self._encoders[space] = encoder
        return encoder

    async def _refresh_init(self, space: str, *, ended: bool) -> None:
        held = self._inits.get(space)
        if held is None:
            return
        if ended:
            del self._inits[space]
        elif time.monotonic() - held[1] >= INIT_REFRESH_S:
            await self._live.put_blob(blob_key(space, INIT_URI), held[0], INIT_TTL_S)
            self._inits[space] = (held[0], time.monotonic())

    # -- read by listeners (api/media.py) -----------------------------------------------
    async def playlist(
        self,
        space: SpaceId,
        kind: Literal["ll", "plain", "captions"],
        msn: int | None,
        part: int | None,
        skip: str | None = None,
    ) -> str:
        """The live playlist; with ``msn`` (and ``part``) a blocking reload that waits up
        to hls_block_s for that part to exist (``captions``: for captions file ``msn``;
        it has no parts); with ``skip`` (``_HLS_skip``: YES or v2, ``ll`` only) its
        delta update. PnyxError NOT_FOUND when the space has no audio (yet) or
        (``captions``) is not captioned; MALFORMED (→ 400) when msn/part/skip is bad or
        too far ahead; UNAVAILABLE (→ 503) when it did not appear in time."""
        _check_directives(msn, part)
        _check_skip(kind, skip)
        if kind == "captions" and part is not None:
            raise PnyxError(
                ErrorKind.MALFORMED,
                "the captions playlist has no parts: block on _HLS_msn alone",
                code="bad_directive",
            )
        key = hls_key(valid_space(space))
        snap = await self._current(space)
        seen = self._seen(space, snap)
        state = seen.state
        if kind == "captions":
            _check_captioned(space, state)
        if msn is not None:
            if captions_too_far(state, msn) if kind == "captions" else is_too_far(state, msn, part):
                raise PnyxError(
                    ErrorKind.MALFORMED,
                    f"_HLS_msn={msn}/_HLS_part={part} is too far ahead of the playlist "
                    f"(next segment {state.next_msn}, {len(state.parts)} parts)",
                    code="too_far_ahead",
                )
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._s.hls_block_s
            while not (
                captions_ready(state, msn) if kind == "captions" else is_ready(state, msn, part)
            ):
                remaining = deadline - loop.time()
                newer = None
                if remaining > 0:
                    newer = await self._live.wait_snapshot(key, snap.version, remaining)
                if newer is None or PLAYLIST not in newer.parts:
                    raise PnyxError(
                        ErrorKind.UNAVAILABLE,
                        f"segment {msn} part {part} did not appear within "
                        f"{self._s.hls_block_s:g} s; reload the playlist",
                        code="not_ready",
                        retry_after=1.0,
                    )
                snap = newer
                seen = self._seen(space, snap)
                state = seen.state
        if kind == "plain" and not state.segments:
            # Players without LL-HLS need one whole segment to start; an empty playlist
            # would make them give up (ffmpeg does). Same answer as "no audio yet".
            raise PnyxError(
                ErrorKind.NOT_FOUND,
                f"space {space} has no complete segment yet; retry in a moment",
                code="no_audio",
                retry_after=1.0,
            )
        return seen.render("ll-delta" if skip is not None else kind, self._s)

    async def main(self, space: SpaceId) -> str:
        """The multivariant playlist. NOT_FOUND when the space has no audio yet."""
        return self._seen(space, await self._current(valid_space(space))).render("main", self._s)

    async def media_object(self, space: SpaceId, name: str) -> bytes:
        """``init.mp4``, ``part/{msn}.{i}.m4s``, ``seg/{msn}.m4s`` or ``vtt/{msn}.{h}.vtt``;
        NOT_FOUND if absent.
        A request for the hinted next part waits (≤ hls_block_s) until it exists."""
        valid_space(space)
        match = _MEDIA_NAME.fullmatch(name)
        if match is None:
            raise PnyxError(
                ErrorKind.NOT_FOUND,
                f"no media object {name!r}: expected init.mp4, part/<msn>.<i>.m4s, "
                "seg/<msn>.m4s or vtt/<msn>.<half>.vtt",
                code="no_such_object",
            )
        key = blob_key(space, name)
        data = await self._live.get_blob(key)
        if data is None and match[1] is not None:
            data = await self._await_hinted_part(space, int(match[1]), int(match[2]), key)
        if data is None:
            raise PnyxError(
                ErrorKind.NOT_FOUND,
                f"{name} of space {space} is not available (not produced yet, or expired)",
                code="not_available",
                retry_after=1.0,
            )
        return data

    async def _await_hinted_part(self, space: str, msn: int, index: int, key: str) -> bytes | None:
        """Hold a request for the preload-hinted part until it is published."""
        hkey = hls_key(space)
        snap = await self._live.get_snapshot(hkey)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._s.hls_block_s
        while snap is not None and PLAYLIST in snap.parts:
            state = self._seen(space, snap).state
            if state.ended or (msn, index) != (state.next_msn, len(state.parts)):
                break  # no longer the hint: it was published just now, or never will be
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            snap = await self._live.wait_snapshot(hkey, snap.version, remaining)
        return await self._live.get_blob(key)

    async def _current(self, space: str) -> Snapshot:
        """The space's playlist snapshot; NOT_FOUND ``no_audio`` until it has one."""
        snap = await self._live.get_snapshot(hls_key(space))
        if snap is None or PLAYLIST not in snap.parts:
            raise PnyxError(
                ErrorKind.NOT_FOUND,
                f"space {space} has no audio yet; retry in a moment",
                code="no_audio",
                retry_after=1.0,
            )
        return snap

    def _seen(self, space: str, snap: Snapshot) -> _Seen:
        """The state in ``snap``, parsed once per new state (not once per request)."""
        doc = snap.parts[PLAYLIST]
        seen = self._seen_by_space.get(space)
        if seen is None or seen.doc != doc:
            if len(self._seen_by_space) >= _CACHED_SPACES:
                self._seen_by_space.clear()
            state = PlaylistState.from_doc(doc)
            seen = self._seen_by_space[space] = _Seen(doc, state)
        return seen


def _check_captioned(space: str, state: PlaylistState) -> None:
    if not state.captions:
        raise PnyxError(
            ErrorKind.NOT_FOUND,
            f"space {space} has no captions (its host turned them off, or its stage "
            "node does not caption)",
            code="no_captions",
        )


def _check_skip(kind: str, skip: str | None) -> None:
    problem = None
    if skip is None:
        return
    if skip not in SKIP_VALUES:
        problem = f"_HLS_skip must be YES or v2 (a delta update), not {skip[:32]!r}"
    elif kind != "ll":
        problem = "only live.m3u8 makes delta updates (_HLS_skip): reload this playlist whole"
    if problem is not None:
        raise PnyxError(ErrorKind.MALFORMED, problem, code="bad_directive")


def _check_directives(msn: int | None, part: int | None) -> None:
    problem = None
    if part is not None and msn is None:
        problem = "_HLS_part needs _HLS_msn"
    elif (msn is not None and msn < 0) or (part is not None and part < 0):
        problem = "_HLS_msn and _HLS_part are non-negative integers"
    if problem is not None:
        raise PnyxError(ErrorKind.MALFORMED, problem, code="bad_directive")
