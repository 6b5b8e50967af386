"""media/ice.py: which of a speaker's candidates the stage node checks, the 1:1 NAT in
the answer, and gathering on chosen addresses and ports, which replaces a method of
aioice's Connection: the tests at the end fail loudly when aioice or aiortc change the
internals it relies on (they use real sockets on loopback, nothing else)."""

from __future__ import annotations

import ipaddress
import socket

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack

from pnyx.media.ice import (
    IcePolicy,
    check_internals,
    filter_offer,
    install_gatherer,
    networks,
    own_addresses,
    refusal,
    rewrite_answer,
)

OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=candidate:1 1 udp 2130706431 198.51.100.20 50000 typ host",
        "a=candidate:2 1 udp 2130706431 127.0.0.1 50001 typ host",
        "a=candidate:3 1 udp 2130706431 10.9.9.9 50002 typ host",
        "a=candidate:4 1 udp 2130706431 abcd-1234.local 50003 typ host",
        "a=candidate:5 1 udp 1694498815 203.0.113.50 40000 typ srflx raddr 10.9.9.9 rport 5",
        "a=candidate:6 1 udp 2130706431 224.0.0.1 50004 typ host",
        "a=candidate:7 1 udp 2130706431 ::ffff:127.0.0.1 50005 typ host",
        "a=end-of-candidates",
        "a=sendrecv",
        "",
    ]
)
OWN = frozenset({ipaddress.ip_address("10.9.9.9")})


