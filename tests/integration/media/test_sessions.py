"""Publish sessions' edges: bad offers, who may publish, where, and the end of a space."""

from __future__ import annotations

import io
from collections.abc import Awaitable
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest

from pnyx.domain import commands as cmd
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.keys import lease_name, node_url_key
from pnyx.media.hls import PlaylistState
from pnyx.services.media_sink import previous_state
from tests.integration.media.client import tone_level
from tests.integration.media.conftest import HOST, Stage
from tests.support.poll import eventually

NO_ICE = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"
)
VIDEO = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"


@pytest.mark.parametrize(
    ("offer", "says"),
    [
        ("hello", "m=audio"),
        ("", "m=audio"),
        (VIDEO, "found: video"),
        (NO_ICE, "refused"),
        (NO_ICE.replace("a=rtpmap", "a=recvonly\r\na=rtpmap"), "recvonly"),
        (NO_ICE.replace("111", "0").replace("opus/48000/2", "PCMU/8000"), "Opus"),
    ],
)
async def test_a_bad_offer_is_malformed_and_changes_nothing(
    stage: Stage, offer: str, says: str
) -> None:
    alice = await stage.member("alice")
    host, _host_session = await stage.connect(HOST, 500)
    _al, _ = await stage.connect(alice, 800)
    await eventually(lambda: len(host.heard) > 20, 15, "host hears")
    before = stage.sessions()
    with pytest.raises(PnyxError) as err:
        await stage.media.publish(stage.space, alice, offer)
    assert err.value.kind is ErrorKind.MALFORMED
    assert says in err.value.message
    assert stage.sessions() == before
    host.clear()
    await eventually(lambda: len(host.heard) > 20, 15, "host still hears")
    assert tone_level(host.last(0.4), 800) > 0.05


async def test_only_the_stage_of_a_live_space_publishes(stage: Stage) -> None:
    await stage.media.check(stage.space, HOST)
    with pytest.raises(PnyxError) as err:
        await stage.media.check(stage.space, "someone")  # type: ignore[arg-type]
    assert err.value.kind is ErrorKind.FORBIDDEN
    await stage.spaces.execute(stage.space, cmd.EndSpace(HOST))
    with pytest.raises(PnyxError) as err:
        await stage.media.check(stage.space, HOST)
    assert err.value.kind is ErrorKind.CONFLICT


async def test_a_space_run_by_another_node_is_placed_there(stage: Stage) -> None:
    await stage.media.stop(stage.space, ended=False)
    await stage.live.acquire(lease_name(stage.space), "node-b", 30)
    where = await stage.media.place(stage.space, take=True)  # its URL is not known yet
    assert (where.here, where.holder, where.url) == (False, "node-b", None)
    await stage.live.put_blob(node_url_key("node-b"), b"http://10.0.0.2:8000", 30)
    where = await stage.media.place(stage.space, take=True)
    assert (where.here, where.holder, where.url) == (False, "node-b", "http://10.0.0.2:8000")
    assert not stage.media.running(stage.space)


async def test_a_free_space_is_taken_here(stage: Stage) -> None:
    await stage.media.stop(stage.space, ended=False)
    assert (await stage.media.place(stage.space, take=True)).here
    assert stage.media.running(stage.space)
    lease = await stage.live.holder(lease_name(stage.space))
    assert lease is not None and lease.holder == "node-test"
    url = await stage.live.get_blob(node_url_key("node-test"))
    assert url == stage.settings.advertised_url.encode()


async def test_unpublish_needs_your_own_session(stage: Stage) -> None:
    alice = await stage.member("alice")
    _, session = await stage.connect(alice, 800)
    with pytest.raises(PnyxError) as err:
        await stage.media.unpublish(stage.space, HOST, session)
    assert err.value.kind is ErrorKind.NOT_FOUND
    await stage.media.unpublish(stage.space, alice, session)
    assert stage.sessions() == {}
    with pytest.raises(PnyxError):
        await stage.media.unpublish(stage.space, alice, session)


async def playlist_state(stage: Stage) -> PlaylistState | None:
    return await previous_state(stage.live, stage.space)


def decode(data: bytes) -> npt.NDArray[np.float32]:
    """AAC in fMP4 → float mono samples."""
    with av.open(io.BytesIO(data), format="mp4") as container:
        pcm = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    return np.concatenate(pcm).astype(np.float32)


