"""Signed links: how a private space's listener reads are allowed.

A signed link is a plain listener path behind the prefix ``/p/{exp}/{sig}/``::

    /p/1765000000/AbC-_x/media/p-Xy…/live.m3u8
    /p/1765000000/AbC-_x/v1/spaces/p-Xy…/state?after=7

``exp`` is a unix time in seconds; ``sig`` is the base64url (no padding) of the binary
MD5 of ``f"{exp}{space} {secret}"``: exactly what nginx's ``secure_link_md5
"$exp$space $secret"`` computes, so an edge checks a link without asking a node, and an
unsigned request for a private space never reaches one. The signature covers the space
and the expiry, not the rest of the path: one signature opens every listener read of
that space (its playlists, the parts they name by relative URI, its state and its
description), so an edge still collapses every listener onto one origin request per
object. MD5 is what stock nginx offers; the secret keeps it from being forged, and the
node checks the same signature (constant-time) for requests that reach it directly.

``exp`` is rounded up to ``link_step_s``: every link handed out in the same few minutes
is the same URL (and the same cache key at the edge).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pnyx.domain.types import PRIVATE_ID_PREFIX, SpaceId
from pnyx.errors import ErrorKind, PnyxError

SIGNED_PREFIX = "/p/"
_SIG = re.compile(r"[A-Za-z0-9_-]{22}")  # 16 bytes of MD5, base64url without padding
_EXP = re.compile(r"[0-9]{1,12}")


def is_private(space: str) -> bool:
    """Private spaces are known by their id alone (no store read): ``p-…``."""
    return space.startswith(PRIVATE_ID_PREFIX)


def sign(space: str, exp: int, secret: str) -> str:
    """The signature of ``space`` until ``exp`` (what nginx secure_link_md5 computes)."""
    digest = hashlib.md5(f"{exp}{space} {secret}".encode(), usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def verify(space: str, exp: str, sig: str, secret: str, now: float) -> int:
    """The expiry of a valid link; raises FORBIDDEN ``bad_signature`` for a malformed or
    wrong signature and GONE ``link_expired`` for a valid one past its expiry."""
    if not _EXP.fullmatch(exp) or not _SIG.fullmatch(sig):
        raise PnyxError(
            ErrorKind.FORBIDDEN,
            "malformed signed link: expected /p/{expiry}/{signature}/… with a unix time and"
            " a 22-character signature",
            code="bad_signature",
        )
    expected = sign(space, int(exp), secret)
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise PnyxError(
            ErrorKind.FORBIDDEN,
            f"this link's signature is not valid for space {space}: ask for a new link"
            " (POST /v1/spaces/{id}/join or GET /v1/spaces/{id}/links)",
            code="bad_signature",
        )
    if int(exp) < now:
        raise PnyxError(
            ErrorKind.GONE,
            "this signed link has expired: ask for a new one (POST /v1/spaces/{id}/join or"
            " GET /v1/spaces/{id}/links)",
            code="link_expired",
        )
    return int(exp)


def expiry(now: float, ttl_s: int, step_s: int) -> int:
    """``now + ttl_s`` rounded up to a multiple of ``step_s``."""
    return math.ceil((now + ttl_s) / step_s) * step_s


def prefix(exp: int, sig: str) -> str:
    return f"/p/{exp}/{sig}"


def plain_links(space: SpaceId) -> dict[str, str]:
    """A space's links as paths, unsigned."""
    return {
        "self": f"/v1/spaces/{space}",
        "state": f"/v1/spaces/{space}/state",
        "join": f"/v1/spaces/{space}/join",
        "hls": f"/media/{space}/live.m3u8",
        "hls_plain": f"/media/{space}/plain.m3u8",
        "hls_main": f"/media/{space}/main.m3u8",  # the audio and its captions rendition
        "captions": f"/media/{space}/captions.m3u8",
        "transcript": f"/v1/spaces/{space}/transcript",
        "replay": f"/media/{space}/replay.m3u8",
        "recording": f"/v1/spaces/{space}/recording.m4a",
    }


FRONTROW = "frontrow"  # the front row's key among a space's links, when the edges push it


def frontrow_path(space: SpaceId) -> str:
    """The front row's WebSocket path at the edge (services/frontrow.py), unsigned."""
    return f"/frontrow/{space}"


# The links that are listener reads (signed for a private space); the others (join) are
# calls with an Authorization header and keep their plain paths.
READS = frozenset(
    {
        FRONTROW,
        "self",
        "state",
        "hls",
        "hls_plain",
        "hls_main",
        "captions",
        "transcript",
        "replay",
        "recording",
    }
)


def with_prefix(links: Mapping[str, str], pre: str) -> dict[str, str]:
    return {k: (pre + v if k in READS else v) for k, v in links.items()}


@dataclass(frozen=True, slots=True)
class LinkSigner:
    """Signs and checks one node's links with the shared ``link_secret``."""

    secret: str
    ttl_s: int
    step_s: int
    clock: Callable[[], float]

    def prefix_for(self, space: SpaceId) -> tuple[str, int]:
        """The signed prefix for ``space`` now, and its expiry."""
        exp = expiry(self.clock(), self.ttl_s, self.step_s)
        return prefix(exp, sign(space, exp, self.secret)), exp

    def read_prefix(self, space: SpaceId) -> str:
        """What a listener read of ``space`` goes behind: the signed prefix for a private
        space, ``""`` for any other."""
        return self.prefix_for(space)[0] if is_private(space) else ""

    def links(self, space: SpaceId) -> dict[str, str]:
        """The space's links: signed for a private space, plain otherwise."""
        return with_prefix(plain_links(space), self.read_prefix(space))

    def verify(self, space: str, exp: str, sig: str) -> int:
        return verify(space, exp, sig, self.secret, self.clock())
