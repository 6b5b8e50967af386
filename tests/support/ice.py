"""ICE for the tests' aiortc speakers: the ``Link: <…>; rel="ice-server"`` headers of a
publish response (RFC 9725 section 4.6) as aiortc ``RTCIceServer``s, and the candidate
pair a peer connection's ICE selected (aiortc 1.16 / aioice 0.13 internals, here only)."""

from __future__ import annotations

import re
from typing import Any

from aiortc import RTCIceServer, RTCPeerConnection

_LINK = re.compile(r'<([^>]*)>((?:\s*;\s*[\w-]+(?:=(?:"(?:[^"\\]|\\.)*"|[^;,\s]*))?)*)')
_PARAM = re.compile(r';\s*([\w-]+)(?:=(?:"((?:[^"\\]|\\.)*)"|([^;,\s]*)))?')


def parse_links(values: list[str]) -> list[dict[str, str]]:
    """Every link in ``values`` (header values, each maybe comma-joined): the URL as
    ``url`` and its parameters, unquoted."""
    out = []
    for value in values:
        for m in _LINK.finditer(value):
            link = {"url": m.group(1)}
            for p in _PARAM.finditer(m.group(2)):
                quoted, token = p.group(2), p.group(3)
                link[p.group(1).lower()] = (
                    re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else token or ""
                )
            out.append(link)
    return out


def ice_servers(values: list[str]) -> list[RTCIceServer]:
    """The ``rel="ice-server"`` links as aiortc ICE servers."""
    return [
        RTCIceServer(
            urls=link["url"], username=link.get("username"), credential=link.get("credential")
        )
        for link in parse_links(values)
        if "ice-server" in link.get("rel", "").split()
    ]


def selected_pair(pc: RTCPeerConnection) -> Any:
    """The nominated candidate pair of ``pc``'s (bundled) ICE transport, or None."""
    for transceiver in pc.getTransceivers():
        dtls = transceiver.sender.transport
        if dtls is None:
            continue
        connection = dtls.transport._connection  # RTCIceTransport → aioice Connection
        return connection._nominated.get(1)
    return None
