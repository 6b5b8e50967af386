"""Pnyx on the rehearsal network (``tests/support/netlab.py``): every server on its own
host and address, clients in their own hosts.

* The kill-a-node drill on separate addresses: two nodes (node-a, node-b) sharing Redis
  and PostgreSQL on the db host, the nginx edge on the edge host; a speaker and a listener
  on the listener host, both through the edge. The node running the stage is SIGKILLed:
  the stage moves to the other node, the speaker publishes again by itself, the tone
  comes back at the listener within the bound of ``tests/e2e/test_failover.py``, and the
  space is still live with its host.
* Chromium on the speaker host, behind the NAT, loads the web client through the edge and
  plays a live space (a smoke test: publishing through TURN is
  tests/multihost/test_behind_the_nat.py's).
* The whole stack as ``scripts/netlab.py up`` starts it, with docs/deploy.md's settings:
  each server listens on its own host, the edge serves HTTPS (port 80 redirects), the
  nodes hand speakers the TURN server with credentials coturn accepts, believe the edge's
  ``X-Forwarded-For`` (a client's limits are its own address's), sign private links the
  edge checks, and answer offers with candidates on their own address in the UDP range;
  and nothing is left behind.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from aioice.turn import create_turn_endpoint

from tests.e2e.test_failover import BACK_WITHIN_S
from tests.e2e.test_publish_anywhere import holder_of
from tests.e2e.test_takeover import lease, media_spaces, node_id
from tests.multihost.conftest import built_lab
from tests.support import netlab
from tests.support.api import create_space, join, new_user, ok, on_stage, state
from tests.support.browser import assert_clean, chromiums, require_browser, tone_wav
from tests.support.failover import kill_drill
from tests.support.ice import parse_links
from tests.support.netlab_servers import (
    ICE_PORTS,
    TURN_SECRET,
    Stack,
    start_edge,
    start_node,
    start_stack,
    turn_urls,
)
from tests.support.webrtc import ToneTrack, publish

pytestmark = pytest.mark.multihost

TONE_HZ = 660.0


def stat_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().strip()
    except OSError:
        return ""


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:  # gone since it was listed
        return ""


async def drill(lab: netlab.Lab, stack: Stack) -> dict[str, Any]:
    """The drill, run on the listener host (its own event loop, in its namespace)."""
    nodes = list(stack.nodes.values())
    edge = stack.edge.url
    with stack.edge.client() as c:
        host = new_user(c, "host")
        space = create_space(c, host)
    holder = holder_of(nodes, stack.redis, space)
    (survivor,) = [n for n in nodes if n is not holder]
    out = await kill_drill(
        edge,
        space,
        host.token,
        holder.proc,
        survivor.url,
        tone_hz=TONE_HZ,
        back_within_s=BACK_WITHIN_S,
        verify=stack.edge.trust(),
    )
    held = lease(stack.redis, space)
    moved = held is not None and held[0] == node_id(survivor) and media_spaces(survivor) == 1
    with survivor.client() as c:
        s = state(c, space)
        discontinuity = "#EXT-X-DISCONTINUITY" in c.get(f"/media/{space}/live.m3u8").text
    return {
        "holder": holder,
        "survivor": survivor,
        "took": out.took,
        "republished": [round(t - out.killed, 2) for t in out.republished],
        "failures": out.failures,
        "after_kill": out.after_kill(),
        "dead_wrote": out.dead_wrote,
        "state": s,
        "host": host.handle,
        "discontinuity": discontinuity,
        "moved": moved,
    }


async def test_the_kill_a_node_drill_on_separate_addresses(lab: netlab.Lab) -> None:
    stack = await asyncio.to_thread(start_stack, lab, turn=False)
    # Each node is its own host: its own address, announced as its public URL.
    assert {h: n.url for h, n in stack.nodes.items()} == {
        h: f"http://{lab.addr[h]}:8000" for h in ("node-a", "node-b")
    }
    worker = lab.worker("listener")
    out = await worker.run(drill(lab, stack))
    holder, survivor = out["holder"], out["survivor"]
    names = {n.url: h for h, n in stack.nodes.items()}
    print(
        f"stage on {names[holder.url]} SIGKILLed; tone back at the listener {out['took']:.2f}s "
        f"after; speaker republished {out['republished']}s after; failures {out['failures']}"
    )
    assert out["took"] <= BACK_WITHIN_S, f"the tone came back only {out['took']:.2f}s after"
    assert out["republished"], "the speaker never published again"
    keys = out["after_kill"]
    assert keys == sorted(keys) and keys[-1] > out["dead_wrote"]
    assert out["moved"], "the survivor does not hold the space's stage lease and media"
    assert out["discontinuity"]
    assert out["state"]["state"] == "live"
    assert on_stage(out["state"])[out["host"]]["role"] == "host"
    assert "Traceback" not in survivor.output(), survivor.output()


def test_chromium_behind_the_nat_plays_a_space_through_the_edge(
    lab: netlab.Lab, tmp_path: Path
) -> None:
    require_browser()
    node = start_node(lab, "node-a", database=None, redis=None)
    edge = start_edge(lab, [node.url.removeprefix("http://")])

    def create() -> str:
        with httpx.Client(base_url=edge.url, timeout=20) as c:
            return create_space(c, new_user(c, "host"), title="Off the loopback")

    space = lab.call("speaker", create)
    tone = tone_wav(tmp_path / "tone.wav", 440.0)

    def browse() -> str:
        from playwright.sync_api import expect

        with chromiums(edge.url, tone) as (browser,):
            page, watch = browser.page("guest")
            page.goto(f"/s/{space}")
            expect(page.get_by_role("heading", name="Off the loopback")).to_be_visible()
            page.get_by_role("button", name="Play the space").click()
            expect(page.locator("#player-status")).to_have_text(
                re.compile("Playing live"), timeout=30_000
            )
            assert_clean(watch)
            # Chromium itself runs in the speaker's namespace (started from this thread).
            inside = [command_of(p) for p in lab.pids()[lab.ns("speaker")]]
            assert any("chrom" in name for name in inside), inside
            return str(page.evaluate("location.origin"))

    assert lab.call("speaker", browse) == edge.url.removesuffix(":80")


def ice_and_links_behind_the_nat(stack: Stack) -> dict[str, Any]:
    """From the speaker host, through the HTTPS edge: an account, its space's publish
    OPTIONS (the ICE servers), a TURN allocation with the credentials the node minted, and
    a private space's signed link read through the edge (and an unsigned one refused)."""
    with stack.edge.client() as c:
        host, guest = new_user(c, "host"), new_user(c, "guest")
        space = create_space(c, host)
        r = c.options(f"/v1/spaces/{space}/publish", headers=host.auth)
        assert r.status_code == 204, r.text
        links = [li for li in parse_links(r.headers.get_list("link")) if "ice-server" in li["rel"]]
        owner = new_user(c, "owner")  # one live space per account: the host has one
        private = create_space(c, owner, visibility="private")
        invite = {"handle": guest.handle}
        ok(c.post(f"/v1/spaces/{private}/invites", json=invite, headers=owner.auth), 201)
        signed = join(c, private, guest).media["hls"].removesuffix("/live.m3u8")
        prefix = signed.removesuffix(f"/media/{private}")
        unsigned = c.get(f"/v1/spaces/{private}/state")
        reads = {
            "signed": c.get(f"{prefix}/v1/spaces/{private}").status_code,
            "unsigned": (unsigned.status_code, unsigned.text),
        }
    turn = next(li for li in links if li["url"].endswith("transport=tcp"))

    async def allocate() -> None:
        assert stack.turn is not None
        relay, _ = await create_turn_endpoint(
            asyncio.DatagramProtocol,
            (stack.turn.addr, stack.turn.port),
            turn["username"],
            turn["credential"],
            transport="tcp",
        )
        relay.close()

    asyncio.run(allocate())
    return {"handle": host.handle, "links": links, "reads": reads, "prefix": prefix}


