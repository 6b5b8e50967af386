"""Listener media routes under /media/{space}/… and the recording download.

Every route here is a plain GET with no token and nothing per listener: the URL alone
decides the answer, so an edge cache collapses every listener onto one origin request.

* Parts, segments, init segments and recordings never change once they exist:
  ``public, max-age=31536000, immutable``. A replay (``replay.m3u8``, ``rec/…``,
  ``recording.m4a``) is served only once its recording is finished (complete, the same
  bytes from every node), so it is immutable too; before that the answer is an error:
  409 while the space is live, 503 ``not_ready`` with ``Retry-After`` while its
  recording is being finished (cached at most a second, like the other "not yet"s).
  Its host may delete it, though (410 ``recording_deleted`` from then on), so edges keep
  replay objects only ``s-maxage=replay_edge_ttl_s``; browsers still keep the year.
* Live playlists change every part: ``public, max-age=1, stale-while-revalidate=1`` —
  blocking reloads and delta updates too (their URL, with
  ``_HLS_msn``/``_HLS_part``/``_HLS_skip``, is the same for every listener waiting on
  it). An edge serves a stale copy while it refreshes one only within that second.
* Errors are ``no-store``, except the "not yet" ones (no audio yet, part not produced yet,
  blocking reload timed out), which every listener asks at the same moment and which stop
  being true within a second: ``public, max-age=1``.
* ``Access-Control-Allow-Origin: *`` on everything (players on other origins).

Media objects are ``audio/mp4`` (the stream is audio-only fMP4/CMAF), captions
``text/vtt``; playlists are ``application/vnd.apple.mpegurl``.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute

from pnyx.api.deps import ServicesDep
from pnyx.api.errors import error_response
from pnyx.api.openapi import raises
from pnyx.api.schemas import SpaceIdPath
from pnyx.domain.types import SpaceId
from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.facade import Services

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
MEDIA_TYPE = "audio/mp4"
VTT_TYPE = "text/vtt; charset=utf-8"
IMMUTABLE = "public, max-age=31536000, immutable"
# A live playlist: fresh for a second; an edge may serve it a second past that while it
# fetches the next (never older: a crowd after a lull starts from a current copy).
LIVE = "public, max-age=1, stale-while-revalidate=1"
BRIEF = "public, max-age=1"  # the "not yet" errors
NOT_YET = {"no_audio", "not_ready", "not_available"}  # error codes worth caching briefly
CORS = {"Access-Control-Allow-Origin": "*"}


class MediaRoute(APIRoute):
    """Adds CORS to every answer, and the short cache to "not yet" errors."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except PnyxError as exc:
                response = error_response(exc)
                if exc.code in NOT_YET:
                    response.headers["Cache-Control"] = BRIEF
            if response.media_type == PLAYLIST_TYPE:
                _gzip_playlist(request, response)
            response.headers.update(CORS)
            return response

        return handle


router = APIRouter(tags=["media"], route_class=MediaRoute)

MsnQuery = Annotated[
    int | None,
    Query(alias="_HLS_msn", description="block until this media sequence number exists"),
]
PartQuery = Annotated[
    int | None,
    Query(alias="_HLS_part", description="…and this part of it (needs _HLS_msn)"),
]
SkipQuery = Annotated[
    str | None,
    Query(
        alias="_HLS_skip",
        description="a Playlist Delta Update: `YES` (or `v2`, the same here: these playlists "
        "have no date ranges) replaces the segments that ended `CAN-SKIP-UNTIL` seconds "
        "or more before the live edge with `EXT-X-SKIP`; combines with `_HLS_msn`/`_HLS_part`",
    ),
]
NoSkipQuery = Annotated[
    str | None,
    Query(
        alias="_HLS_skip",
        description="refused (400 `bad_directive`): only live.m3u8 makes delta updates",
    ),
]


