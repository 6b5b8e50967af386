"""Stage sessions: the WebSocket of a host, co-host or speaker, independent of the web
framework. The API hands us a ``StageSocket``; we authenticate it, check the member is
on stage, forward the space's stage events, keep it alive with pings, and close it with
a code that says why (protocol/stage.py ``CloseCode``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

from pydantic import BaseModel

from pnyx.config import Settings
from pnyx.domain import commands as cmd
from pnyx.domain.types import Handle, Role, SpaceId
from pnyx.errors import PnyxError
from pnyx.live.base import LiveState
from pnyx.live.keys import stage_channel
from pnyx.protocol import stage as wire
from pnyx.services import metrics
from pnyx.services.auth import Tokens
from pnyx.services.spaces import SpaceService

log = logging.getLogger(__name__)


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
        self, settings: Settings, live: LiveState, spaces: SpaceService, tokens: Tokens
    ) -> None:
        self._s = settings
        self._live = live
        self._spaces = spaces
        self._tokens = tokens
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
        ended = False
        try:
            handle = await self._authenticate(sock)
            role = await self._admit(space, handle)
            await self._session(space, sock, handle, role)
        except _Close as close:
            ended = close.code is wire.CloseCode.SPACE_ENDED
            with contextlib.suppress(Exception):
                await sock.close(close.code, close.reason)
        except SocketClosed:
            pass
        finally:
            self._sockets.discard(sock)
            metrics.STAGE_SOCKETS.dec()
            if handle is not None and not ended and not self._closing:
                await self._host_left(space, handle)

    async def _receive(self, sock: StageSocket, wait_s: float) -> wire.Auth | wire.Ping | wire.Pong:
        text = await asyncio.wait_for(sock.receive(), wait_s)
        if len(text.encode()) > self._s.ws_max_message_bytes:
            raise _Close(wire.CloseCode.TOO_BIG, "message too big")
        return wire.decode_client(text)

    async def _authenticate(self, sock: StageSocket) -> Handle:
        try:
            first = await self._receive(sock, self._s.ws_auth_timeout_s)
        except TimeoutError:
            raise _Close(wire.CloseCode.UNAUTHORIZED, "send an auth message first") from None
        except wire.ProtocolError as exc:
            raise _Close(wire.CloseCode.UNAUTHORIZED, exc.message[:120]) from None
        if not isinstance(first, wire.Auth):
            raise _Close(wire.CloseCode.UNAUTHORIZED, "the first message must be auth")
        try:
            return self._tokens.account(first.token)
        except PnyxError as exc:
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
        if role is Role.HOST and room.host_away_since is not None:
            await self._spaces.execute(space, cmd.HostReconnected(handle))
        return role

    async def _host_left(self, space: SpaceId, handle: Handle) -> None:
        try:
            room = await self._spaces.room(space)
            if room.is_live and room.host == handle and room.host_away_since is None:
                await self._spaces.execute(space, cmd.HostDisconnected(handle))
        except PnyxError as exc:
            log.info("space %s: could not mark host away: %s", space, exc.message)

    async def _session(self, space: SpaceId, sock: StageSocket, me: Handle, role: Role) -> None:
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

            tasks = [asyncio.create_task(c) for c in (read(), ping(), forward())]
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
