"""The stage node's ICE with real aiortc speakers on this machine (media/ice.py): which
of a speaker's candidates it checks, the ports it gathers on and a 1:1 NAT's public
address in its answer. The node and the speakers share this machine, so by default
every candidate in their offers is one of the node's own addresses and is dropped: they
connect because the node learns them from their own checks (peer-reflexive)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from aioice.ice import get_host_addresses
from prometheus_client import REGISTRY

from pnyx.domain.types import Handle
from pnyx.errors import ErrorKind, PnyxError
from pnyx.media.ice import own_addresses, refusal
from pnyx.services.ice import ice_policy
from tests.integration.media.client import Speaker
from tests.integration.media.conftest import HOST, Stage
from tests.support.poll import Seen, eventually

PUBLIC = "203.0.113.7"  # TEST-NET-3: advertised, never reached


class Trap(asyncio.DatagramProtocol):
    """A UDP port on this machine that counts what reaches it."""

    def __init__(self) -> None:
        self.packets: list[tuple[bytes, Any]] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.packets.append((data, addr))


def _pointed_at(offer: str, targets: list[tuple[str, int]]) -> str:
    """``offer`` with its candidates replaced by host candidates at ``targets``."""
    out = [line for line in offer.splitlines() if not line.startswith("a=candidate:")]
    at = next(i for i, line in enumerate(out) if line.startswith("a=ice-ufrag"))
    for n, (host, port) in enumerate(targets):
        out.insert(at, f"a=candidate:trap{n} 1 udp 2130706431 {host} {port} typ host")
    return "\r\n".join(out) + "\r\n"


def _candidates(sdp: str) -> list[list[str]]:
    return [line.split() for line in sdp.splitlines() if line.startswith("a=candidate:")]


async def _traps(hosts: list[str]) -> tuple[list[Trap], list[asyncio.DatagramTransport]]:
    loop = asyncio.get_running_loop()
    traps, transports = [], []
    for host in hosts:
        transport, trap = await loop.create_datagram_endpoint(Trap, local_addr=(host, 0))
        traps.append(trap)
        transports.append(transport)
    return traps, transports


@pytest.mark.parametrize(
    ("stage_settings", "checked"),
    [
        ({}, False),  # the default: never this machine
        ({"ice_allow_own_addresses": True}, True),  # the control: the trap is checked
        ({"ice_allow_own_addresses": True, "ice_allowed_networks": ["198.51.100.0/24"]}, False),
    ],
    ids=["default", "own-allowed", "outside-allowed-networks"],
)
async def test_the_node_checks_no_candidate_it_may_not_reach(stage: Stage, checked: bool) -> None:
    own = get_host_addresses(use_ipv4=True, use_ipv6=False)[0]
    traps, transports = await _traps(["127.0.0.1", own])
    dropped_before = _dropped()
    try:
        # A "speaker" whose offer points the node at two ports of the node's own machine.
        decoy = Speaker(440.0)
        stage.speakers.append(decoy)
        targets = [t.get_extra_info("sockname")[:2] for t in transports]
        offer = _pointed_at(await decoy.offer(), targets)
        await stage.media.publish(stage.space, HOST, offer)
        # A normal speaker still connects, whatever was filtered from its own offer.
        member = await stage.member("spk")
        speaker, _ = await stage.connect(member, 660.0)
        if not checked:  # none of its candidates was checked either: it came in by its checks
            offered = _candidates(speaker.pc.localDescription.sdp)
            assert offered
            policy = ice_policy(stage.settings)
            assert all(refusal(c[4], policy, own_addresses(policy)) for c in offered)
        await eventually(
            lambda: Seen(speaker.pc.connectionState == "connected", speaker.pc.connectionState),
            within=10,
            what="the normal speaker connects",
        )
        if checked:
            await eventually(
                lambda: Seen(all(t.packets for t in traps), [len(t.packets) for t in traps]),
                within=5,
                what="the node's checks reach both ports (the control)",
            )
        else:
            await asyncio.sleep(2.0)  # the node checks at once: give it ample time
            assert [len(t.packets) for t in traps] == [0, 0]
            assert _dropped() >= dropped_before + 2  # counted (pnyx_media_ice_…_dropped_total)
    finally:
        for t in transports:
            t.close()


def _dropped() -> float:
    return sum(
        REGISTRY.get_sample_value("pnyx_media_ice_candidates_dropped_total", {"why": why}) or 0.0
        for why in ("own_machine", "not_allowed")
    )


def _free_udp_range(size: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        base = int(s.getsockname()[1])
    return min(base, 65535 - size)


LOW = _free_udp_range(40)


@pytest.mark.parametrize(
    "stage_settings",
    [
        {
            "ice_port_min": LOW,
            "ice_port_max": LOW + 39,
            "ice_nat_1_1": [PUBLIC],
            "ice_keep_private": True,
        }
    ],
)
async def test_the_answer_has_ports_in_the_range_and_the_public_address(stage: Stage) -> None:
    speakers = []
    for n in range(3):
        member = await stage.member(f"s{n}")
        speaker, _ = await stage.connect(member, 500.0 + 100 * n)
        speakers.append(speaker)
    for speaker in speakers:
        answer = speaker.pc.remoteDescription.sdp
        found = _candidates(answer)
        hosts = [c for c in found if c[7] == "host"]
        assert hosts, answer
        assert all(LOW <= int(c[5]) <= LOW + 39 for c in found), answer
        # The public address of the 1:1 NAT, as server-reflexive, on the same port.
        srflx = [c for c in found if c[7] == "srflx"]
        v4 = [c for c in hosts if ":" not in c[4]]
        assert [(c[4], c[5], c[9], c[11]) for c in srflx] == [
            (PUBLIC, h[5], h[4], h[5]) for h in v4
        ], answer
    for speaker in speakers:  # and each connects (at the private address here)
        await eventually(
            lambda s=speaker: Seen(s.pc.connectionState == "connected", s.pc.connectionState),
            within=10,
            what="speakers connect",
        )


@pytest.mark.parametrize("stage_settings", [{"ice_nat_1_1": [PUBLIC]}])
async def test_a_1_1_nat_replaces_the_private_address(stage: Stage) -> None:
    member = await stage.member("spk")
    speaker = Speaker(440.0)
    stage.speakers.append(speaker)
    published = await stage.media.publish(stage.space, Handle(member), await speaker.offer())
    found = _candidates(published.answer_sdp)
    v4 = [c for c in found if ":" not in c[4]]
    assert v4, published.answer_sdp
    assert {c[4] for c in v4} == {PUBLIC}
    assert all(c[7] == "host" for c in found)
    assert f"c=IN IP4 {PUBLIC}" in published.answer_sdp


def _held_port() -> tuple[socket.socket, int]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s, int(s.getsockname()[1])


HELD, HELD_PORT = _held_port()


@pytest.mark.parametrize(
    "stage_settings",
    [{"ice_addresses": ["127.0.0.1"], "ice_port_min": HELD_PORT, "ice_port_max": HELD_PORT}],
)
async def test_no_free_port_in_the_range_is_a_503_to_retry(stage: Stage) -> None:
    speaker = Speaker(440.0)
    stage.speakers.append(speaker)
    try:
        with pytest.raises(PnyxError) as refused:
            await stage.media.publish(stage.space, HOST, await speaker.offer())
        assert refused.value.kind is ErrorKind.UNAVAILABLE
        assert refused.value.code == "no_ice_port" and refused.value.retry_after
        assert stage.sessions() == {}
    finally:
        HELD.close()
