"""The stage WebSocket: a thin adapter from Starlette to services.stage."""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from pnyx.api.deps import ServicesDep
from pnyx.domain.types import SpaceId
from pnyx.services.stage import SocketClosed

router = APIRouter()


class _Socket:
    def __init__(self, ws: WebSocket) -> None:
        self._ws = ws

    async def send(self, text: str) -> None:
        try:
            await self._ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError) as exc:
            raise SocketClosed from exc

    async def receive(self) -> str:
        message = await self._ws.receive()
        if message["type"] == "websocket.disconnect":
            raise SocketClosed
        text = message.get("text")
        if text is None:
            data = message.get("bytes") or b""
            text = data.decode("utf-8", errors="replace")
        return cast(str, text)

    async def close(self, code: int, reason: str = "") -> None:
        await self._ws.close(code, reason[:120])


@router.websocket("/v1/spaces/{space_id}/stage")
async def stage_socket(ws: WebSocket, space_id: str, services: ServicesDep) -> None:
    """Host, co-hosts and speakers: send ``{"type": "auth", "token": …}`` first."""
    await ws.accept()
    await services.stage.run(SpaceId(space_id), _Socket(ws))