async def answer_candidates(stack: Stack) -> list[tuple[str, str, int]]:
    """On the listener host: publish a tone through the edge; the (type, address, port) of
    the candidates in the stage node's answer."""
    with stack.edge.client() as c:
        host = new_user(c, "answer")
        space = create_space(c, host)
    speaker = await publish(
        stack.edge.url, space, host.token, ToneTrack(TONE_HZ), verify=stack.edge.trust()
    )
    try:
        await speaker.connected(within=20)
        sdp = speaker.pc.remoteDescription.sdp
    finally:
        await speaker.close()
    out = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            f = line.split()
            out.append((f[7], f[4], int(f[5])))
    return out


def signup_buckets(url: str) -> list[str]:
    """The sign-up rate-limit buckets in Redis (each ends with the client's address)."""
    client = redis.Redis.from_url(url)
    try:
        keys = client.keys("*signup-address*")
        return [k.decode() if isinstance(k, bytes) else str(k) for k in keys]
    finally:
        client.close()


def test_the_whole_stack_runs_with_the_deployed_settings_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    with built_lab(tmp_path / "lab") as lab:
        # The default sign-up limits (the tests' FAST ones refill in a second, and their
        # buckets expire as fast): the buckets looked at below last minutes.
        defaults = {"signup_address_burst": "5", "signup_address_per_min": "0.5"}
        stack = start_stack(lab, settings=defaults)
        assert stack.turn is not None and stack.edge.cert is not None
        cert = stack.edge.cert
        edge_addr, nat = lab.addr["edge"], lab.addr["nat"]
        assert stack.edge.url == f"https://{edge_addr}:443"

        def from_behind_the_nat() -> dict[str, Any]:
            codes: dict[str, Any] = {}
            with stack.edge.client() as c:
                codes["edge"] = c.get("/healthz").status_code
            with httpx.Client(timeout=10) as c:
                r = c.get(f"{stack.edge.http_url}/healthz")
                codes["http"] = (r.status_code, r.headers.get("location"))
                for host, node in stack.nodes.items():
                    codes[host] = c.get(f"{node.url}/healthz").status_code
            return codes

        assert lab.call("speaker", from_behind_the_nat) == {
            "edge": 200,
            "http": (308, f"https://{edge_addr}/healthz"),
            "node-a": 200,
            "node-b": 200,
        }
        # Each server listens on its own host's address.
        listening = {
            host: lab.run(host, ["ss", "-Htlnu"]).stdout.decode()
            for host in ("edge", "node-a", "node-b", "db", "turn")
        }
        assert f"{edge_addr}:80" in listening["edge"]
        assert f"{edge_addr}:443" in listening["edge"]
        assert f"{lab.addr['node-a']}:8000" in listening["node-a"]
        assert f"{lab.addr['node-b']}:8000" in listening["node-b"]
        assert f"{lab.addr['db']}:6379" in listening["db"]
        assert f"{lab.addr['db']}:5432" in listening["db"]
        assert f"{lab.addr['turn']}:3478" in listening["turn"]

        seen = lab.call("speaker", lambda: ice_and_links_behind_the_nat(stack))
        # TURN (UDP and TCP) and STUN on the TURN host, with credentials minted from
        # coturn's secret for the account, which coturn accepted.
        assert {li["url"] for li in seen["links"]} == {
            f"stun:{lab.addr['turn']}:3478",
            *turn_urls(lab),
        }
        for li in seen["links"]:
            if li["url"].startswith("turn:"):
                assert li["username"].endswith(f":{seen['handle']}"), li
                mac = hmac.new(TURN_SECRET.encode(), li["username"].encode(), hashlib.sha1)
                assert li["credential"] == base64.b64encode(mac.digest()).decode()
        assert stack.turn.allocated_for(seen["handle"]), stack.turn.log.read_text()[-2000:]
        # The link secret: a link the node signed passes the edge (and the node); the
        # edge refuses an unsigned read itself.
        assert seen["reads"]["signed"] == 200, seen
        status, text = seen["reads"]["unsigned"]
        assert status == 403 and "signed link" in text, seen
        # trusted_proxies: the sign-ups through the edge counted against the NAT's
        # address (the client's), not the edge's.
        buckets = lab.call("listener", lambda: signup_buckets(stack.redis))
        assert buckets and all(k.endswith(f":{nat}") for k in buckets), buckets
        # ICE: the stage node answers with candidates on its own address, in the range.
        candidates = lab.worker("listener").call(lambda: answer_candidates(stack))
        low, high = ICE_PORTS
        nodes = {lab.addr["node-a"], lab.addr["node-b"]}
        assert candidates and all(
            kind == "host" and addr in nodes and low <= port <= high
            for kind, addr, port in candidates
        ), candidates
        pids = [p for ps in lab.pids().values() for p in ps]
        folders = [stack.postgres.root, stack.edge.conf.parent, cert.cert.parent]
        assert len(pids) >= 8 and all(f.exists() for f in folders)
    assert netlab.list_namespaces(lab.tag + "-") == []
    left = {p: stat_of(p) for p in pids if netlab.running(p)}
    assert left == {}
    assert [f for f in folders if f.exists()] == []
