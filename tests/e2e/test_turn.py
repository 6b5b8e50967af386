"""ICE servers and TURN end to end: a real coturn (TURN REST API credentials from a shared
secret, tests/support/coturn.py) and a real ``pnyx serve`` that hands it out.

* the publish URL's OPTIONS (and the 201 of the POST) carry the STUN and TURN servers in
  ``Link`` headers, TURN with credentials minted for the signed-in account;
* a speaker that may use nothing but TURN (aiortc, relay-only transport policy) publishes
  a tone with those credentials, a listener hears it over LL-HLS, the selected candidate
  pair is the relay one and coturn logged the allocation for that account;
* credentials minted with another secret, or expired, are refused by coturn (401): the
  secret is really what authorises;
* the web client in Chromium asks OPTIONS before it publishes and its peer connection
  uses what it got (coturn logs the browser speaker's allocation).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aioice import stun, turn
from aiortc import RTCConfiguration, RTCIceTransportPolicy

from pnyx.services.ice import turn_credential
from tests.e2e.test_audio import Background, heard_by_listener, hears
from tests.support.api import create_space, error_of, new_user
from tests.support.coturn import Turn, coturn
from tests.support.hls import HlsListener
from tests.support.ice import ice_servers, parse_links, selected_pair
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.poll import eventually, wait_until
from tests.support.webrtc import ToneTrack, publish

pytestmark = pytest.mark.e2e

TONE_HZ = 523.0
TTL_S = 3600


@pytest.fixture(scope="module")
def turn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Turn]:
    with coturn(Path(tmp_path_factory.mktemp("coturn"))) as t:
        yield t


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, turn_server: Turn) -> Iterator[PnyxProcess]:
    settings = {
        "ice_stun_urls": f"stun:127.0.0.1:{turn_server.port}",
        "ice_turn_urls": f"{turn_server.url},turn:127.0.0.1:{turn_server.port}?transport=tcp",
        "ice_turn_secret": turn_server.secret,
        "ice_turn_ttl_s": str(TTL_S),
    }
    with pnyx_serve(Path(tmp_path_factory.mktemp("turn-node")), settings=settings) as n:
        yield n


def test_options_and_the_publish_answer_carry_the_ice_servers(
    node: PnyxProcess, turn_server: Turn
) -> None:
    with node.client() as c:
        host, other = new_user(c, "ice_host"), new_user(c, "ice_other")
        space = create_space(c, host)
        url = f"/v1/spaces/{space}/publish"

        # Not signed in: the STUN server only, no credentials to anyone.
        r = c.options(url)
        assert r.status_code == 204, r.text
        assert parse_links(r.headers.get_list("link")) == [
            {"url": f"stun:127.0.0.1:{turn_server.port}", "rel": "ice-server"}
        ]
        assert r.headers["cache-control"] == "no-store"

        # A stage member: STUN, and both TURN URLs with credentials minted for them.
        before = int(time.time())
        r = c.options(url, headers=host.auth)
        assert r.status_code == 204, r.text
        stun_link, *turn_links = parse_links(r.headers.get_list("link"))
        assert stun_link["url"].startswith("stun:")
        assert [t["url"] for t in turn_links] == [
            turn_server.url,
            f"turn:127.0.0.1:{turn_server.port}?transport=tcp",
        ]
        for link in turn_links:
            expires, _, who = link["username"].partition(":")
            assert who == host.handle
            assert before + TTL_S <= int(expires) <= int(time.time()) + TTL_S
            expected = turn_credential(turn_server.secret, host.handle, int(expires))
            assert link["credential"] == expected.credential
            assert link["credential-type"] == "password"
            assert link["rel"] == "ice-server"

        # Authenticated like the POST: a bad token is refused, a non-member too.
        error_of(c.options(url, headers={"Authorization": "Bearer nope"}), 401)
        assert error_of(c.options(url, headers=other.auth), 403)["code"] == "not_on_stage"
        error_of(c.options("/v1/spaces/nosuchspace/publish", headers=host.auth), 404)

        # The OpenAPI document says so.
        doc = c.get("/openapi.json").json()
        options = doc["paths"]["/v1/spaces/{space_id}/publish"]["options"]
        assert "Link" in options["responses"]["204"]["headers"]
        post = doc["paths"]["/v1/spaces/{space_id}/publish"]["post"]
        assert "Link" in post["responses"]["201"]["headers"]
        c.post(f"/v1/spaces/{space}/end", headers=host.auth)


async def test_a_speaker_through_turn_only_is_heard(node: PnyxProcess, turn_server: Turn) -> None:
    with node.client() as c:
        host = new_user(c, "relayed")
        space = create_space(c, host)
        r = c.options(f"/v1/spaces/{space}/publish", headers=host.auth)
        servers = [s for s in ice_servers(r.headers.get_list("link")) if "udp" in str(s.urls)]
        assert servers and servers[0].username, r.headers
        config = RTCConfiguration(
            iceServers=servers, iceTransportPolicy=RTCIceTransportPolicy.RELAY
        )
        me = await publish(node.url, space, host.token, ToneTrack(TONE_HZ), configuration=config)
        try:
            offer_types = {
                line.split()[7]
                for line in me.pc.localDescription.sdp.splitlines()
                if line.startswith("a=candidate:")
            }
            assert offer_types == {"relay"}  # nothing but TURN to offer
            await me.connected(within=15)
            pair = selected_pair(me.pc)
            assert pair is not None and pair.local_candidate.type == "relay", pair
            assert pair.local_candidate.host == "127.0.0.1"  # coturn's relay address
            assert any(u.endswith(f":{host.handle}") for u in turn_server.allocations()), (
                turn_server.output()[-3000:]
            )
            started = time.time()
            async with Background(HlsListener(node.url, space)) as listener:
                await eventually(
                    hears(lambda: heard_by_listener(listener, started), {TONE_HZ}),
                    within=15,
                    what="the listener hears the speaker who came through TURN",
                    interval=0.2,
                )
        finally:
            await me.close()
            c.post(f"/v1/spaces/{space}/end", headers=host.auth)


async def _allocate(server: Turn, username: str, password: str) -> tuple[str, int]:
    transport, _ = await turn.create_turn_endpoint(
        asyncio.DatagramProtocol,
        server_addr=(server.host, server.port),
        username=username,
        password=password,
    )
    try:
        return transport.get_extra_info("sockname")  # type: ignore[no-any-return]
    finally:
        transport.close()


async def test_coturn_refuses_other_secrets_and_expired_credentials(turn_server: Turn) -> None:
    now = int(time.time())
    good = turn_credential(turn_server.secret, "alice", now + 600)
    relayed = await _allocate(turn_server, good.username, good.credential)  # the control
    assert relayed[0] == "127.0.0.1"
    forged = turn_credential("another-secret-0123456789", "alice", now + 600)
    expired = turn_credential(turn_server.secret, "alice", now - 5)
    for bad in (forged, expired):
        with pytest.raises(stun.TransactionFailed) as refused:
            await _allocate(turn_server, bad.username, bad.credential)
        assert refused.value.response.attributes["ERROR-CODE"][0] == 401, bad


# -- the web client -----------------------------------------------------------------------


def test_the_web_client_publishes_with_the_ice_servers_from_options(
    node: PnyxProcess, turn_server: Turn, tmp_path: Path
) -> None:
    from tests.support.browser import assert_clean, chromiums, require_browser, sign_in, tone_wav

    require_browser()
    with node.client() as c:
        host = new_user(c, "webice")
        space = create_space(c, host)
    with chromiums(node.url, tone_wav(tmp_path / "tone.wav", 440)) as (browser,):
        page, watch = browser.page("host", voice_processing=False)
        sign_in(page, host.handle, host.token, f"/s/{space}")

        # The Link parser of the web client (ice.js), on what servers may send.
        parsed = page.evaluate(
            """async () => {
              const { parseIceServers } = await import('/web/js/ice.js');
              return [
                parseIceServers(null),
                parseIceServers('<stun:a:3478>; rel="ice-server", <turn:b?transport=udp>; '
                  + 'rel="ice-server"; username="1:x,y"; credential="p\\\\"q;r"; '
                  + 'credential-type="password"'),
                parseIceServers('<turn:c>; rel="ice-server", </x>; rel=next, '
                  + '<stun:d>;rel=ice-server'),
              ];
            }"""
        )
        assert parsed == [
            [],
            [
                {"urls": "stun:a:3478"},
                {"urls": "turn:b?transport=udp", "username": "1:x,y", "credential": 'p"q;r'},
            ],
            [{"urls": "stun:d"}],  # a TURN URL without credentials is left out
        ]

        def configured() -> object:
            servers = page.evaluate("() => window.pnyx?.space?.iceServers ?? null")
            return servers if servers else None

        servers = wait_until(configured, 20, "the publisher's peer connection")
        urls = [s["urls"] if isinstance(s["urls"], str) else s["urls"][0] for s in servers]
        assert f"stun:127.0.0.1:{turn_server.port}" in urls
        turn_entry = next(s for s in servers if "transport=udp" in str(s["urls"]))
        assert re.fullmatch(rf"\d+:{host.handle}", turn_entry["username"])
        # The browser gathered a relay candidate: coturn allocated for this account.
        wait_until(
            lambda: any(u.endswith(f":{host.handle}") for u in turn_server.allocations()),
            20,
            "coturn to allocate for the browser's speaker",
        )
        from playwright.sync_api import expect

        expect(page.locator("#mic-status")).to_have_text(re.compile("You're live"), timeout=20_000)
        assert_clean(watch)
    with httpx.Client(base_url=node.url, timeout=10) as c:
        c.post(f"/v1/spaces/{space}/end", headers=host.auth)