_IMMUTABLE_HEADER = {"Cache-Control": {"schema": {"type": "string"}, "description": IMMUTABLE}}
_PLAYLIST_OK: dict[str, Any] = {"content": {PLAYLIST_TYPE: {"schema": {"type": "string"}}}}
_MEDIA_OK: dict[str, Any] = {
    "content": {MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    "headers": _IMMUTABLE_HEADER,
}


def replay_cache(services: Services) -> str:
    """A replay object's Cache-Control: immutable for browsers (a year), but an edge keeps
    it only ``replay_edge_ttl_s`` (``s-maxage``) before asking again, so a recording its
    host deleted leaves every edge within that (services/replays.py)."""
    ttl = services.config.replay_edge_ttl_s
    return f"public, max-age=31536000, s-maxage={ttl}, immutable"


IfNoneMatch = Annotated[
    str | None,
    Header(
        description="an ETag this route gave (an edge revalidating its copy): 304 while "
        "the recording still holds it",
    ),
]


def _etag(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return f'"{hashlib.blake2b(raw, digest_size=12).hexdigest()}"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return etag in tags or "*" in tags


def _replay_answer(
    services: Services, etag: str, if_none_match: str | None, make: Callable[[], Response]
) -> Response:
    """A replay object with its ETag, or 304 when the edge's copy is still it: an edge
    revalidates every ``replay_edge_ttl_s`` for the price of a header, not the bytes."""
    headers = {"Cache-Control": replay_cache(services), "ETag": etag}
    if _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    response = make()
    response.headers.update(headers)
    return response


GZIP_MIN_BYTES = 256  # a smaller playlist is not worth a gzip header


def _accepts_gzip(request: Request) -> bool:
    for coding in request.headers.get("accept-encoding", "").split(","):
        name, _, params = coding.strip().partition(";")
        if name.strip().lower() in ("gzip", "x-gzip"):
            q = params.strip().removeprefix("q=").strip() if params else "1"
            try:
                return float(q) > 0
            except ValueError:
                return True
    return False


@functools.lru_cache(maxsize=32)
def _gzipped(body: bytes) -> bytes:
    """Every listener waiting on a blocking reload gets the same playlist: zip it once
    (~25 µs on the event loop), not once per listener reading the node directly."""
    return gzip.compress(body, compresslevel=6, mtime=0)


def _gzip_playlist(request: Request, response: Response) -> None:
    """Playlists go gzipped to whoever accepts it (every browser; an edge always asks,
    keeps the one copy and unzips it for a client that does not: ``pnyx edge-config``).
    A low-latency listener reloads one about eight times a second, and its parts' lines
    compress to about an eighth (docs/benchmarks.md). Not a replay's playlist: it is
    read once per player, and its ETag names the plain bytes (edges revalidate it)."""
    if "etag" in response.headers:
        return
    response.headers["Vary"] = "Accept-Encoding"
    body = bytes(response.body)
    if response.status_code != 200 or len(body) < GZIP_MIN_BYTES:
        return
    if not _accepts_gzip(request):
        return
    packed = _gzipped(body)
    response.body = packed
    response.headers["Content-Encoding"] = "gzip"
    response.headers["Content-Length"] = str(len(packed))


def _playlist(text: str, cache: str = LIVE) -> Response:
    return Response(text, media_type=PLAYLIST_TYPE, headers={"Cache-Control": cache})


async def _object(services: Services, space_id: str, name: str) -> Response:
    data = await services.origin.media_object(SpaceId(space_id), name)
    return Response(data, media_type=MEDIA_TYPE, headers={"Cache-Control": IMMUTABLE})


# -- live (from the live state) ----------------------------------------------------------
_LIVE_PLAYLIST: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The playlist (`public, max-age=1, stale-while-revalidate=1`).",
        **_PLAYLIST_OK,
    },
    **raises(
        notes={
            ErrorKind.MALFORMED: "A bad blocking-reload or delta directive (`bad_directive`: "
            "`_HLS_skip` other than `YES`/`v2`, or on a playlist without delta updates), "
            "or one too far ahead of the playlist (`too_far_ahead`).",
            ErrorKind.NOT_FOUND: "No such space, or no audio yet (`no_audio`, with `Retry-After`).",
            ErrorKind.UNAVAILABLE: "The segment or part asked for did not appear within "
            "`hls_block_s` (`not_ready`): reload the playlist.",
        }
    ),
}
_MEDIA_OBJECT: dict[int | str, dict[str, Any]] = {
    200: {"description": "The media object (immutable).", **_MEDIA_OK},
    **raises(
        notes={
            ErrorKind.NOT_FOUND: "No such object (`no_such_object`), or not produced yet or "
            "expired (`not_available`, with `Retry-After`)."
        }
    ),
}


@router.get("/media/{space_id}/live.m3u8", response_class=Response, responses=_LIVE_PLAYLIST)
async def live_playlist(
    space_id: SpaceIdPath,
    services: ServicesDep,
    msn: MsnQuery = None,
    part: PartQuery = None,
    skip: SkipQuery = None,
) -> Response:
    """The LL-HLS playlist. With ``_HLS_msn`` (and ``_HLS_part``) a blocking reload:
    held until that segment (part) exists, 400 if it is too far ahead, 503 if it did not
    appear within ``hls_block_s``. With ``_HLS_skip=YES`` (or ``v2``) a delta update:
    the segments older than ``CAN-SKIP-UNTIL`` as one ``EXT-X-SKIP`` tag. 404 until the
    space has audio."""
    space = SpaceId(space_id)
    return _playlist(await services.origin.playlist(space, "ll", msn, part, skip))


