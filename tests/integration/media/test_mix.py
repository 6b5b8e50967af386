"""Speakers over real WebRTC (aiortc on this machine's addresses) against the media
service: who hears whom, server-side mute, the limiter, the 20 ms cadence."""

from __future__ import annotations

import asyncio
import gc

import numpy as np
import numpy.typing as npt
import pytest

from pnyx.domain import commands as cmd
from pnyx.domain.types import Role
from pnyx.errors import ErrorKind, PnyxError
from pnyx.media.encoder import EncoderThread
from pnyx.media.mixer import DEFAULT_CEILING, Frame
from tests.integration.media.client import Speaker, tone_level, tone_levels
from tests.integration.media.conftest import HOST, Stage
from tests.support.poll import eventually

HEARD = 0.05  # a tone at amplitude 0.3 arrives at ~0.3: well above this
ABSENT = 0.005  # own voice cancels to rounding error, far below this


def hears(speaker: Speaker, freq: float, seconds: float = 0.4) -> float:
    return tone_level(speaker.last(seconds), freq)


async def heard_for(speaker: Speaker, seconds: float) -> None:
    """Wait until ``speaker`` has received ``seconds`` more audio."""
    speaker.clear()
    frames = int(seconds / 0.02)
    await eventually(lambda: len(speaker.heard) >= frames, 15, "audio back from the stage")


@pytest.fixture
def program(monkeypatch: pytest.MonkeyPatch) -> list[Frame]:
    """Every program frame handed to the encoder, in order."""
    frames: list[Frame] = []
    submit = EncoderThread.submit

    def spy(self: EncoderThread, frame: Frame) -> None:
        frames.append(frame.copy())
        submit(self, frame)

    monkeypatch.setattr(EncoderThread, "submit", spy)
    return frames


def tail(frames: list[Frame], seconds: float) -> npt.NDArray[np.float32]:
    return np.concatenate(frames[-int(seconds / 0.02) :])


async def test_each_speaker_hears_the_others_but_not_themself(stage: Stage) -> None:
    alice, bob = await stage.member("alice"), await stage.member("bob")
    tones = {500: HOST, 800: alice, 1300: bob}
    speakers = {freq: (await stage.connect(handle, freq))[0] for freq, handle in tones.items()}
    for me in speakers.values():
        await heard_for(me, 1.0)
    for freq, me in speakers.items():
        for other in tones:
            level = hears(me, other)
            if other == freq:
                assert level < ABSENT, f"{freq} Hz speaker hears themself at {level:.4f}"
            else:
                assert level > HEARD, f"{freq} Hz speaker hears {other} Hz at {level:.4f}"
    assert set(stage.sessions()) == {HOST, alice, bob}


async def test_a_muted_member_is_in_no_mix(stage: Stage, program: list[Frame]) -> None:
    alice, bob = await stage.member("alice"), await stage.member("bob")
    host, _ = await stage.connect(HOST, 500)
    al, _ = await stage.connect(alice, 800)
    await stage.connect(bob, 1300)
    await heard_for(host, 0.6)
    assert hears(host, 1300) > HEARD
    await stage.spaces.execute(stage.space, cmd.Mute(HOST, bob))  # bob's client keeps sending
    await eventually(lambda: hears(host, 1300, 0.2) < ABSENT, 5, "bob muted")
    await heard_for(host, 0.6)
    await heard_for(al, 0.6)
    assert hears(host, 1300) < ABSENT and hears(al, 1300) < ABSENT
    assert hears(al, 500) > HEARD  # the others still hear each other
    assert tone_level(tail(program, 0.5), 1300) < ABSENT  # nor do listeners hear bob
    assert tone_level(tail(program, 0.5), 800) > HEARD
    # Unmuting (by himself) brings him back.
    await stage.spaces.execute(stage.space, cmd.Unmute(bob, bob))
    await eventually(lambda: hears(host, 1300, 0.2) > HEARD, 5, "bob unmuted")


async def test_demoted_member_is_disconnected(stage: Stage) -> None:
    bob = await stage.member("bob")
    host, _ = await stage.connect(HOST, 500)
    b, _ = await stage.connect(bob, 1300)
    await heard_for(host, 0.4)
    await stage.spaces.execute(stage.space, cmd.SetRole(HOST, bob, Role.LISTENER))
    await eventually(lambda: bob not in stage.sessions(), 5, "bob's session closed")
    await eventually(lambda: b.pc.connectionState in ("closed", "failed"), 10, "bob's pc closed")
    await eventually(lambda: hears(host, 1300, 0.2) < ABSENT, 5, "bob out of the mix")
    await heard_for(host, 0.6)
    assert hears(host, 1300) < ABSENT


async def test_publishing_again_replaces_the_session(stage: Stage) -> None:
    alice = await stage.member("alice")
    host, _ = await stage.connect(HOST, 500)
    first, first_id = await stage.connect(alice, 800)
    await heard_for(host, 0.4)
    _second, second_id = await stage.connect(alice, 900)
    assert first_id != second_id
    # Make-before-break: the new session takes the stage once it carries audio.
    await eventually(lambda: stage.sessions().get(alice) == second_id, 10, "the new session")
    assert set(stage.sessions()) == {HOST, alice}
    await eventually(lambda: first.pc.connectionState in ("closed", "failed"), 10, "old pc")
    await eventually(lambda: hears(host, 900, 0.3) > HEARD, 10, "the new session heard")
    await heard_for(host, 0.6)
    assert hears(host, 800) < ABSENT  # no ghost of the old connection
    assert hears(host, 900) > HEARD


