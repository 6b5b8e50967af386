"""ICE servers for speakers, and the stage node's ICE policy, from the settings.

Speakers learn the STUN and TURN servers the WHIP way (RFC 9725 section 4.6): ``Link``
headers with ``rel="ice-server"`` on the publish responses and on an ``OPTIONS`` of the
publish URL, which a client sends before it creates its offer. TURN credentials are
minted per account and request from the TURN server's shared secret, the "TURN REST API"
convention coturn implements (``use-auth-secret`` with ``static-auth-secret``):

    username   = "<unix time the credential expires>:<account handle>"
    credential = base64(HMAC-SHA1(secret, username))

coturn recomputes the credential from the username and refuses an expired one; Pnyx
keeps no state for it. Every node mints with the same ``ice_turn_secret``, so a relayed
publish (services/relay.py) carries the stage node's ``Link`` headers unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from pnyx.config import Settings
from pnyx.domain.types import Handle
from pnyx.media.ice import IcePolicy, networks


@dataclass(frozen=True, slots=True)
class TurnCredential:
    username: str
    credential: str
    expires: int  # unix time


def turn_credential(secret: str, user: str, expires: int) -> TurnCredential:
    """The TURN REST API credential of ``user`` valid until ``expires`` (unix time)."""
    username = f"{expires}:{user}"
    mac = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredential(username, base64.b64encode(mac).decode("ascii"), expires)


def quoted(value: str) -> str:
    """An HTTP quoted-string (RFC 9110 section 5.6.4)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def link(url: str, credential: TurnCredential | None = None) -> str:
    """One ``Link`` header value for an ICE server (RFC 9725 section 4.6)."""
    value = f'<{url}>; rel="ice-server"'
    if credential is not None:
        value += (
            f"; username={quoted(credential.username)}"
            f"; credential={quoted(credential.credential)}"
            '; credential-type="password"'
        )
    return value


class IceServers:
    """The ``Link`` headers a speaker gets: STUN servers for anyone, TURN servers with
    fresh credentials for a signed-in account."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self._stun = tuple(settings.ice_stun_urls)
        self._turn = tuple(settings.ice_turn_urls)
        self._secret = settings.ice_turn_secret or ""
        self._ttl = settings.ice_turn_ttl_s
        self._clock = clock

    def links(self, handle: Handle | None) -> list[str]:
        """``Link`` values for ``handle`` (None: not signed in, no TURN)."""
        out = [link(url) for url in self._stun]
        if handle is not None and self._turn:
            credential = self.mint(handle)
            out += [link(url, credential) for url in self._turn]
        return out

    def mint(self, handle: Handle) -> TurnCredential:
        return turn_credential(self._secret, handle, int(self._clock()) + self._ttl)


def ice_policy(settings: Settings) -> IcePolicy:
    """The stage node's ICE rules (media/ice.py) from the settings."""
    nat: list[tuple[str | None, str]] = []
    for item in settings.ice_nat_1_1:
        private, _, public = item.rpartition("=")
        nat.append((private or None, public))
    return IcePolicy(
        addresses=tuple(settings.ice_addresses),
        port_min=settings.ice_port_min,
        port_max=settings.ice_port_max,
        nat_1_1=tuple(nat),
        keep_private=settings.ice_keep_private,
        allowed=networks(settings.ice_allowed_networks),
        allow_own=settings.ice_allow_own_addresses,
    )