async def test_ending_the_space_closes_the_stream_and_the_recording(stage: Stage) -> None:
    host, _ = await stage.connect(HOST, 500)

    async def segments() -> int:
        state = await playlist_state(stage)
        return len(state.segments) if state else 0

    await eventually(lambda: _at_least(segments(), 2), 15, "two segments")  # 1.92 s each
    await stage.media.stop(stage.space, ended=True)
    assert not stage.media.running(stage.space)
    assert stage.sessions() == {}
    await eventually(lambda: host.pc.connectionState in ("closed", "failed"), 10, "pc closed")
    state = await playlist_state(stage)
    assert state is not None and state.ended and not state.parts
    text = await stage.origin.playlist(stage.space, "ll", None, None)
    assert text.rstrip().endswith("#EXT-X-ENDLIST")
    init = await stage.origin.media_object(stage.space, "init.mp4")
    assert init[4:8] == b"ftyp"
    # The recording has every segment, is closed, and plays back the program (the tone).
    repo = stage.store.recordings
    await eventually(lambda: not stage.recordings.pending(stage.space), 10, "recording stored")
    info = await repo.info(stage.space)
    assert info is not None and info.finished_at is not None
    assert [r.msn for r in info.segments] == [s.msn for s in state.segments]
    media = (await repo.init(stage.space) or b"") + b"".join(
        [await repo.segment(stage.space, r.msn) or b"" for r in info.segments[1:]]
    )
    played = decode(media)
    assert tone_level(played[-48_000:], 500) > 0.05
    snap = await stage.live.get_snapshot(stage.space)
    assert snap is not None and snap.parts["levels"] == {"speaking": []}


async def test_a_node_taking_over_continues_the_stream(stage: Stage) -> None:
    await stage.connect(HOST, 500)

    async def mid_segment() -> bool:
        state = await playlist_state(stage)
        return state is not None and bool(state.segments) and bool(state.parts)

    await eventually(mid_segment, 15, "a segment and a part of the next")
    await stage.media.stop(stage.space, ended=False)  # the lease moved away...
    before = await playlist_state(stage)
    assert before is not None and not before.ended
    await stage.media.ensure_running(stage.space)  # ...and came back: resume

    async def two_more() -> bool:
        state = await playlist_state(stage)
        return state is not None and state.next_msn >= before.next_msn + 2

    await eventually(two_more, 15, "new segments after the takeover")
    after = await playlist_state(stage)
    assert after is not None
    msns = [s.msn for s in after.segments]
    assert msns == list(range(msns[0], msns[0] + len(msns)))  # no gap, no repeat
    orphan = next(s for s in after.segments if s.msn == before.next_msn)
    assert orphan.parts == before.parts  # closed short from the stored parts
    following = next(s for s in after.segments if s.msn == before.next_msn + 1)
    assert following.discontinuity
    seg = await stage.origin.media_object(stage.space, f"seg/{orphan.msn}.m4s")
    parts = [await stage.origin.media_object(stage.space, p.uri) for p in orphan.parts]
    assert seg == b"".join(parts)


async def _at_least(value: Awaitable[int], n: int) -> bool:
    return await value >= n


async def test_who_speaks_is_published(stage: Stage) -> None:
    await stage.connect(HOST, 500)

    async def speaking() -> list[str]:
        snap = await stage.live.get_snapshot(stage.space)
        return list(snap.parts.get("levels", {}).get("speaking", [])) if snap else []

    await eventually(lambda: _equals(speaking(), [HOST]), 10, "host speaking")


async def _equals(value: object, expected: object) -> bool:
    return await value == expected  # type: ignore[misc]


async def test_rtcp_reports_what_the_direct_rtp_path_sent_and_received(stage: Stage) -> None:
    """The stage node's RTP skips aiortc's sending task and receive queues
    (media/rtp_path.py); its RTCP must still tell the speaker what was sent (sender
    reports) and received (receiver reports), as a browser's stats and bandwidth
    estimation read them."""
    speaker, _ = await stage.connect(HOST, 700)
    await eventually(lambda: len(speaker.heard) > 50, 15, "the speaker hears its mix-minus")

    async def reports() -> dict[str, Any]:
        stats = await speaker.pc.getStats()
        return {s.type: s for s in stats.values()}

    async def both() -> bool:
        found = await reports()
        sent = found.get("remote-outbound-rtp")  # from the node's sender reports
        got = found.get("remote-inbound-rtp")  # from its receiver reports
        return bool(sent and sent.packetsSent > 50 and got and got.packetsLost is not None)

    await eventually(both, 10, "sender and receiver reports from the stage node")
    found = await reports()
    inbound = found["inbound-rtp"]
    # what the node says it sent is what the speaker got, give or take the packets in flight
    assert abs(found["remote-outbound-rtp"].packetsSent - inbound.packetsReceived) < 60
