"""ICE on the stage node: which candidates it offers and which of a speaker's it checks.

Three things, all applied by :class:`~pnyx.media.ingest.IngestSession` around aiortc:

* :func:`filter_offer` drops the speaker's candidates the node may not send to before
  aiortc (and aioice) see them: not an IP address (mDNS names, host names), special
  addresses (unspecified, multicast, broadcast), this machine's own addresses and
  loopback (unless ``allow_own``), and anything outside ``allowed`` networks. A speaker
  thus cannot aim the node's connectivity checks at an address and port of its choosing.
  When it dropped any, it also drops ``a=end-of-candidates``: ICE then still connects
  whenever the speaker reaches the node, as the node learns the speaker's address as a
  peer-reflexive candidate from the speaker's own (authenticated) checks (RFC 8445
  section 7.3.1.3), and it must not declare failure before those come. That is how a
  speaker on this very machine (tests, ``make run``) connects with the default policy.
* :func:`rewrite_answer`: a 1:1 NAT (``nat_1_1``): the answer advertises the public
  address instead of the private one (or besides it, ``keep_private``, as a
  server-reflexive candidate).
* :func:`install_gatherer`: host candidates only on ``addresses`` and on UDP ports in
  ``[port_min, port_max]``. aioice 0.13 has no option for either, so this replaces one
  method of the peer connection's aioice ``Connection``; **every aioice/aiortc internal
  Pnyx touches for it is in this module** and tests/unit/media/test_ice.py fails when
  they change (:func:`check_internals` also runs when a node with such a policy starts).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import random
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
import aioice.turn
import ifaddr
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aiortc import RTCPeerConnection

log = logging.getLogger(__name__)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

EVERYWHERE: tuple[Network, ...] = (
    ipaddress.IPv4Network("0.0.0.0/0"),
    ipaddress.IPv6Network("::/0"),
)


class IceInternalsChanged(RuntimeError):
    """aioice/aiortc no longer look the way this module relies on (another version)."""


@dataclass(frozen=True, slots=True)
class IcePolicy:
    """The stage node's ICE rules (built from the settings by the services)."""

    addresses: tuple[str, ...] = ()  # gather host candidates on these; (): aioice's choice
    port_min: int = 0  # 0 (and port_max 0): any port
    port_max: int = 0
    nat_1_1: tuple[tuple[str | None, str], ...] = ()  # (private or None: any, public)
    keep_private: bool = False
    allowed: tuple[Network, ...] = EVERYWHERE
    allow_own: bool = False

    @property
    def custom_gathering(self) -> bool:
        return bool(self.addresses) or self.port_min > 0

    def public_for(self, private: str) -> str | None:
        """The public address advertised for the local ``private`` one, if any."""
        family = ipaddress.ip_address(private).version
        for inside, public in self.nat_1_1:
            if inside is not None and ipaddress.ip_address(inside) == ipaddress.ip_address(private):
                return public
        for inside, public in self.nat_1_1:
            if inside is None and ipaddress.ip_address(public).version == family:
                return public
        return None


# Why a candidate is not checked: the metric's label, and what the log says.
REASONS = {
    "not_ip": "not an IP address",
    "not_unicast": "not a unicast address",
    "own_machine": "this machine (ice_allow_own_addresses is off)",
    "not_allowed": "outside ice_allowed_networks",
}


@dataclass(frozen=True, slots=True)
class Filtered:
    sdp: str
    kept: int
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (address, reason key)


def own_addresses(policy: IcePolicy) -> frozenset[Address]:
    """Every address of this machine's interfaces, and the policy's own ones."""
    out: set[Address] = set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            with contextlib.suppress(ValueError):
                out.add(ipaddress.ip_address(text.split("%", 1)[0]))
    for text in (*policy.addresses, *(pub for _, pub in policy.nat_1_1)):
        out.add(ipaddress.ip_address(text))
    return frozenset(out)


