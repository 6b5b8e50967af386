"""Random command sequences (seeded, reproducible) against the invariants of a room.

Every command is either accepted (version + 1, at least one event; or a Tick that
changes nothing) or rejected with a RuleViolation that leaves the room as it was. After
every step the room keeps its invariants and survives a JSON round trip."""

from __future__ import annotations

import copy
import json
import random
from collections import Counter

import pytest

from pnyx.domain.codec import room_from_json, room_to_json
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
from pnyx.domain.events import Event
from pnyx.domain.room import Room
from pnyx.domain.rules import decide, new_room
from pnyx.domain.types import STAGE_ROLES, Handle, Limits, Role, SpaceStatus, SpeakPolicy

from .builders import HOST, SPACE

LIMITS = Limits(max_cohosts=2, max_speakers=3, host_grace_s=40.0, max_pin_len=40)
PEOPLE = [HOST, *(Handle(f"p{n}") for n in range(11))]
URLS = [None, "https://example.org/a", "http://example.org/b", "ftp://nope", "https://" + "x" * 40]


def _command(rng: random.Random) -> Command:
    actor = HOST if rng.random() < 0.3 else rng.choice(PEOPLE)
    target = rng.choice(PEOPLE)
    other = target if rng.random() < 0.5 else actor
    makers: list[tuple[int, Command]] = [
        (8, RaiseHand(actor, followed_by_host=rng.random() < 0.5)),
        (14, SetRole(actor, target, rng.choice(list(Role)))),
        (8, AnswerInvitation(actor, accept=rng.random() < 0.8)),
        (3, LowerHand(actor, other)),
        (3, Mute(actor, other)),
        (3, Unmute(actor, actor if rng.random() < 0.8 else target)),
        (1, RemoveMember(actor, target, block=rng.random() < 0.5)),
        (2, Pin(actor, rng.choice(URLS))),
        (2, SetSpeakPolicy(actor, rng.choice(list(SpeakPolicy)))),
        (1, HostDisconnected(actor)),
        (2, HostReconnected(actor)),
        (4, StartSpace(actor)),
        (1, EndSpace(actor)),
        (3, Tick()),
    ]
    commands = [command for _, command in makers]
    return rng.choices(commands, weights=[weight for weight, _ in makers])[0]


def check_invariants(room: Room) -> None:
    handles = [m.handle for m in room.members]
    assert len(handles) == len(set(handles))
    assert room.members[0].handle == room.host
    assert room.members[0].role is Role.HOST
    assert room.count(Role.HOST) == 1
    assert all(m.role in STAGE_ROLES for m in room.members)
    assert room.count(Role.COHOST) <= room.limits.max_cohosts
    assert room.count(Role.SPEAKER) <= room.limits.max_speakers
    hands = [h.handle for h in room.hands]
    invited = [i.handle for i in room.invitations]
    assert len(hands) == len(set(hands))
    assert len(invited) == len(set(invited))
    for handle in (*hands, *invited):
        assert not room.on_stage(handle)
        assert handle not in room.removed
    assert all(i.role in (Role.SPEAKER, Role.COHOST) for i in room.invitations)
    assert not room.removed & set(handles)
    assert [h.raised_at for h in room.hands] == sorted(h.raised_at for h in room.hands)
    if room.status is SpaceStatus.SCHEDULED:
        assert room.started_at is None and not room.hands and not room.invitations
        assert room.host_away_since is None
    if room.status is SpaceStatus.LIVE:
        assert room.started_at is not None and room.ended_at is None
    if room.is_over:
        assert room.ended_at is not None and room.end_reason is not None
        assert not room.hands and not room.invitations and room.host_away_since is None
    assert room_from_json(json.loads(json.dumps(room_to_json(room)))) == room


def walk(seed: int, steps: int, seen: Counter[str]) -> None:
    rng = random.Random(seed)
    now = 10_000.0
    room: Room | None = None
    for _ in range(steps):
        if room is None or (room.is_over and rng.random() < 0.2):
            room = new_room(
                SPACE,
                HOST,
                "walk",
                scheduled=rng.random() < 0.2,
                speak_policy=SpeakPolicy.EVERYONE,
                limits=LIMITS,
                now=now,
            )
            check_invariants(room)
        now += rng.choice([0.0, 0.5, 3.0, 20.0])
        command = _command(rng)
        before = copy.deepcopy(room)
        try:
            decision = decide(room, command, now)
        except RuleViolation as exc:
            assert room == before
            seen[f"rejected:{exc.kind.value}:{exc.code}"] += 1
            continue
        events: tuple[Event, ...] = decision.events
        if events:
            assert decision.room.version == room.version + 1
            assert decision.room != room
        else:
            assert isinstance(command, Tick)
            assert decision.room is room
        seen[f"accepted:{type(command).__name__}"] += 1
        seen.update(f"event:{type(e).__name__}" for e in events)
        room = decision.room
        check_invariants(room)


@pytest.mark.parametrize("seed", range(20))
def test_random_walk_keeps_the_invariants(seed: int) -> None:
    seen: Counter[str] = Counter()
    walk(seed, 400, seen)
    changes = sum(n for key, n in seen.items() if key.startswith("event:"))
    assert changes >= 30, seen  # the walk does get somewhere


def test_random_walks_reach_every_event_and_most_refusals() -> None:
    seen: Counter[str] = Counter()
    for seed in range(100, 130):
        walk(seed, 400, seen)
    events = {k.split(":", 1)[1] for k in seen if k.startswith("event:")}
    assert events == {
        "SpaceStarted",
        "SpaceEnded",
        "HandRaised",
        "HandLowered",
        "Invited",
        "InvitationAnswered",
        "RoleChanged",
        "Muted",
        "Unmuted",
        "MemberRemoved",
        "Pinned",
        "SpeakPolicyChanged",
        "HostAway",
        "HostBack",
    }
    codes = {k.rsplit(":", 1)[1] for k in seen if k.startswith("rejected:")}
    for code in ("stage_full", "cohosts_full", "host_only", "moderators_only", "space_over"):
        assert code in codes, sorted(codes)
