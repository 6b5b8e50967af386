"""A space's status machine, the status gate on every command, host presence and the
grace period."""

from __future__ import annotations

from typing import get_args

import pytest

from pnyx.domain.commands import (
    AnswerInvitation,
    Command,
    EndSpace,
    HostDisconnected,
    HostReconnected,
    LowerHand,
    Mute,
    Pin,
    RaiseHand,
    RemoveMember,
    SetRole,
    SetSpeakPolicy,
    StartSpace,
    Tick,
    Unmute,
)
from pnyx.domain.errors import RuleViolation
from pnyx.domain.events import (
    HandRaised,
    HostAway,
    HostBack,
    Muted,
    Pinned,
    RoleChanged,
    SpaceEnded,
    SpaceStarted,
)
from pnyx.domain.room import Member, Room
from pnyx.domain.rules import decide, new_room
from pnyx.domain.rules.lifecycle import LIVE_ONLY, TRANSITIONS
from pnyx.domain.types import EndReason, Handle, Limits, Role, SpaceStatus, SpeakPolicy
from pnyx.errors import ErrorKind

from .builders import CO, HOST, LIS, LIS2, NOW, SPACE, SPK, T0, accept, make_room, reject

FORBIDDEN, CONFLICT, INVALID = ErrorKind.FORBIDDEN, ErrorKind.CONFLICT, ErrorKind.INVALID

# One of every command but Tick, each acceptable in a suitable live room.
EVERY_COMMAND: list[Command] = [
    StartSpace(HOST),
    EndSpace(HOST),
    RaiseHand(LIS),
    LowerHand(LIS, LIS),
    SetRole(HOST, LIS, Role.SPEAKER),
    AnswerInvitation(LIS, accept=True),
    Mute(HOST, SPK),
    Unmute(SPK, SPK),
    RemoveMember(HOST, LIS),
    Pin(HOST, "https://example.org/"),
    SetSpeakPolicy(HOST, SpeakPolicy.NOBODY),
    HostDisconnected(HOST),
    HostReconnected(HOST),
]


def test_every_command_type_is_covered() -> None:
    assert {type(c) for c in EVERY_COMMAND} == set(get_args(Command)) - {Tick}


# -- creating ------------------------------------------------------------------------


def test_new_live_room() -> None:
    limits = Limits(max_speakers=3)
    room = new_room(
        SPACE,
        HOST,
        "  Town hall ",
        scheduled=False,
        speak_policy=SpeakPolicy.FOLLOWED,
        limits=limits,
        now=T0,
    )
    assert room == Room(
        id=SPACE,
        host=HOST,
        title="Town hall",
        status=SpaceStatus.LIVE,
        speak_policy=SpeakPolicy.FOLLOWED,
        limits=limits,
        members=(Member(HOST, Role.HOST),),
        started_at=T0,
        version=1,
    )


def test_new_scheduled_room() -> None:
    room = new_room(
        SPACE,
        HOST,
        "Later",
        scheduled=True,
        speak_policy=SpeakPolicy.EVERYONE,
        limits=Limits(),
        now=T0,
    )
    assert room.status is SpaceStatus.SCHEDULED
    assert room.started_at is None
    assert room.members == (Member(HOST, Role.HOST),)
    assert room.version == 1


@pytest.mark.parametrize("title", ["", "   ", "abcdef", " abcdefg "])
def test_new_room_refuses_a_bad_title(title: str) -> None:
    with pytest.raises(RuleViolation) as info:
        new_room(
            SPACE,
            HOST,
            title,
            scheduled=False,
            speak_policy=SpeakPolicy.EVERYONE,
            limits=Limits(max_title_len=5),
            now=T0,
        )
    assert (info.value.kind, info.value.code) == (INVALID, "bad_title")


def test_new_room_title_at_the_limit() -> None:
    room = new_room(
        SPACE,
        HOST,
        " abcde ",
        scheduled=False,
        speak_policy=SpeakPolicy.EVERYONE,
        limits=Limits(max_title_len=5),
        now=T0,
    )
    assert room.title == "abcde"


# -- the status machine ----------------------------------------------------------------


def test_transition_table() -> None:
    assert dict(TRANSITIONS) == {
        (SpaceStatus.SCHEDULED, StartSpace): (SpaceStatus.LIVE, None),
        (SpaceStatus.SCHEDULED, EndSpace): (SpaceStatus.CANCELLED, EndReason.CANCELLED),
        (SpaceStatus.SCHEDULED, Tick): (SpaceStatus.CANCELLED, EndReason.EXPIRED),
        (SpaceStatus.LIVE, EndSpace): (SpaceStatus.ENDED, EndReason.HOST_ENDED),
        (SpaceStatus.LIVE, Tick): (SpaceStatus.ENDED, EndReason.HOST_LEFT),
    }


