"""Stage sessions: the WebSocket of a host, co-host or speaker, independent of the web
framework. The API hands us a ``StageSocket``; we authenticate it, check the member is
on stage, forward the space's stage events, keep it alive with pings, and close it with
a code that says why (protocol/stage.py ``CloseCode``).

While a member's socket is open, this node keeps the blob :func:`socket_presence_key` in
the live state (refreshed every third of ``stage_presence_ttl_s``, lapsing after it if the
node dies). The blob holds the mark of the socket that wrote it last, and a socket that
closes empties it only if it still holds its own mark: a member who reconnected before
the old socket closed (a phone leaving Wi-Fi; the old one goes when it falls idle) stays
present through the new one. The space's stage node reads the host's, with its own
publish sessions, to judge whether the host is there (services/ticker.py): a socket on
any node counts.

A socket outlives no sign-out: while it is open its token is checked again every
``session_check_s`` (at most every second), as every request's is (services/sessions.py),
and a token signed out (or expired) closes it with 4001, which the client does not retry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Protocol

from pydantic import BaseModel

from pnyx.config import Settings
from pnyx.domain.types import Handle, Role, SpaceId
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.base import LiveState
from pnyx.live.keys import blob_key, stage_channel
from pnyx.protocol import stage as wire
from pnyx.services import metrics
from pnyx.services.sessions import Sessions
from pnyx.services.spaces import SpaceService

log = logging.getLogger(__name__)


def socket_presence_key(space: SpaceId, handle: Handle) -> str:
    """The blob saying ``handle`` has a stage socket open to ``space`` (on some node):
    present while it exists and is not empty."""
    return blob_key(space, f"stage-socket/{handle}")


class SocketClosed(Exception):
    """The peer went away."""


class StageSocket(Protocol):
    async def send(self, text: str) -> None: ...

    async def receive(self) -> str:
        """The next text message; raises SocketClosed when the peer is gone."""
        ...

    async def close(self, code: int, reason: str = "") -> None: ...


class _Close(Exception):
    def __init__(self, code: wire.CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class StageService:
    def __init__(
        self, settings: Settings, live: LiveState, spaces: SpaceService, sessions: Sessions
    ) -> None:
        self._s = settings
        self._live = live
        self._spaces = spaces
        self._sessions = sessions
        self._sockets: set[StageSocket] = set()
        self._closing = False

    async def close(self) -> None:
        """Shutdown: tell every stage client to reconnect (elsewhere)."""
        self._closing = True
        for sock in list(self._sockets):
            with contextlib.suppress(Exception):
                await sock.close(wire.CloseCode.GOING_AWAY, "server shutting down")

    async def run(self, space: SpaceId, sock: StageSocket) -> None:
        if self._closing:
            await sock.close(wire.CloseCode.GOING_AWAY, "server shutting down")
            return
        self._sockets.add(sock)
        metrics.STAGE_SOCKETS.inc()
        handle: Handle | None = None
        mark = secrets.token_hex(8).encode()  # this socket's, in the presence blob
        try:
            handle, token = await self._authenticate(sock)
            role = await self._admit(space, handle)
            await self._session(space, sock, handle, role, token, mark)
        except _Close as close:
            with contextlib.suppress(Exception):
                await sock.close(close.code, close.reason)
        except SocketClosed:
            pass
        finally:
            self._sockets.discard(sock)
            metrics.STAGE_SOCKETS.dec()
            if handle is not None and not self._closing:
                await self._gone(space, handle, mark)

    async def _receive(self, sock: StageSocket, wait_s: float) -> wire.Auth | wire.Ping | wire.Pong:
        text = await asyncio.wait_for(sock.receive(), wait_s)
        if len(text.encode()) > self._s.ws_max_message_bytes:
            raise _Close(wire.CloseCode.TOO_BIG, "message too big")
        return wire.decode_client(text)

    async def _authenticate(self, sock: StageSocket) -> tuple[Handle, str]:
        try:
            first = await self._receive(sock, self._s.ws_auth_timeout_s)
        except TimeoutError:
            raise _Close(wire.CloseCode.UNAUTHORIZED, "send an auth message first") from None
        except wire.ProtocolError as exc:
            raise _Close(wire.CloseCode.UNAUTHORIZED, exc.message[:120]) from None
        if not isinstance(first, wire.Auth):
            raise _Close(wire.CloseCode.UNAUTHORIZED, "the first message must be auth")
        try:
            return await self._sessions.account(first.token), first.token
        except PnyxError as exc:
            raise _Close(wire.CloseCode.UNAUTHORIZED, exc.message) from None

    async def _recheck(self, token: str) -> None:
        """Close the socket if its token was signed out (or expired) since."""
        try:
            await self._sessions.account(token)
        except PnyxError as exc:
            if exc.kind is ErrorKind.UNAUTHENTICATED:
                raise _Close(wire.CloseCode.UNAUTHORIZED, exc.message) from None

    async def _admit(self, space: SpaceId, handle: Handle) -> Role:
        try:
            room = await self._spaces.room(space)
        except PnyxError:
            raise _Close(wire.CloseCode.NOT_FOUND, "no such space") from None
        if room.is_over:
            raise _Close(wire.CloseCode.SPACE_ENDED, "the space has ended")
        role = room.role_of(handle)
        if not room.on_stage(handle):
            raise _Close(wire.CloseCode.NOT_ON_STAGE, "only the stage uses this socket")
        return role

    async def _present(self, space: SpaceId, handle: Handle, token: str, mark: bytes) -> None:
        """Say ``handle`` is here, until the socket closes, and close it once its token is
        signed out (a task of the session). One task does both: the session cancels the
        others when one ends, and a Redis call cancelled mid-flight is best avoided."""
        ttl = self._s.stage_presence_ttl_s
        step = min(ttl / 3, max(1.0, self._s.session_check_s))
        written = -ttl
        while True:
            now = time.monotonic()
            if now - written >= ttl / 3 - 0.01:
                written = now
                try:
                    await self._live.put_blob(socket_presence_key(space, handle), mark, ttl)
                except PnyxError as exc:  # the live state is away: the next pass tries again
                    log.info(
                        "space %s: presence of @%s not written: %s", space, handle, exc.message
                    )
            await asyncio.sleep(step)
            await self._recheck(token)

    async def _gone(self, space: SpaceId, handle: Handle, mark: bytes) -> None:
        """The socket closed: unless another socket of the member wrote the presence
        since, the stage node stops counting it at its next tick (an empty blob is
        absence; it lapses by itself). Not atomic: a newer socket writing between the
        read and the write is absent until its next write (a third of the TTL)."""
        key = socket_presence_key(space, handle)
        try:
            if await self._live.get_blob(key) != mark:
                return  # a newer socket's (or none ever written: never admitted)
            await self._live.put_blob(key, b"", self._s.stage_presence_ttl_s)
        except PnyxError as exc:
            log.info("space %s: could not mark @%s gone: %s", space, handle, exc.message)

    async def _session(
        self,
        space: SpaceId,
        sock: StageSocket,
        me: Handle,
        role: Role,
        token: str,
        mark: bytes,
    ) -> None:
        async with self._live.subscribe(stage_channel(space)) as events:
            snap = await self._live.get_snapshot(space)
            await sock.send(
                wire.encode(
                    wire.Welcome(
                        space=space,
                        you=me,
                        role=role,
                        version=snap.version if snap else 0,
                        ping_s=self._s.ws_ping_s,
                    )
                )
            )
            last_heard = time.monotonic()

            async def read() -> None:
                nonlocal last_heard
                while True:
                    try:
                        msg = await self._receive(sock, self._s.ws_idle_timeout_s)
                    except TimeoutError:
                        raise _Close(wire.CloseCode.IDLE, "nothing heard from you") from None
                    except wire.ProtocolError as exc:
                        await sock.send(wire.encode(wire.Error(code=exc.code, message=exc.message)))
                        continue
                    last_heard = time.monotonic()
                    if isinstance(msg, wire.Ping):
                        await sock.send(wire.encode(wire.Pong(seq=msg.seq)))

            async def ping() -> None:
                seq = 0
                while True:
                    await asyncio.sleep(self._s.ws_ping_s)
                    if time.monotonic() - last_heard > self._s.ws_idle_timeout_s:
                        raise _Close(wire.CloseCode.IDLE, "nothing heard from you")
                    seq += 1
                    await sock.send(wire.encode(wire.Ping(seq=seq)))

            async def forward() -> None:
                async for raw in events:
                    await sock.send(raw.decode())
                    _closes_for(wire.decode_server(raw), me)

            coros = (read(), ping(), forward(), self._present(space, me, token, mark))
            tasks = [asyncio.create_task(c) for c in coros]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for t in done:
                t.result()  # re-raise _Close / SocketClosed


def _closes_for(msg: BaseModel, me: Handle) -> None:
    """Raise _Close when a forwarded event ends this member's stage session."""
    if isinstance(msg, wire.SpaceEnded):
        raise _Close(wire.CloseCode.SPACE_ENDED, "the space has ended")
    if isinstance(msg, wire.RoleChanged) and msg.handle == me and msg.new is Role.LISTENER:
        raise _Close(wire.CloseCode.NOT_ON_STAGE, "you are back in the audience")
    if isinstance(msg, wire.MemberRemoved) and msg.handle == me:
        raise _Close(wire.CloseCode.NOT_ON_STAGE, "you were removed from the space")
