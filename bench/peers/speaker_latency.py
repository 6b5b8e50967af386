"""Speaker A → speaker B latency through any server, and with no server over the same
veth: ``bench/latency_stage.py``'s measurement (its ``onsets``: A switches a 1 kHz tone
on; the instant B's mix-minus holds it, minus A's capture instant), with B's peer
connection given a receiver that does not add delay on its own after a lost packet.

aiortc's stock audio jitter buffer stops releasing frames at the first missing packet
until it overflows (16 packets later), and from then on keeps 14 frames instead of 4:
one lost packet adds ~200-300 ms to everything B hears afterwards, whatever the server
did (measured here: a direct aiortc call over the veth with 2 % loss went from 110 to
310-440 ms). The servers' own receive paths are what the bench compares, so B (every
row, with or without loss) uses Pnyx's :class:`~pnyx.media.ingest.GapSkippingJitterBuffer`
instead, the one Pnyx's ingest gives its own aiortc receivers. A (the sender) is stock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from tests.support.netlab import Worker

from latency_stage import TONE_HZ, onsets
from latency_support import poll, webrtc
from peers.netns import Netns
from pnyx.media.ingest import JITTER_CAPACITY, JITTER_PREFETCH, GapSkippingJitterBuffer

Join = Callable[[webrtc.ToneTrack], Awaitable[webrtc.Speaker]]


def skip_gaps(pc: RTCPeerConnection) -> None:
    """Give ``pc``'s audio receivers a gap-skipping jitter buffer. Called right after the
    remote description is set, before the connection has carried any packet."""
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        if transceiver.kind != "audio" or receiver is None:
            continue
        if not hasattr(receiver, "_RTCRtpReceiver__jitter_buffer"):
            raise RuntimeError("this aiortc's receiver has no jitter buffer to replace")
        receiver._RTCRtpReceiver__jitter_buffer = GapSkippingJitterBuffer(
            capacity=JITTER_CAPACITY, prefetch=JITTER_PREFETCH
        )


async def a_to_b(join: Join, n: int, label: str, *, gapless: bool = True) -> list[float]:
    """A and B join (``join``: publish a track, return the speaker); ``n`` onsets of A's
    tone timed in B's mix-minus. ``gapless``: B skips gaps (False: aiortc's stock)."""
    tone = webrtc.ToneTrack(TONE_HZ, on=False)
    a = await join(tone)
    try:
        b = await join(webrtc.ToneTrack(700.0, on=False))
        if gapless:
            skip_gaps(b.pc)
        try:
            await a.connected()
            await b.connected()
            await b.hearing(2.0)  # warm-up
            result = await onsets(tone, b.received, n, label)
            print(f"{label}: B's longest gap between frames {b.received.gaps():.3f} s")
            return result
        finally:
            await b.close()
    finally:
        await a.close()


async def direct_over_veth(ns: Netns, n: int, label: str, *, gapless: bool = True) -> list[float]:
    """A → B with no server, B's peer connection inside ``ns``: the path the servers'
    clients take (the veth and its loss rule), without the server. B runs on a thread in
    the namespace (a socket keeps the namespace it was made in); what it hears is
    recorded on this loop."""
    tone = webrtc.ToneTrack(TONE_HZ, on=False)
    heard = webrtc.Recording()
    here = asyncio.get_running_loop()
    inside = Worker(ns.name)
    pa = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b: dict[str, Any] = {}

    async def read(remote: MediaStreamTrack) -> None:  # on the worker's loop
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await remote.recv()
                arrived = time.time()
                if not isinstance(frame, av.AudioFrame):
                    continue
                pcm = frame.to_ndarray().reshape(-1)[:: len(frame.layout.channels)]
                mono = (pcm / 32768.0).astype(np.float32)
                here.call_soon_threadsafe(heard.append, mono, arrived)

    async def answer(offer: str) -> str:  # on the worker's loop
        pb = b["pc"] = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pb.on("track", lambda remote: b.setdefault("reader", asyncio.ensure_future(read(remote))))
        await pb.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        if gapless:
            skip_gaps(pb)
        await pb.setLocalDescription(await pb.createAnswer())
        return str(pb.localDescription.sdp)

    async def close_b() -> None:  # on the worker's loop
        if "reader" in b:
            b["reader"].cancel()
            await asyncio.gather(b["reader"], return_exceptions=True)
        if "pc" in b:
            await b["pc"].close()

    try:
        pa.addTrack(tone)
        await pa.setLocalDescription(await pa.createOffer())
        sdp = await inside.run(answer(pa.localDescription.sdp))
        await pa.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        await poll.eventually(lambda: heard.seconds >= 2.0, 15, "direct audio over the veth")
        return await onsets(tone, heard, n, label)
    finally:
        tone.stop()
        await pa.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(inside.run(close_b()), 15)
        inside.close()