def test_host_starts_a_scheduled_space() -> None:
    room = make_room(status=SpaceStatus.SCHEDULED)
    d = accept(room, StartSpace(HOST))
    assert d.room.status is SpaceStatus.LIVE
    assert d.room.started_at == NOW
    assert d.events == (SpaceStarted(at=NOW),)


def test_only_the_host_starts() -> None:
    reject(make_room(status=SpaceStatus.SCHEDULED), StartSpace(LIS), FORBIDDEN, "host_only")
    reject(make_room(cohosts=[CO]), StartSpace(CO), FORBIDDEN, "host_only")


def test_starting_a_live_space_is_a_conflict() -> None:
    reject(make_room(), StartSpace(HOST), CONFLICT, "already_live")


def test_host_ends_a_live_space() -> None:
    room = make_room(
        cohosts=[CO],
        speakers=[SPK],
        hands=[LIS],
        invitations=[(LIS2, Role.SPEAKER)],
        pinned="https://example.org/",
    )
    d = accept(room, EndSpace(HOST))
    assert d.events == (SpaceEnded(at=NOW, reason=EndReason.HOST_ENDED),)
    ended = d.room
    assert ended.status is SpaceStatus.ENDED
    assert (ended.ended_at, ended.end_reason) == (NOW, EndReason.HOST_ENDED)
    assert ended.hands == () and ended.invitations == ()
    assert ended.members == room.members  # kept for the record
    assert ended.started_at == room.started_at
    assert ended.pinned == room.pinned


def test_host_cancels_a_scheduled_space() -> None:
    d = accept(make_room(status=SpaceStatus.SCHEDULED), EndSpace(HOST))
    assert d.room.status is SpaceStatus.CANCELLED
    assert (d.room.ended_at, d.room.end_reason) == (NOW, EndReason.CANCELLED)
    assert d.events == (SpaceEnded(at=NOW, reason=EndReason.CANCELLED),)


@pytest.mark.parametrize("actor", [CO, SPK, LIS])
def test_only_the_host_ends(actor: Handle) -> None:
    room = make_room(cohosts=[CO], speakers=[SPK])
    reject(room, EndSpace(actor), FORBIDDEN, "host_only")


def _over(status: SpaceStatus) -> Room:
    start = SpaceStatus.LIVE if status is SpaceStatus.ENDED else SpaceStatus.SCHEDULED
    room = make_room(status=start, cohosts=[CO] if start is SpaceStatus.LIVE else [])
    return decide(room, EndSpace(HOST), NOW).room


@pytest.mark.parametrize("status", [SpaceStatus.ENDED, SpaceStatus.CANCELLED])
@pytest.mark.parametrize("command", EVERY_COMMAND, ids=lambda c: type(c).__name__)
def test_nothing_happens_in_a_space_that_is_over(status: SpaceStatus, command: Command) -> None:
    room = _over(status)
    assert room.status is status
    reject(room, command, CONFLICT, "space_over", now=NOW + 1)


@pytest.mark.parametrize("status", [SpaceStatus.ENDED, SpaceStatus.CANCELLED])
def test_tick_in_a_space_that_is_over_is_a_no_op(status: SpaceStatus) -> None:
    room = _over(status)
    d = decide(room, Tick(), NOW + 10_000)
    assert d.room is room
    assert d.events == ()


LIVE_ONLY_COMMANDS = [c for c in EVERY_COMMAND if type(c) in LIVE_ONLY]


def test_live_only_commands() -> None:
    names = {t.__name__ for t in LIVE_ONLY}
    assert names == {
        "RaiseHand",
        "LowerHand",
        "SetRole",
        "AnswerInvitation",
        "Mute",
        "Unmute",
        "HostDisconnected",
        "HostReconnected",
    }


@pytest.mark.parametrize("command", LIVE_ONLY_COMMANDS, ids=lambda c: type(c).__name__)
def test_stage_commands_need_a_live_space(command: Command) -> None:
    room = make_room(
        status=SpaceStatus.SCHEDULED,
        hands=[LIS],
        invitations=[(LIS, Role.SPEAKER)],
        host_away_since=T0,
    )
    reject(room, command, CONFLICT, "not_live")


def test_a_scheduled_space_can_be_prepared() -> None:
    room = make_room(status=SpaceStatus.SCHEDULED)
    room = accept(room, Pin(HOST, "https://example.org/agenda")).room
    room = accept(room, SetSpeakPolicy(HOST, SpeakPolicy.FOLLOWED)).room
    room = accept(room, RemoveMember(HOST, LIS, block=True)).room
    assert room.status is SpaceStatus.SCHEDULED
    assert room.pinned == "https://example.org/agenda"
    assert room.speak_policy is SpeakPolicy.FOLLOWED
    assert LIS in room.removed


