"""A stage node's media service in-process: SQLite store, memory live state, the real
origin and recorder (in tmp_path); speakers are aiortc peers on this machine's own
addresses."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from pnyx.config import Settings, load_settings
from pnyx.domain import commands as cmd
from pnyx.domain.types import Handle, Limits, Role, SpaceId
from pnyx.live.memory import MemoryLiveState
from pnyx.services.media import MediaService
from pnyx.services.origin import Origin
from pnyx.services.recorder import Recorder
from pnyx.services.spaces import NewSpace, SpaceService
from pnyx.store.db import Store
from tests.integration.media.client import Speaker
from tests.support import webrtc

HOST = Handle("host")


@dataclass
class Stage:
    settings: Settings
    store: Store
    live: MemoryLiveState
    spaces: SpaceService
    origin: Origin
    recordings: Recorder
    media: MediaService
    space: SpaceId
    speakers: list[Speaker]
    harness: list[webrtc.Speaker] = field(default_factory=list)

    async def member(self, handle: str, role: Role = Role.SPEAKER) -> Handle:
        """An account brought on stage by the host."""
        h = Handle(handle)
        await self.store.accounts.create(h, handle, "x", datetime.now(UTC))
        await self.spaces.execute(self.space, cmd.SetRole(HOST, h, role))
        await self.spaces.execute(self.space, cmd.AnswerInvitation(h, accept=True))
        return h

    async def connect(
        self, handle: Handle, freq: float | None, amplitude: float = 0.3, *, hears: bool = True
    ) -> tuple[Speaker, str]:
        """A speaker publishing ``freq`` (None: nothing); returns it and its session id.
        ``hears=False`` publishes a=sendonly: the stage sends it no mix-minus."""
        speaker = Speaker(freq, amplitude, hears=hears)
        self.speakers.append(speaker)
        published = await self.media.publish(self.space, handle, await speaker.offer())
        await speaker.answer(published.answer_sdp)
        return speaker, published.session

    async def connect_track(self, handle: Handle, track: webrtc.ToneTrack) -> webrtc.Speaker:
        """A speaker from the shared harness (tests/support/webrtc.py: switchable tone,
        arrival times of what it hears, ``drop()``), published without HTTP."""
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        speaker = webrtc.Speaker(pc, track, "", httpx.AsyncClient(), own_client=True)
        self.harness.append(speaker)
        pc.addTrack(track)
        await pc.setLocalDescription(await pc.createOffer())
        published = await self.media.publish(self.space, handle, pc.localDescription.sdp)
        answer = RTCSessionDescription(sdp=published.answer_sdp, type="answer")
        await pc.setRemoteDescription(answer)
        return speaker

    def sessions(self) -> dict[Handle, str]:
        return dict(self.media.sessions(self.space))


@pytest.fixture
def stage_settings() -> dict[str, Any]:
    """Settings for the stage fixture on top of the defaults (override by parametrising)."""
    return {}


@pytest.fixture
async def stage(tmp_path: Path, stage_settings: dict[str, Any]) -> AsyncIterator[Stage]:
    overrides = {"data_dir": tmp_path, "publish_connect_timeout_s": 10.0, **stage_settings}
    settings = load_settings(overrides, env={})
    store = await Store.open(f"sqlite:///{tmp_path / 'pnyx.db'}")
    await store.create_schema()
    await store.accounts.create(HOST, "host", "x", datetime.now(UTC))
    live = MemoryLiveState()
    spaces = SpaceService(store, live, Limits(), time.time)
    rec = await spaces.create(HOST, NewSpace("media test", record=True))
    recordings = Recorder(settings, store.recordings, time.time)
    origin = Origin(settings, live)
    media = MediaService(settings, live, spaces, origin, recordings, "node-test", time.time)
    st = Stage(settings, store, live, spaces, origin, recordings, media, rec.id, [])
    await media.ensure_running(rec.id)
    try:
        yield st
    finally:
        for speaker in st.speakers:
            await speaker.close()
        for harnessed in st.harness:
            await harnessed.close()
        await media.close()
        await recordings.close()
        await live.close()
        await store.close()
