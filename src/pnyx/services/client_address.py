"""Who is calling, by network address: the peer, or what a trusted proxy says.

A rate limit per client address is worth only as much as the address. ``X-Forwarded-For``
is anyone's to write, so it is believed only when the peer is one of ``trusted_proxies``
(the edges), and then read from the right: each trusted proxy appends the address it got
the request from, so the right-most address that is not a trusted proxy is the client as
the first trusted hop saw it. Whatever a client writes on the left is never reached.
Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse(text: str) -> _Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[v6]:port" (RFC 7239 style)
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "v4:port"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientAddresses:
    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self._trusted = tuple(ipaddress.ip_network(n, strict=False) for n in trusted_proxies)

    def _is_trusted(self, address: _Address) -> bool:
        return any(address in net for net in self._trusted)

    def of(self, peer: str | None, forwarded_for: Sequence[str] = ()) -> str:
        """The client's address for a request from ``peer`` with these
        ``X-Forwarded-For`` header values (in the order received)."""
        if peer is None:
            return "unknown"
        hop = _parse(peer)
        if hop is None:
            return peer  # not an IP peer (a Unix socket, a test transport)
        if not self._trusted or not self._is_trusted(hop):
            return str(hop)
        chain = [part for value in forwarded_for for part in value.split(",") if part.strip()]
        for entry in reversed(chain):
            address = _parse(entry)
            if address is None:
                # A trusted proxy passed on something that is no address: the last
                # trusted hop is all that is known (all such requests share its bucket).
                return str(hop)
            hop = address
            if not self._is_trusted(hop):
                return str(hop)
        return str(hop)  # every hop was a trusted proxy: the left-most one