# -- host presence and the grace period ---------------------------------------------------


def test_host_disconnects_and_reconnects() -> None:
    room = make_room()
    d = accept(room, HostDisconnected(HOST), now=NOW)
    assert d.room.host_away_since == NOW
    assert d.events == (HostAway(since=NOW),)
    reject(d.room, HostDisconnected(HOST), CONFLICT, "host_already_away", now=NOW + 5)
    back = accept(d.room, HostReconnected(HOST), now=NOW + 5)
    assert back.room.host_away_since is None
    assert back.events == (HostBack(),)
    reject(back.room, HostReconnected(HOST), CONFLICT, "host_not_away")


@pytest.mark.parametrize("command", [HostDisconnected(CO), HostReconnected(CO)])
def test_only_the_host_reports_presence(command: Command) -> None:
    reject(make_room(cohosts=[CO], host_away_since=T0), command, FORBIDDEN, "host_only")


GRACE = 30.0
AWAY = 2_000.0


def _away_room() -> Room:
    return make_room(
        cohosts=[CO], hands=[LIS], limits=Limits(host_grace_s=GRACE), host_away_since=AWAY
    )


@pytest.mark.parametrize("now", [AWAY, AWAY + 1, AWAY + GRACE - 0.001])
def test_tick_within_the_grace_period_changes_nothing(now: float) -> None:
    room = _away_room()
    d = decide(room, Tick(), now)
    assert d.room is room
    assert d.events == ()


@pytest.mark.parametrize("now", [AWAY + GRACE, AWAY + GRACE + 0.001, AWAY + 10 * GRACE])
def test_tick_after_the_grace_period_ends_the_space(now: float) -> None:
    room = _away_room()
    d = accept(room, Tick(), now=now)
    assert d.events == (SpaceEnded(at=now, reason=EndReason.HOST_LEFT),)
    assert d.room.status is SpaceStatus.ENDED
    assert (d.room.ended_at, d.room.end_reason) == (now, EndReason.HOST_LEFT)
    assert d.room.hands == ()
    assert d.room.host_away_since is None


@pytest.mark.parametrize("status", [SpaceStatus.LIVE, SpaceStatus.SCHEDULED])
def test_tick_with_the_host_present_changes_nothing(status: SpaceStatus) -> None:
    room = make_room(status=status)
    d = decide(room, Tick(), NOW + 1e9)
    assert d.room is room
    assert d.events == ()


def test_cohosts_keep_the_space_running_while_the_host_is_away() -> None:
    room = make_room(cohosts=[CO], speakers=[SPK], hands=[LIS], host_away_since=NOW)
    room = accept(room, SetRole(CO, LIS, Role.SPEAKER), now=NOW + 1).room
    room = accept(room, Mute(CO, SPK), now=NOW + 2).room
    room = accept(room, Pin(CO, "https://example.org/"), now=NOW + 3).room
    room = accept(room, RaiseHand(LIS2), now=NOW + 4).room
    assert room.role_of(LIS) is Role.SPEAKER
    assert room.host_away_since == NOW
    reject(room, EndSpace(CO), FORBIDDEN, "host_only", now=NOW + 5)
    reject(room, SetRole(CO, SPK, Role.COHOST), FORBIDDEN, "host_only", now=NOW + 5)


def test_the_host_coming_back_stops_the_clock() -> None:
    room = _away_room()
    room = accept(room, HostReconnected(HOST), now=AWAY + GRACE - 1).room
    d = decide(room, Tick(), AWAY + 100 * GRACE)
    assert d.room is room


def test_a_whole_space() -> None:
    room = new_room(
        SPACE,
        HOST,
        "Launch",
        scheduled=True,
        speak_policy=SpeakPolicy.EVERYONE,
        limits=Limits(),
        now=T0,
    )
    steps: list[tuple[Command, type]] = [
        (StartSpace(HOST), SpaceStarted),
        (RaiseHand(LIS), HandRaised),
        (SetRole(HOST, LIS, Role.SPEAKER), RoleChanged),
        (Mute(HOST, LIS), Muted),
        (Pin(HOST, "https://example.org/"), Pinned),
        (EndSpace(HOST), SpaceEnded),
    ]
    for n, (command, event) in enumerate(steps, start=1):
        d = accept(room, command, now=T0 + n)
        assert type(d.events[0]) is event
        room = d.room
    assert room.version == 1 + len(steps)
    assert room.status is SpaceStatus.ENDED
    assert room.members == (Member(HOST, Role.HOST), Member(LIS, Role.SPEAKER, muted=True))
