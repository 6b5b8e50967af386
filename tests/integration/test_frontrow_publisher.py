"""The front row's sender to an edge outlives the edge resetting its connection: it
connects again, and the node's shutdown never fails on it.

Found in CI: uvloop (the server's loop) closes a transport as soon as it reads a reset, and
then *raises* on a write; asyncio's own loop drops the write. When the reset was read in
the same loop turn as a new message woke the sender, and before the reader heard of it,
the sender wrote to the closed transport and died: that edge got no more of the space's
front row, and stopping the space's media raised out of the node's shutdown.

The edge here is a plain socket the test drives by hand, so the order of events is exact:
it resets the connection and a message is put in one synchronous step.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from pnyx.services.frontrow import FrontRowPublisher

SPACE = "s1"
ANSWER = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"


async def _request(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await loop.sock_recv(conn, 1 << 16)
        assert chunk, "the node closed the connection"
        data += chunk
    return data


async def _next_post(pub: FrontRowPublisher, conn: socket.socket) -> bytes:
    """What waited when the stream connected is dropped as stale: send until one comes."""
    loop = asyncio.get_running_loop()
    for _ in range(50):  # bounded: 50 messages, 10 s
        pub.submit(SPACE, b"audio")
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(_request(loop, conn), 0.2)
    raise AssertionError("no post came on the edge's connection")


async def _accept(listener: socket.socket) -> socket.socket:
    conn, _ = await asyncio.wait_for(asyncio.get_running_loop().sock_accept(listener), 5)
    conn.setblocking(False)
    return conn


async def _scenario() -> tuple[dict[str, int], bytes]:
    loop = asyncio.get_running_loop()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        pub = FrontRowPublisher([f"http://127.0.0.1:{port}/frontrow/pub/"], timeout_s=2)
        try:
            pub.submit(SPACE, b"first")  # opens the space's stream to the edge
            conn = await _accept(listener)
            await _next_post(pub, conn)
            # The edge resets, and a message comes from the mixer's thread before the
            # loop's next turn. That turn reads the reset; the next one puts the message
            # (waking the sender) and then closes the transport (waking the reader).
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            pub.submit(SPACE, b"during")
            (link,) = pub._links[SPACE]
            # It connects again (after its backoff) and posts what comes next.
            accepting = asyncio.ensure_future(_accept(listener))
            await asyncio.wait({accepting, link.task}, return_when=asyncio.FIRST_COMPLETED)
            assert not link.task.done(), f"the sender died: {link.task.exception()!r}"
            with await accepting as conn:
                head = await _next_post(pub, conn)
                await loop.sock_sendall(conn, ANSWER)
                for _ in range(100):  # bounded: 2 s for the answer to be counted
                    if pub.counts["posted"]:
                        break
                    await asyncio.sleep(0.02)
                return dict(pub.counts), head
        finally:
            await pub.stop(SPACE)  # raised out of the node's shutdown before the fix


Runner = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.mark.parametrize("run", [uvloop.run, asyncio.run], ids=["uvloop", "asyncio"])
def test_the_sender_connects_again_after_the_edge_resets_it(run: Runner) -> None:
    counts, head = run(_scenario())
    assert head.startswith(f"POST /frontrow/pub/{SPACE} HTTP/1.1".encode())
    assert counts["posted"] >= 1, counts
    assert counts["failed"] >= 1, counts  # the reset was counted