def refusal(address: str, policy: IcePolicy, own: frozenset[Address]) -> str | None:
    """Why the node must not check a candidate at ``address``, a key of
    :data:`REASONS` (None: it may)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "not_ip"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast or ip == ipaddress.IPv4Address("255.255.255.255"):
        return "not_unicast"
    if not policy.allow_own and (ip.is_loopback or ip in own):
        return "own_machine"
    if not any(ip in net for net in policy.allowed if net.version == ip.version):
        return "not_allowed"
    return None


def filter_offer(sdp: str, policy: IcePolicy, own: frozenset[Address]) -> Filtered:
    """The offer without the candidates the node may not check (see the module doc)."""
    lines = sdp.splitlines()
    out: list[str] = []
    dropped: list[tuple[str, str]] = []
    kept = 0
    for line in lines:
        if line.startswith("a=candidate:"):
            bits = line.split()
            address = bits[4] if len(bits) > 5 else ""
            why = refusal(address, policy, own)
            if why is not None:
                dropped.append((address, why))
                continue
            kept += 1
        out.append(line)
    if not dropped:
        return Filtered(sdp, kept)
    out = [line for line in out if line.strip() != "a=end-of-candidates"]
    return Filtered("\r\n".join(out) + "\r\n", kept, dropped)


def rewrite_answer(sdp: str, policy: IcePolicy) -> str:
    """The answer as the speaker must see it behind a 1:1 NAT (unchanged without one)."""
    if not policy.nat_1_1:
        return sdp
    out: list[str] = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            bits = line.split()
            if len(bits) >= 8 and bits[6] == "typ" and bits[7] == "host":
                public = policy.public_for(bits[4])
                if public is not None:
                    if policy.keep_private:
                        out.append(line)
                        out.append(_reflexive(bits, public))
                    else:
                        bits[4] = public
                        out.append(" ".join(bits))
                    continue
        elif line.startswith("c=IN IP") and not policy.keep_private:
            parts = line.split()
            public = policy.public_for(parts[2]) if len(parts) == 3 else None
            if public is not None:
                line = f"c=IN IP{ipaddress.ip_address(public).version} {public}"
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def _reflexive(host_bits: list[str], public: str) -> str:
    """A server-reflexive candidate for ``public``, mapped to the host candidate."""
    component = int(host_bits[1])
    transport, private, port = host_bits[2], host_bits[4], host_bits[5]
    foundation = candidate_foundation("srflx", transport.lower(), public)
    priority = candidate_priority(component, "srflx")
    return (
        f"a=candidate:{foundation} {component} {transport} {priority} {public} {port} typ srflx"
        f" raddr {private} rport {port}"
    )


# -- gathering on chosen addresses and ports (aioice internals, all here) ---------------


def _connections(pc: RTCPeerConnection) -> list[Any]:
    """The aioice ``Connection`` of each of the peer connection's ICE transports."""
    found: list[Any] = []
    for transceiver in pc.getTransceivers():
        dtls = transceiver.sender.transport
        ice = getattr(dtls, "transport", None)
        gatherer = getattr(ice, "iceGatherer", None)
        connection = getattr(gatherer, "_connection", None)
        if not isinstance(connection, aioice.ice.Connection):
            raise IceInternalsChanged("aiortc's ICE gatherer has no aioice Connection")
        if all(c is not connection for c in found):
            found.append(connection)
    return found


def check_internals() -> None:
    """Raise :class:`IceInternalsChanged` if what :func:`install_gatherer` replaces or
    uses is not there (call once at start-up when the policy needs it)."""
    import inspect

    params = list(inspect.signature(aioice.ice.Connection.get_component_candidates).parameters)
    if params[:3] != ["self", "component", "addresses"]:
        raise IceInternalsChanged(f"aioice Connection.get_component_candidates{params}")
    source = inspect.getsource(aioice.ice.Connection.gather_candidates)
    if "get_component_candidates(" not in source:
        raise IceInternalsChanged("aioice's gather_candidates no longer asks for candidates")
    probe = aioice.ice.Connection(ice_controlling=False)
    if not isinstance(getattr(probe, "_protocols", None), list):
        raise IceInternalsChanged("aioice's Connection has no _protocols list")
    if not hasattr(aioice.ice, "StunProtocol") or not hasattr(
        aioice.turn, "UDP_SOCKET_BUFFER_SIZE"
    ):
        raise IceInternalsChanged("aioice.ice.StunProtocol or aioice.turn.UDP_SOCKET_BUFFER_SIZE")


def install_gatherer(pc: RTCPeerConnection, policy: IcePolicy) -> None:
    """Make ``pc`` gather host candidates per ``policy`` (call after setRemoteDescription,
    before setLocalDescription, which gathers). Nothing to do for the default policy."""
    if not policy.custom_gathering:
        return
    for connection in _connections(pc):
        connection.get_component_candidates = _gatherer(connection, policy)


def _gatherer(connection: Any, policy: IcePolicy) -> Any:
    async def get_component_candidates(
        component: int,
        addresses: list[str],
        timeout: int = 5,  # noqa: ASYNC109 (aioice's signature; host candidates need none)
    ) -> list[Candidate]:
        # Host candidates only: the stage node has no STUN/TURN server of its own
        # (RTCConfiguration(iceServers=[])); its public address comes from nat_1_1.
        chosen = list(policy.addresses) or addresses
        candidates: list[Candidate] = []
        for address in chosen:
            protocol = await _bind(connection, address, policy.port_min, policy.port_max)
            if protocol is None:
                continue
            connection._protocols.append(protocol)
            host, port = protocol.transport.get_extra_info("sockname")[:2]
            protocol.local_candidate = Candidate(
                foundation=candidate_foundation("host", "udp", host),
                component=component,
                transport="udp",
                priority=candidate_priority(component, "host"),
                host=host,
                port=port,
                type="host",
            )
            candidates.append(protocol.local_candidate)
        return candidates

    return get_component_candidates


def _ports(low: int, high: int) -> Iterable[int]:
    """Every port of the range once, from a random one on (0, 0: the system's pick)."""
    if low == 0:
        return (0,)
    span = high - low + 1
    start = random.randrange(span)
    return (low + (start + i) % span for i in range(span))


async def _bind(connection: Any, address: str, low: int, high: int) -> Any:
    loop = asyncio.get_running_loop()
    for port in _ports(low, high):
        try:
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: aioice.ice.StunProtocol(connection), local_addr=(address, port)
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE and port:
                continue
            log.warning("ICE: cannot bind %s:%s (%s)", address, port, exc)
            return None
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, aioice.turn.UDP_SOCKET_BUFFER_SIZE)
        return protocol
    log.warning("ICE: no free UDP port on %s in %s-%s: raise ice_port_max", address, low, high)
    return None


def networks(texts: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(t, strict=False) for t in texts)
