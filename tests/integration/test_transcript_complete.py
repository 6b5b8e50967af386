"""When a transcript says it is complete (services/captions.py, ``TranscriptService``).

The space's status turns ENDED the moment the host ends it, but the node that ran its
media still recognises and stores the last windows before it lets the stage lease go. A
transcript read in between must not say ``complete`` (an edge keeps a complete one for an
hour), and a node that died must not keep it incomplete for ever: its lease expires.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pnyx.domain import commands as cmd
from pnyx.domain.types import Handle, Limits
from pnyx.live.keys import lease_name
from pnyx.live.memory import MemoryLiveState
from pnyx.services.captions import TranscriptService
from pnyx.services.spaces import NewSpace, SpaceService
from pnyx.store.db import Store
from pnyx.store.records import CueRecord
from tests.support.poll import eventually

HOST = Handle("host")


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[tuple[Store, MemoryLiveState, SpaceService]]:
    store = await Store.open(f"sqlite:///{tmp_path / 'pnyx.db'}")
    await store.create_schema()
    await store.accounts.create(HOST, "host", "x", datetime.now(UTC))
    live = MemoryLiveState()
    try:
        yield store, live, SpaceService(store, live, Limits(), time.time)
    finally:
        await live.close()
        await store.close()


async def test_complete_only_once_the_node_let_the_stage_go(
    parts: tuple[Store, MemoryLiveState, SpaceService],
) -> None:
    store, live, spaces = parts
    transcripts = TranscriptService(store, live)
    space = (await spaces.create(HOST, NewSpace("talk", captions=True))).id
    lease = await live.acquire(lease_name(space), "node-a", 30.0)
    assert lease is not None
    await store.transcripts.add(space, [CueRecord(0.5, 1.5, "host", "first words")])
    assert (await transcripts.transcript(space)).complete is False  # live

    await spaces.execute(space, cmd.EndSpace(HOST))
    # Ended, but node-a still drains its recogniser: the last words are on their way.
    got = await transcripts.transcript(space)
    assert got.complete is False and [c.text for c in got.cues] == ["first words"]
    await store.transcripts.add(space, [CueRecord(2.0, 3.0, "host", "last words")])
    await live.release(lease)
    got = await transcripts.transcript(space)
    assert got.complete is True and [c.text for c in got.cues] == ["first words", "last words"]


async def test_a_dead_nodes_transcript_completes_when_its_lease_expires(
    parts: tuple[Store, MemoryLiveState, SpaceService],
) -> None:
    store, live, spaces = parts
    transcripts = TranscriptService(store, live)
    space = (await spaces.create(HOST, NewSpace("talk", captions=True))).id
    assert await live.acquire(lease_name(space), "node-a", 0.3) is not None  # never released
    await spaces.execute(space, cmd.EndSpace(HOST))
    assert (await transcripts.transcript(space)).complete is False

    async def complete() -> bool:
        return (await transcripts.transcript(space)).complete

    await eventually(complete, 5, "the transcript to complete after the lease expired")
