"""Pnyx on the rehearsal network (``tests/support/netlab.py``): every server on its own
host and address, clients in their own hosts.

* The kill-a-node drill on separate addresses: two nodes (node-a, node-b) sharing Redis
  and PostgreSQL on the db host, the nginx edge on the edge host; a speaker and a listener
  on the listener host, both through the edge. The node running the stage is SIGKILLed:
  the stage moves to the other node, the speaker publishes again by itself, the tone
  comes back at the listener within the bound of ``tests/e2e/test_failover.py``, and the
  space is still live with its host.
* Chromium on the speaker host, behind the NAT, loads the web client through the edge and
  plays a live space (a smoke test: publishing through TURN comes with the ICE settings).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_failover import BACK_WITHIN_S
from tests.e2e.test_publish_anywhere import holder_of
from tests.e2e.test_takeover import lease, media_spaces, node_id
from tests.multihost.conftest import built_lab
from tests.support import netlab
from tests.support.api import create_space, new_user, on_stage, state
from tests.support.browser import assert_clean, chromiums, require_browser, tone_wav
from tests.support.failover import kill_drill
from tests.support.netlab_servers import Stack, start_edge, start_node, start_stack

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
    with httpx.Client(base_url=edge, timeout=20) as c:
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


def test_the_whole_stack_runs_on_its_hosts_and_leaves_nothing_behind(tmp_path: Path) -> None:
    with built_lab(tmp_path / "lab") as lab:
        stack = start_stack(lab)
        assert stack.turn is not None

        def from_behind_the_nat() -> dict[str, int]:
            codes = {}
            with httpx.Client(timeout=10) as c:
                codes["edge"] = c.get(f"{stack.edge.url}/healthz").status_code
                for host, node in stack.nodes.items():
                    codes[host] = c.get(f"{node.url}/healthz").status_code
            return codes

        healthy = {"edge": 200, "node-a": 200, "node-b": 200}
        assert lab.call("speaker", from_behind_the_nat) == healthy
        # Each server listens on its own host's address.
        listening = {
            host: lab.run(host, ["ss", "-Htlnu"]).stdout.decode()
            for host in ("edge", "node-a", "node-b", "db", "turn")
        }
        assert f"{lab.addr['edge']}:80" in listening["edge"]
        assert f"{lab.addr['node-a']}:8000" in listening["node-a"]
        assert f"{lab.addr['node-b']}:8000" in listening["node-b"]
        assert f"{lab.addr['db']}:6379" in listening["db"]
        assert f"{lab.addr['db']}:5432" in listening["db"]
        assert f"{lab.addr['turn']}:3478" in listening["turn"]
        pids = [p for ps in lab.pids().values() for p in ps]
        folders = [stack.postgres.root, stack.edge.conf.parent]
        assert len(pids) >= 8 and all(f.exists() for f in folders)
    assert netlab.list_namespaces(lab.tag + "-") == []
    left = {p: stat_of(p) for p in pids if netlab.running(p)}
    assert left == {}
    assert [f for f in folders if f.exists()] == []
