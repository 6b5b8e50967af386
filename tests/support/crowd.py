"""Many HTTP/1.1 clients asking for one URL at the same instant, on connections opened
beforehand, each answer timed when its last byte arrives: what a crowd of listeners
waiting on the next LL-HLS part looks like to an edge. Plain asyncio streams (an HTTP
client library's own work per request would be most of what is measured)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect(port: int, n: int, host: str = "127.0.0.1") -> list[Conn]:
    """``n`` keep-alive connections, opened 200 at a time (the listen backlog)."""
    conns: list[Conn] = []
    for i in range(0, n, 200):
        conns += await asyncio.gather(
            *(asyncio.open_connection(host, port) for _ in range(min(200, n - i)))
        )
    return conns


def close(conns: list[Conn]) -> None:
    for _, writer in conns:
        writer.close()


def request(path: str, headers: Mapping[str, str] | None = None) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return f"GET {path} HTTP/1.1\r\nHost: crowd\r\n{extra}\r\n".encode()


async def get(conn: Conn, raw: bytes) -> tuple[float, int, bytes]:
    """Send ``raw`` (from :func:`request`); (monotonic time its answer's last byte came,
    status, body)."""
    reader, writer = conn
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    body = b""
    if "content-length" in fields:
        body = await reader.readexactly(int(fields["content-length"]))
    elif fields.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            chunks.append((await reader.readexactly(size + 2))[:-2])
            if size == 0:
                break
        body = b"".join(chunks)
    return time.monotonic(), status, body


async def crowd(conns: list[Conn], raw: bytes) -> list[tuple[float, int, bytes]]:
    """Every connection sends ``raw`` at once; their answers, in connection order."""
    return list(await asyncio.gather(*(get(c, raw) for c in conns)))
