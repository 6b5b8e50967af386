"""Speakers behind a NAT that blocks their UDP to the stage, heard over HTTPS.

On the rehearsal network (``tests/support/netlab.py``) the speaker host sits behind a
NAT that drops every UDP packet it sends to the node hosts; only the TURN host (coturn,
``use-auth-secret``) and TCP to the edge get through. The stack is the one
``scripts/netlab.py up`` starts, with docs/deploy.md's settings
(``netlab_servers.start_stack``): the nodes hand out TURN servers with credentials
minted from the shared secret (``Link: rel="ice-server"`` on the publish URL's
OPTIONS), the edge serves HTTPS with a certificate for its address, and a listener on
its own host plays the space through the edge:

* an aiortc speaker, with every candidate type allowed, can only connect through the
  relay: its direct attempts are counted by the NAT's drop rule, the selected pair is
  its relay candidate, coturn allocated for its account, and the listener hears its
  tone over HTTPS;
* the web client in Chromium, run inside the speaker host (a secure context: HTTPS with
  a certificate Chromium was told to trust), publishes its microphone the same way and
  the listener hears it;
* with the NAT switched to dropping **all** UDP (the issue's "a network that blocks
  UDP": TURN's UDP too, proved by a STUN request that gets no answer), an aiortc speaker
  given only ``turn:…?transport=tcp`` connects through a relay coturn allocated over
  TCP (its TCP connection from the NAT's address seen on the TURN host), and the
  listener hears its tone over HTTPS.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCConfiguration, RTCIceServer

from tests.e2e.test_audio import (
    COHOST_HZ,
    HOST_HZ,
    SPEAKER_HZ,
    Background,
    heard_by_listener,
    hears,
)
from tests.multihost.conftest import built_lab
from tests.support import netlab
from tests.support.api import User, create_space, new_user
from tests.support.browser import chromiums, require_browser, sign_in, tone_wav
from tests.support.hls import HlsListener
from tests.support.ice import ice_servers, selected_pair
from tests.support.netlab_servers import (
    EDGE_TLS_PORT,
    TURN_PORT,
    LabEdge,
    LabTurn,
    start_stack,
    stun_mapped_address,
)
from tests.support.poll import eventually
from tests.support.tls import Cert, spki_hash
from tests.support.webrtc import Speaker, ToneTrack, publish

pytestmark = pytest.mark.multihost

# Tones the listener's analysis looks for (tests/e2e/test_audio.py).
AIORTC_HZ = COHOST_HZ
BROWSER_HZ = SPEAKER_HZ
TCP_ONLY_HZ = HOST_HZ


@dataclass
class Site:
    lab: netlab.Lab
    edge: LabEdge
    turn: LabTurn
    cert: Cert

    @property
    def url(self) -> str:
        return self.edge.url

    def trust(self) -> ssl.SSLContext:
        """Verify the edge against its own (self-signed) certificate, and nothing else."""
        trust = self.edge.trust()
        assert isinstance(trust, ssl.SSLContext)
        return trust

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=self.trust(), timeout=20)

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(verify=self.trust(), timeout=20)

    def dropped(self) -> int:
        """UDP packets from the speaker host to the node hosts the NAT dropped so far."""
        return self.lab.counters("nat").get("udp_to_nodes_dropped", 0)

    def allocated_for(self, handle: str) -> bool:
        """coturn allocated a relay for TURN REST credentials minted for ``handle``."""
        return bool(self.turn.allocated_for(handle))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with built_lab(tmp_path_factory.mktemp("nat-lab")) as lab:
        stack = start_stack(lab)  # docs/deploy.md's settings: TURN, HTTPS, link secret…
        assert stack.turn is not None and stack.edge.cert is not None
        assert stack.edge.url == f"https://{lab.addr['edge']}:{EDGE_TLS_PORT}"
        yield Site(lab, stack.edge, stack.turn, stack.edge.cert)


def new_space(site: Site, who: str) -> tuple[User, str]:
    def make() -> tuple[User, str]:
        with site.client() as c:
            host = new_user(c, who)
            return host, create_space(c, host, title="Behind the NAT")

    return site.lab.call("speaker", make)


async def listen_for(site: Site, space: str, tone_hz: float, started: float) -> None:
    """On the listener host: an LL-HLS listener through the edge over HTTPS hears
    ``tone_hz`` in audio captured after ``started``."""
    async with (
        site.async_client() as client,
        Background(HlsListener(site.url, space, client=client)) as listener,
    ):
        await eventually(
            hears(lambda: heard_by_listener(listener, started), {tone_hz}),
            within=30,
            what=f"the listener hears {tone_hz:.0f} Hz over HTTPS through the edge",
            interval=0.2,
        )


async def speak(site: Site, space: str, host: User) -> tuple[Speaker, dict[str, Any]]:
    """On the speaker host: ask the publish URL for ICE servers, then publish a tone
    with every candidate type allowed (host, server-reflexive, relay)."""
    async with site.async_client() as client:
        r = await client.options(f"{site.url}/v1/spaces/{space}/publish", headers=host.auth)
        assert r.status_code == 204, r.text
        servers = ice_servers(r.headers.get_list("link"))
    turns = [s for s in servers if str(s.urls).startswith("turn:")]
    assert turns and all(s.username and s.credential for s in turns), servers
    speaker = await publish(  # its HTTP client is the speaker's own: closed with it
        site.url,
        space,
        host.token,
        ToneTrack(AIORTC_HZ),
        configuration=RTCConfiguration(iceServers=servers),
        verify=site.trust(),
    )
    await speaker.connected(within=30)
    pair = selected_pair(speaker.pc)
    offered = {
        line.split()[7]
        for line in speaker.pc.localDescription.sdp.splitlines()
        if line.startswith("a=candidate:")
    }
    return speaker, {
        "offered": offered,
        "local": (pair.local_candidate.type, pair.local_candidate.host) if pair else None,
    }


async def test_an_aiortc_speaker_behind_the_nat_speaks_through_turn_only(site: Site) -> None:
    host, space = new_space(site, "natted")
    dropped_before = site.dropped()
    speaker_host = site.lab.worker("speaker")
    speaker, seen = await speaker_host.run(speak(site, space, host))
    try:
        # It offered its own address too; only the relay could carry the media.
        assert {"host", "relay"} <= seen["offered"], seen
        assert seen["local"] == ("relay", site.turn.addr), seen
        assert site.allocated_for(host.handle), site.turn.log.read_text()[-3000:]
        assert site.dropped() > dropped_before, "no direct UDP was tried (and dropped)"
        started = time.time()
        await site.lab.worker("listener").run(listen_for(site, space, AIORTC_HZ, started))
    finally:
        await speaker_host.run(speaker.close())


async def test_the_web_client_behind_the_nat_is_heard_over_https(
    site: Site, tmp_path: Path
) -> None:
    require_browser()
    host, space = new_space(site, "browser")
    tone = tone_wav(tmp_path / "tone.wav", BROWSER_HZ)
    trust = f"--ignore-certificate-errors-spki-list={spki_hash(site.cert.cert)}"
    dropped_before = site.dropped()
    published = asyncio.Event()
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    def browse() -> None:
        from playwright.sync_api import expect

        with chromiums(site.url, tone, args=[trust]) as (browser,):
            page, watch = browser.page("host", voice_processing=False)
            sign_in(page, host.handle, host.token, f"/s/{space}")
            assert page.evaluate("window.isSecureContext") is True
            expect(page.locator("#mic-status")).to_have_text(
                re.compile("You're live"), timeout=40_000
            )
            loop.call_soon_threadsafe(published.set)
            # Keep the page (and its microphone) until the listener has heard it.
            asyncio.run_coroutine_threadsafe(done.wait(), loop).result(timeout=120)
            assert not [e for e in watch.errors if "ERR_CERT" in e], watch.errors

    browsing = asyncio.create_task(asyncio.to_thread(site.lab.call, "speaker", browse))
    try:
        await asyncio.wait_for(published.wait(), 90)
        started = time.time()
        await site.lab.worker("listener").run(listen_for(site, space, BROWSER_HZ, started))
        assert site.allocated_for(host.handle), site.turn.log.read_text()[-3000:]
        assert site.dropped() > dropped_before, "the browser tried no direct UDP"
    finally:
        done.set()
        await asyncio.gather(browsing, return_exceptions=False)


async def speak_over_tcp_only(site: Site, space: str, host: User) -> tuple[Speaker, Any]:
    """On the speaker host: publish a tone with the publish URL's TURN-over-TCP server
    only (no STUN, no UDP TURN: this network lets no UDP out); the selected pair."""
    async with site.async_client() as client:
        r = await client.options(f"{site.url}/v1/spaces/{space}/publish", headers=host.auth)
        assert r.status_code == 204, r.text
        servers = ice_servers(r.headers.get_list("link"))
    tcp = [s for s in servers if str(s.urls).startswith("turn:") and "transport=tcp" in s.urls]
    assert len(tcp) == 1 and tcp[0].username and tcp[0].credential, servers
    only: list[RTCIceServer] = tcp
    speaker = await publish(
        site.url,
        space,
        host.token,
        ToneTrack(TCP_ONLY_HZ),
        configuration=RTCConfiguration(iceServers=only),
        verify=site.trust(),
    )
    await speaker.connected(within=30)
    return speaker, selected_pair(speaker.pc)


def tcp_peers(site: Site) -> set[str]:
    """The addresses of the established TCP connections to coturn's port on the TURN host."""
    out = site.lab.run(
        "turn", ["ss", "-Htn", "state", "established", f"( sport = :{TURN_PORT} )"]
    ).stdout.decode()
    return {line.split()[-1].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}