@router.get("/media/{space_id}/plain.m3u8", response_class=Response, responses=_LIVE_PLAYLIST)
async def plain_playlist(
    space_id: SpaceIdPath,
    services: ServicesDep,
    msn: MsnQuery = None,
    part: PartQuery = None,
    skip: NoSkipQuery = None,
) -> Response:
    """The same live window as whole segments, for players without LL-HLS."""
    space = SpaceId(space_id)
    return _playlist(await services.origin.playlist(space, "plain", msn, part, skip))


@router.get(
    "/media/{space_id}/main.m3u8",
    response_class=Response,
    responses={
        200: {
            "description": "The multivariant playlist"
            " (`public, max-age=1, stale-while-revalidate=1`).",
            **_PLAYLIST_OK,
        },
        **raises(notes={ErrorKind.NOT_FOUND: "No such space, or no audio yet (`no_audio`)."}),
    },
)
async def main_playlist(space_id: SpaceIdPath, services: ServicesDep) -> Response:
    """The multivariant playlist: the audio (``live.m3u8``) and, for a captioned space,
    its WebVTT subtitles rendition (``captions.m3u8``, ``#EXT-X-MEDIA:TYPE=SUBTITLES``)."""
    return _playlist(await services.origin.main(SpaceId(space_id)))


_CAPTIONS_PLAYLIST: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The subtitles playlist (`public, max-age=1, stale-while-revalidate=1`).",
        **_PLAYLIST_OK,
    },
    **raises(
        notes={
            ErrorKind.MALFORMED: "A bad blocking-reload directive (`bad_directive`: "
            "`_HLS_part` is refused, the captions have no parts; so is `_HLS_skip`), or one "
            "too far ahead of the playlist (`too_far_ahead`).",
            ErrorKind.NOT_FOUND: "No such space, no audio yet (`no_audio`), or the "
            "space is not captioned (`no_captions`).",
            ErrorKind.UNAVAILABLE: "The captions file asked for did not appear within "
            "`hls_block_s` (`not_ready`): reload the playlist.",
        }
    ),
}

CaptionsMsnQuery = Annotated[
    int | None,
    Query(
        alias="_HLS_msn",
        description="block until the captions file with this media sequence number is listed",
    ),
]
CaptionsPartQuery = Annotated[
    int | None,
    Query(
        alias="_HLS_part", description="refused (400 `bad_directive`): the captions have no parts"
    ),
]


@router.get(
    "/media/{space_id}/captions.m3u8", response_class=Response, responses=_CAPTIONS_PLAYLIST
)
async def captions_playlist(
    space_id: SpaceIdPath,
    services: ServicesDep,
    msn: CaptionsMsnQuery = None,
    part: CaptionsPartQuery = None,
    skip: NoSkipQuery = None,
) -> Response:
    """The live captions as an HLS subtitles rendition: one WebVTT file per half audio
    segment (numbered ``msn·2 + half``), each holding the cues recognised while its parts
    were made, timed by ``X-TIMESTAMP-MAP`` on the audio's own clock. With ``_HLS_msn`` a
    blocking reload: held until that file is listed, 400 if it is too far ahead, 503 if
    it did not appear within ``hls_block_s``."""
    space = SpaceId(space_id)
    return _playlist(await services.origin.playlist(space, "captions", msn, part, skip))


@router.get(
    "/media/{space_id}/vtt/{msn}.{half}.vtt",
    response_class=Response,
    responses={
        200: {
            "description": "A segment's captions (immutable).",
            "content": {VTT_TYPE: {"schema": {"type": "string"}}},
            "headers": _IMMUTABLE_HEADER,
        },
        **raises(
            notes={
                ErrorKind.NOT_FOUND: "No such object (`no_such_object`), or not produced yet "
                "or expired (`not_available`, with `Retry-After`)."
            }
        ),
    },
)
async def media_captions(
    space_id: SpaceIdPath, msn: str, half: str, services: ServicesDep
) -> Response:
    """The captions recognised while the first (``half`` 0) or second half of segment
    ``msn``'s parts were made (their times are their speech's: a few seconds earlier)."""
    data = await services.origin.media_object(SpaceId(space_id), f"vtt/{msn}.{half}.vtt")
    return Response(data, media_type=VTT_TYPE, headers={"Cache-Control": IMMUTABLE})


@router.get("/media/{space_id}/init.mp4", response_class=Response, responses=_MEDIA_OBJECT)
async def media_init(space_id: SpaceIdPath, services: ServicesDep) -> Response:
    return await _object(services, space_id, "init.mp4")


