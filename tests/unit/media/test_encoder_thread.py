"""The program's encoder thread wakes when a part can complete, not for every frame, and
no part waits for a wake-up that never comes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pnyx.media.aac import SAMPLES_PER_AU
from pnyx.media.encoder import Batch, EncoderThread
from pnyx.media.hls import Packager, Part
from pnyx.media.mixer import FRAME_SAMPLES
from tests.support.poll import eventually

from .signals import tone

PART_AUS = 15
FRAMES = 160  # 3.2 s: 150 access units in, the codec's delay behind


async def test_the_thread_wakes_about_twice_a_part_and_every_part_comes_out() -> None:
    thread = EncoderThread(
        "t",
        Packager(program_date_time=datetime(2026, 12, 5, tzinfo=UTC)),
        bit_rate=64_000,
        queue_frames=1000,  # never half full here: only the part rule wakes it
        loop=asyncio.get_running_loop(),
    )
    thread.start()
    parts: list[Part] = []

    def drain() -> int:
        while not thread.messages.empty():
            message = thread.messages.get_nowait()
            if isinstance(message, Batch):
                parts.extend(o for o in message.outputs if isinstance(o, Part))
        return len(parts)

    try:
        for n in range(FRAMES):
            thread.submit(tone(440, FRAME_SAMPLES, 0.3, start=n * FRAME_SAMPLES))
            await asyncio.sleep(0.001)  # a woken thread catches up, as between ticks
        # ffmpeg's AAC encoder holds one access unit back: 149 of the 150 come out
        complete = (FRAMES * FRAME_SAMPLES // SAMPLES_PER_AU - 1) // PART_AUS
        await eventually(lambda: drain() >= complete, 5, "every complete part out")
        assert [p.ref.index for p in parts[:7]] == [0, 1, 2, 3, 4, 5, 0]
        # about twice a part (the frame that may complete it, and the one after), not
        # once for each of its 16 frames
        assert thread.wakeups <= 3 * complete, (thread.wakeups, complete)
    finally:
        thread.abort()
        await thread.join()
