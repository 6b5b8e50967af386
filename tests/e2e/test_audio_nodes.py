"""Live audio across processes: speakers publish to the stage node, listeners read from
another node, both sharing a real Redis (live state: parts, playlists, leases) and a real
PostgreSQL. A publish sent to the node that does not run the space is relayed by it to
the stage node: the speaker only ever talks to the node it chose."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_audio import (
    COHOST_HZ,
    FREQS,
    HOST_HZ,
    LOOK_S,
    SPEAKER_HZ,
    Background,
    heard_by_listener,
    heard_by_speaker,
    hears,
    stage_of_three,
)
from tests.support.api import state
from tests.support.hls import HlsListener
from tests.support.pnyx_server import pnyx_serve
from tests.support.poll import eventually
from tests.support.webrtc import ToneTrack, publish

pytestmark = pytest.mark.e2e


async def test_publish_on_the_stage_node_listen_on_the_api_node(
    tmp_path: Path, redis_clean_url: str, pg_database_url: str
) -> None:
    shared = {"database": pg_database_url, "redis": redis_clean_url}
    with (
        pnyx_serve(tmp_path / "stage", settings={"role": "stage"}, **shared) as stage_node,
        pnyx_serve(tmp_path / "api", settings={"role": "api"}, **shared) as api_node,
        api_node.client() as c,
    ):
        # Everything the audience and the host do goes through the API node.
        space, host, cohost, speaker = stage_of_three(c)
        assert state(c, space)["state"] == "live"
        # The host publishes to the API node (as a client that only knows one URL would):
        # 201 from the API node's URL, relayed to the stage node; the others publish
        # there directly.
        me_host = await publish(api_node.url, space, host.token, ToneTrack(HOST_HZ))
        speakers = [me_host]
        try:
            assert me_host.redirects == [] and me_host.retries == 0
            assert me_host.resource is not None
            assert me_host.resource.startswith(f"{api_node.url}/v1/spaces/{space}/publish/")
            for who, hz in ((cohost, COHOST_HZ), (speaker, SPEAKER_HZ)):
                speakers.append(await publish(stage_node.url, space, who.token, ToneTrack(hz)))
            for s in speakers:
                await s.connected()
            started = time.time()
            async with Background(HlsListener(api_node.url, space)) as listener:
                await eventually(
                    hears(lambda: heard_by_listener(listener, started), set(FREQS)),
                    within=15,
                    what="a listener on the API node hears the stage node's mix",
                    interval=LOOK_S,
                )
                assert all(p.uri.startswith("part/") for p in listener.parts)
                for me, own in zip(speakers, FREQS, strict=True):
                    await eventually(
                        hears(lambda me=me: heard_by_speaker(me, started), set(FREQS) - {own}),
                        within=5,
                        what=f"the mix-minus of the {own:g} Hz speaker",
                        interval=LOOK_S,
                    )
                gap, problems = listener.continuity()
                assert problems == [] and listener.skipped == []
                assert gap < 1.0, f"parts stopped arriving for {gap:.2f}s"
            # Leaving through the API node works too: the DELETE is relayed as well.
            async with httpx.AsyncClient(timeout=20) as http:
                r = await http.delete(me_host.resource, headers=host.auth)
                assert r.status_code == 204, r.text
                r = await http.delete(me_host.resource, headers=host.auth)
                assert r.status_code == 404, r.text  # gone on the stage node
            me_host.resource = None

            def mix_minus_stopped() -> bool:
                last = me_host.received.last_arrival
                return last is not None and time.time() - last > 1.0

            await eventually(mix_minus_stopped, within=10, what="the host's session to end")
        finally:
            for s in speakers:
                await s.close()