@router.get(
    "/media/{space_id}/part/{msn}.{part}.m4s", response_class=Response, responses=_MEDIA_OBJECT
)
async def media_part(space_id: SpaceIdPath, msn: str, part: str, services: ServicesDep) -> Response:
    """An LL-HLS part; the preload-hinted next part is held until it exists."""
    return await _object(services, space_id, f"part/{msn}.{part}.m4s")


@router.get("/media/{space_id}/seg/{msn}.m4s", response_class=Response, responses=_MEDIA_OBJECT)
async def media_segment(space_id: SpaceIdPath, msn: str, services: ServicesDep) -> Response:
    return await _object(services, space_id, f"seg/{msn}.m4s")


# -- the replay (from the durable store, once its recording is finished) ------------------
_DELETED = "The host deleted the recording (`recording_deleted`)."
_REPLAY_HEADER = {
    "Cache-Control": {
        "schema": {"type": "string"},
        "description": "public, max-age=31536000, s-maxage=`replay_edge_ttl_s`, immutable",
    },
    "ETag": {"schema": {"type": "string"}, "description": "the same for the same bytes"},
}
_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {
        "description": "Not modified: `If-None-Match` holds this object's ETag, and the "
        "recording is still there (an edge revalidating its copy).",
        "headers": _REPLAY_HEADER,
    }
}
_REPLAY_ERRORS = raises(
    notes={
        ErrorKind.GONE: _DELETED,
        ErrorKind.NOT_FOUND: "No such space, not recorded, or nothing was recorded "
        "(`no_space`, `no_recording`).",
        ErrorKind.CONFLICT: "The space is still live (`still_live`).",
        ErrorKind.UNAVAILABLE: "The space has ended and its recording is being finished "
        "(`not_ready`; cached at most a second).",
    }
)


@router.get(
    "/media/{space_id}/replay.m3u8",
    response_class=Response,
    responses={
        200: {
            "description": "The finished recording as a VOD playlist (immutable; edges "
            "keep it `replay_edge_ttl_s`).",
            **_PLAYLIST_OK,
            "headers": _REPLAY_HEADER,
        },
        **_NOT_MODIFIED,
        **_REPLAY_ERRORS,
    },
)
async def replay_playlist(
    space_id: SpaceIdPath, services: ServicesDep, if_none_match: IfNoneMatch = None
) -> Response:
    """The recording as a VOD playlist, the same from every node; served only once the
    recording is finished: 404 for an unknown or unrecorded space, 409 while it is live,
    503 `not_ready` (with `Retry-After`) while its recording is being finished."""
    text = await services.replays.playlist(SpaceId(space_id))
    return _replay_answer(services, _etag(text), if_none_match, lambda: _playlist(text))


@router.get(
    "/media/{space_id}/rec/{name}",
    response_class=Response,
    responses={
        200: {
            "description": "The recorded header or segment (immutable; edges keep it "
            "`replay_edge_ttl_s`).",
            **_MEDIA_OK,
            "headers": _REPLAY_HEADER,
        },
        **_NOT_MODIFIED,
        **raises(
            notes={
                ErrorKind.NOT_FOUND: "No such space, or no such recorded object "
                "(`no_space`, `no_recording`).",
                ErrorKind.GONE: _DELETED,
            }
        ),
    },
)
async def recorded(
    space_id: SpaceIdPath, name: str, services: ServicesDep, if_none_match: IfNoneMatch = None
) -> Response:
    """``rec/init.mp4`` and ``rec/{msn}.m4s``: the recorded header and segments."""
    data = await services.replays.recorded(SpaceId(space_id), name)
    return _replay_answer(
        services, _etag(data), if_none_match, lambda: Response(data, media_type=MEDIA_TYPE)
    )


@router.get(
    "/v1/spaces/{space_id}/recording.m4a",
    response_class=Response,
    responses={
        200: {
            "description": "The finished recording as one fragmented MP4 (AAC audio), "
            "streamed; byte-identical from every node (immutable; edges keep it "
            "`replay_edge_ttl_s`).",
            **_MEDIA_OK,
            "headers": _REPLAY_HEADER,
        },
        **_NOT_MODIFIED,
        **_REPLAY_ERRORS,
    },
)
async def recording(
    space_id: SpaceIdPath, services: ServicesDep, if_none_match: IfNoneMatch = None
) -> Response:
    """The whole recording as one fragmented MP4 (AAC audio) to download: the same
    errors as `replay.m3u8` until the recording is finished."""
    export = await services.replays.export(SpaceId(space_id))
    headers = {
        "Content-Length": str(export.size),
        "Content-Disposition": f'attachment; filename="pnyx-{space_id}.m4a"',
    }
    return _replay_answer(
        services,
        f'"{export.version}"',
        if_none_match,
        lambda: StreamingResponse(export.chunks, media_type=MEDIA_TYPE, headers=headers),
    )
