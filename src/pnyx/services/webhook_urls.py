"""Where webhooks may be sent: refusing URLs aimed at this network (SSRF).

A webhook URL is the host's to choose, and the node sends requests to it: without a
check, a host could make the node call its own admin ports, the cloud metadata address
or anything on the private network. So a URL is ``http`` or ``https`` with a host name
(no credentials), and every address it resolves to must be globally routable — not
loopback, private, link-local, shared (CGNAT), multicast or reserved — unless the
setting ``webhook_allow_private`` says otherwise (tests, and private deployments).

The check runs at registration and again at every delivery, on the addresses the
delivery then connects to (:func:`resolve` returns them; the courier connects to that
address itself), so a name re-pointed at a private address after registration (DNS
rebinding) is refused too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from pnyx.errors import ErrorKind, PnyxError

URL_MAX_LEN = 2048
_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: its parts, and the addresses to connect to (in the resolver's
    order, each checked)."""

    scheme: str
    host: str  # as written (a name, or an IP address without brackets)
    port: int
    addresses: tuple[str, ...]


def _bad(message: str, code: str) -> PnyxError:
    return PnyxError(ErrorKind.INVALID, message, code=code)


def parse(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a webhook URL, or INVALID ``bad_webhook_url``."""
    if len(url) > URL_MAX_LEN:
        raise _bad(f"a webhook URL has at most {URL_MAX_LEN} characters", "bad_webhook_url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _bad(f"not a URL: {exc}", "bad_webhook_url") from exc
    if parts.scheme not in _PORTS or not parts.hostname:
        raise _bad("a webhook URL is http(s)://host[:port]/path", "bad_webhook_url")
    if parts.username is not None or parts.password is not None:
        raise _bad("a webhook URL carries no credentials", "bad_webhook_url")
    if parts.fragment:
        raise _bad("a webhook URL has no #fragment", "bad_webhook_url")
    return parts.scheme, parts.hostname, port or _PORTS[parts.scheme]


def allowed(address: str, *, allow_private: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast:
        return False
    return allow_private or ip.is_global


async def resolve(url: str, *, allow_private: bool, timeout_s: float) -> Target:
    """Parse ``url``, resolve its host and check every address: a :class:`Target` to
    connect to, or INVALID ``bad_webhook_url`` / ``webhook_url_unresolvable`` /
    ``webhook_url_private``."""
    scheme, host, port = parse(url)
    try:
        async with asyncio.timeout(timeout_s):
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
    except (OSError, TimeoutError, UnicodeError) as exc:
        raise _bad(
            f"the webhook host {host!r} does not resolve: {exc}", "webhook_url_unresolvable"
        ) from exc
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise _bad(f"the webhook host {host!r} has no address", "webhook_url_unresolvable")
    refused = [a for a in addresses if not allowed(a, allow_private=allow_private)]
    if refused:
        raise _bad(
            f"the webhook host {host!r} resolves to {refused[0]}, a loopback, private, "
            "link-local or reserved address; webhooks go to public addresses only "
            "(the setting webhook_allow_private lifts this)",
            "webhook_url_private",
        )
    return Target(scheme, host, port, addresses)