def _addresses(sdp: str) -> list[str]:
    return [line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")]


def test_the_default_policy_keeps_other_hosts_and_drops_this_machine_and_names() -> None:
    out = filter_offer(OFFER, IcePolicy(), OWN)
    assert _addresses(out.sdp) == ["198.51.100.20", "203.0.113.50"]
    assert dict(out.dropped) == {
        "127.0.0.1": "own_machine",
        "10.9.9.9": "own_machine",
        "abcd-1234.local": "not_ip",
        "224.0.0.1": "not_unicast",
        "::ffff:127.0.0.1": "own_machine",
    }
    # ICE must wait for the speaker's own checks (peer-reflexive) instead of failing.
    assert "a=end-of-candidates" not in out.sdp
    assert "a=sendrecv" in out.sdp and out.kept == 2


def test_allowed_networks_and_own_addresses_when_allowed() -> None:
    policy = IcePolicy(allowed=networks(["203.0.113.0/24", "10.0.0.0/8"]), allow_own=True)
    out = filter_offer(OFFER, policy, OWN)
    assert _addresses(out.sdp) == ["10.9.9.9", "203.0.113.50"]
    assert ("198.51.100.20", "not_allowed") in out.dropped
    assert ("127.0.0.1", "not_allowed") in out.dropped
    loopback = IcePolicy(allowed=networks(["127.0.0.0/8"]), allow_own=True)
    assert refusal("127.0.0.1", loopback, OWN) is None
    assert refusal("::ffff:127.0.0.1", loopback, OWN) is None


def test_an_offer_with_nothing_dropped_is_untouched() -> None:
    sdp = OFFER.replace("a=candidate:2", "x=2").replace("a=candidate:3", "x=3")
    sdp = "\r\n".join(
        line
        for line in sdp.splitlines()
        if not line.startswith(("a=candidate:4", "a=candidate:6", "a=candidate:7"))
    )
    assert filter_offer(sdp, IcePolicy(), OWN).sdp == sdp


def test_own_addresses_are_the_interfaces_and_the_policy_ones() -> None:
    own = own_addresses(IcePolicy(nat_1_1=((None, "203.0.113.7"),)))
    assert ipaddress.ip_address("127.0.0.1") in own
    assert ipaddress.ip_address("203.0.113.7") in own


ANSWER = "\r\n".join(
    [
        "v=0",
        "m=audio 40001 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 10.0.0.11",
        "a=candidate:abc 1 udp 2130706431 10.0.0.11 40001 typ host",
        "a=candidate:def 1 udp 2130706431 fd00::11 40002 typ host",
        "a=end-of-candidates",
        "",
    ]
)


def test_a_1_1_nat_advertises_the_public_address_instead_of_the_private_one() -> None:
    policy = IcePolicy(nat_1_1=(("10.0.0.11", "203.0.113.7"),))
    out = rewrite_answer(ANSWER, policy)
    assert _addresses(out) == ["203.0.113.7", "fd00::11"]
    assert "c=IN IP4 203.0.113.7" in out
    assert "a=candidate:abc 1 udp 2130706431 203.0.113.7 40001 typ host" in out
    assert rewrite_answer(ANSWER, IcePolicy()) == ANSWER


def test_a_1_1_nat_besides_the_private_address_as_server_reflexive() -> None:
    policy = IcePolicy(nat_1_1=((None, "203.0.113.7"),), keep_private=True)
    out = rewrite_answer(ANSWER, policy)
    assert _addresses(out) == ["10.0.0.11", "203.0.113.7", "fd00::11"]
    srflx = next(line for line in out.splitlines() if " typ srflx " in line)
    assert srflx.endswith("203.0.113.7 40001 typ srflx raddr 10.0.0.11 rport 40001")
    assert "c=IN IP4 10.0.0.11" in out
    # aioice parses what it wrote: a valid candidate line, lower priority than host.
    parsed = aioice.Candidate.from_sdp(srflx.removeprefix("a="))
    assert parsed.type == "srflx" and parsed.priority < 2130706431


# -- the aioice/aiortc internals behind install_gatherer --------------------------------


def test_the_aioice_and_aiortc_internals_are_as_expected() -> None:
    check_internals()  # raises IceInternalsChanged, naming what changed


async def test_an_aioice_connection_gathers_on_the_chosen_address_and_ports() -> None:
    held = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # one port of the range taken
    held.bind(("127.0.0.1", 0))
    low = held.getsockname()[1]
    policy = IcePolicy(addresses=("127.0.0.1",), port_min=low, port_max=low + 4)
    connection = aioice.ice.Connection(ice_controlling=False)
    try:
        pc = _FakePc(connection)
        install_gatherer(pc, policy)  # type: ignore[arg-type]
        await connection.gather_candidates()
        (candidate,) = connection.local_candidates
        assert (candidate.host, candidate.type) == ("127.0.0.1", "host")
        assert low < candidate.port <= low + 4  # in the range, past the port taken
        # The socket aioice reads and writes is the one bound there.
        (protocol,) = connection._protocols
        assert protocol.transport.get_extra_info("sockname")[:2] == ("127.0.0.1", candidate.port)
        assert protocol.local_candidate is candidate
    finally:
        await connection.close()
        held.close()


async def test_an_aiortc_answer_has_its_candidates_in_the_range() -> None:
    offerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    low = probe.getsockname()[1]
    probe.close()
    policy = IcePolicy(addresses=("127.0.0.1",), port_min=low, port_max=low + 3)
    try:
        offerer.addTrack(AudioStreamTrack())
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(
            RTCSessionDescription(sdp=offerer.localDescription.sdp, type="offer")
        )
        install_gatherer(answerer, policy)
        await answerer.setLocalDescription(await answerer.createAnswer())
        lines = [
            line.split()
            for line in answerer.localDescription.sdp.splitlines()
            if line.startswith("a=candidate:")
        ]
        assert lines, answerer.localDescription.sdp
        for bits in lines:
            assert bits[4] == "127.0.0.1"
            assert low <= int(bits[5]) <= low + 3
    finally:
        await offerer.close()
        await answerer.close()


class _FakePc:
    """Just what install_gatherer walks: transceiver → DTLS → ICE → gatherer."""

    def __init__(self, connection: aioice.ice.Connection) -> None:
        gatherer = type("G", (), {"_connection": connection})()
        ice = type("I", (), {"iceGatherer": gatherer})()
        dtls = type("D", (), {"transport": ice})()
        sender = type("S", (), {"transport": dtls})()
        self._t = type("T", (), {"sender": sender})()

    def getTransceivers(self) -> list[object]:
        return [self._t]


@pytest.mark.parametrize("bad", ["", "a b c"])
def test_a_short_candidate_line_is_dropped_not_crashed_on(bad: str) -> None:
    sdp = f"v=0\r\na=candidate:{bad}\r\n"
    out = filter_offer(sdp, IcePolicy(), OWN)
    assert out.kept == 0 and len(out.dropped) == 1