async def test_a_speaker_who_drops_is_removed_and_the_rest_go_on(stage: Stage) -> None:
    alice, bob = await stage.member("alice"), await stage.member("bob")
    host, _ = await stage.connect(HOST, 500)
    al, _ = await stage.connect(alice, 800)
    b, _ = await stage.connect(bob, 1300)
    await heard_for(host, 0.4)
    await b.close()  # gone without a DELETE
    await eventually(lambda: bob not in stage.sessions(), 15, "bob's session removed")
    await heard_for(host, 0.6)
    await heard_for(al, 0.6)
    assert hears(host, 800) > HEARD and hears(al, 500) > HEARD
    assert hears(host, 1300) < ABSENT


async def test_thirteen_full_scale_speakers_never_clip(stage: Stage, program: list[Frame]) -> None:
    handles = [HOST]
    handles += [await stage.member(f"co{i}", Role.COHOST) for i in range(2)]
    handles += [await stage.member(f"sp{i}", Role.SPEAKER) for i in range(10)]
    assert len(handles) == 13
    tones = [300 + 110 * i for i in range(13)]
    # Only the host hears its mix-minus: twelve more for this one process to decode made
    # every voice arrive in bursts (the stage node's own clock kept time).
    for i, (handle, freq) in enumerate(zip(handles, tones, strict=True)):
        await stage.connect(handle, freq, amplitude=1.0, hears=i == 0)

    # A second of the program with all thirteen voices in it at once (on a loaded machine
    # the last speakers connect late): the limiter holds it under its ceiling.
    def all_thirteen() -> list[npt.NDArray[np.float32]]:
        if len(program) < 50:
            return []
        loud = tail(program, 1.0)
        return [loud] if min(tone_levels(loud, tones)) > 0.01 else []

    (loud,) = await eventually(all_thirteen, 20, "a second of the program with every voice in it")
    peak = float(np.abs(loud).max())
    assert peak <= DEFAULT_CEILING + 1e-6, f"program peak {peak}"
    assert peak > 0.5 * DEFAULT_CEILING  # loud, not silenced
    ever = max(float(np.abs(frame).max()) for frame in list(program))
    assert ever <= DEFAULT_CEILING + 1e-6, f"the program's peak {ever}"


# A peer that sends no audio at all is ended after publish_idle_timeout_s (5 s): give this
# one longer, it must stay while the cadence is measured.
@pytest.mark.parametrize("stage_settings", [{"publish_idle_timeout_s": 30.0}])
async def test_the_mix_keeps_its_cadence_while_a_speaker_sends_nothing(stage: Stage) -> None:
    alice = await stage.member("alice")
    await stage.connect(HOST, 500)
    silent, _ = await stage.connect(alice, None)
    await eventually(lambda: silent.pc.connectionState == "connected", 10, "silent connects")
    stats = stage.media.tick_stats(stage.space)
    assert stats is not None
    gc.collect()  # a full collection pauses the whole loop: not now, while we measure
    await asyncio.sleep(0.1)
    loop = asyncio.get_running_loop()
    began, ticks, skipped = loop.time(), stats.ticks, stats.skipped
    await heard_for(silent, 2.0)  # what arrives in 2 s of listening
    elapsed = loop.time() - began
    ticks, skipped = stats.ticks - ticks, stats.skipped - skipped
    # One 20 ms frame per 20 ms of wall time: the silent speaker never holds the mix up.
    assert abs(ticks + skipped - elapsed / 0.02) <= 3, (ticks, skipped, elapsed)
    assert skipped == 0
    late = sorted(list(stats.recent)[-ticks:])
    assert late[len(late) // 2] < 0.005, late[-10:]  # median
    assert hears(silent, 500) > HEARD  # the silent speaker still hears the host
    assert set(stage.sessions()) == {HOST, alice}


@pytest.mark.parametrize("stage_settings", [{"publish_connect_timeout_s": 1.5}])
async def test_a_second_publish_that_never_connects_leaves_the_first_on_stage(
    stage: Stage,
) -> None:
    alice = await stage.member("alice")
    host, _ = await stage.connect(HOST, 500)
    _, first_id = await stage.connect(alice, 800)
    await heard_for(host, 0.4)
    stray = Speaker(900)  # its offer is answered, the answer never applied
    stage.speakers.append(stray)
    second = await stage.media.publish(stage.space, alice, await stray.offer())
    assert second.session != first_id
    await heard_for(host, 0.6)
    assert stage.sessions()[alice] == first_id  # pending: not on the stage
    assert hears(host, 800) > HEARD
    assert stage.media.pending(stage.space) == {alice: second.session}
    await eventually(lambda: not stage.media.pending(stage.space), 10, "the pending one dropped")
    await heard_for(host, 0.6)
    assert stage.sessions()[alice] == first_id
    assert hears(host, 800) > HEARD and hears(host, 900) < ABSENT


async def test_a_pending_session_can_be_deleted(stage: Stage) -> None:
    alice = await stage.member("alice")
    _, first_id = await stage.connect(alice, 800)
    stray = Speaker(900)
    stage.speakers.append(stray)
    pending = await stage.media.publish(stage.space, alice, await stray.offer())
    assert stage.media.pending(stage.space) == {alice: pending.session}
    await stage.media.unpublish(stage.space, alice, pending.session)
    assert stage.sessions() == {alice: first_id}
    assert stage.media.pending(stage.space) == {}
    with pytest.raises(PnyxError) as err:
        await stage.media.unpublish(stage.space, alice, pending.session)
    assert err.value.kind is ErrorKind.NOT_FOUND