async def test_a_speaker_on_a_network_that_blocks_all_udp_speaks_through_turn_over_tcp(
    site: Site,
) -> None:
    host, space = new_space(site, "tcponly")
    lab = site.lab
    lab.speaker_udp(netlab.UDP_NONE)
    speaker_host = lab.worker("speaker")
    speaker: Speaker | None = None
    try:
        # No UDP leaves the speaker's network, TURN's own port included.
        with pytest.raises(TimeoutError):
            lab.call("speaker", lambda: stun_mapped_address(site.turn.addr, TURN_PORT, 1.0))
        assert lab.counters("nat").get("udp_dropped", 0) >= 1
        speaker, pair = await speaker_host.run(speak_over_tcp_only(site, space, host))
        assert pair is not None
        assert (pair.local_candidate.type, pair.local_candidate.host) == ("relay", site.turn.addr)
        assert site.allocated_for(host.handle), site.turn.log.read_text()[-3000:]
        # The allocation's control connection: TCP from the NAT's (masqueraded) address.
        assert lab.addr["nat"] in tcp_peers(site), tcp_peers(site)
        started = time.time()
        await lab.worker("listener").run(listen_for(site, space, TCP_ONLY_HZ, started))
        # Every datagram the speaker tried (its host candidates' checks) was dropped;
        # none went to TURN's UDP port.
        counters = lab.counters("nat")
        assert counters.get("udp_dropped", 0) > 1, counters
    finally:
        if speaker is not None:
            await speaker_host.run(speaker.close())
        lab.speaker_udp(netlab.UDP_TO_NODES)
