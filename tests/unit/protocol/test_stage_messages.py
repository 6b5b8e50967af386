from __future__ import annotations

import json

import pytest

from pnyx.domain import events as ev
from pnyx.domain.types import EndReason, Handle, Role, SpeakPolicy
from pnyx.protocol import stage as wire

H = Handle("ann")
B = Handle("bob")

EVENTS: list[ev.Event] = [
    ev.SpaceStarted(at=1.0),
    ev.SpaceEnded(at=2.0, reason=EndReason.HOST_LEFT),
    ev.HandRaised(handle=H),
    ev.HandLowered(handle=H, by=B),
    ev.Invited(handle=H, role=Role.COHOST, by=B),
    ev.InvitationAnswered(handle=H, accepted=False),
    ev.RoleChanged(handle=H, old=Role.LISTENER, new=Role.SPEAKER, by=B),
    ev.Muted(handle=H, by=B),
    ev.Unmuted(handle=H),
    ev.MemberRemoved(handle=H, by=B, blocked=True),
    ev.Pinned(url="https://example.com", by=B),
    ev.SpeakPolicyChanged(policy=SpeakPolicy.NOBODY, by=B),
    ev.HostAway(since=3.0),
    ev.HostBack(),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_has_a_wire_message_that_round_trips(event: ev.Event) -> None:
    msg = wire.from_event(event)
    text = wire.encode(msg)
    doc = json.loads(text)
    assert doc["v"] == wire.VERSION
    assert isinstance(doc["type"], str)
    assert wire.decode_server(text) == msg


def test_every_event_type_is_covered() -> None:
    assert {type(e) for e in EVENTS} == set(ev.Event.__args__)  # type: ignore[attr-defined]


def test_client_messages_decode() -> None:
    assert wire.decode_client('{"type": "auth", "token": "t"}') == wire.Auth(token="t")
    assert wire.decode_client(b'{"type": "pong", "seq": 3, "v": 1}') == wire.Pong(seq=3)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("not json", "Invalid JSON"),
        ('{"type": "launch"}', "type"),
        ('{"seq": 1}', "type"),
        ('{"type": "pong", "seq": 1, "extra": true}', "extra"),
        ('{"type": "pong", "seq": -1}', "seq"),
        ('{"type": "pong", "seq": 1, "v": 2}', "v"),
        (
            '{"type": "welcome", "space": "s", "you": "a", "role": "host", "version": 1, '
            '"ping_s": 1}',
            "type",
        ),
        ("[]", "message"),
    ],
)
def test_bad_client_messages_raise_protocol_error(raw: str, says: str) -> None:
    with pytest.raises(wire.ProtocolError) as err:
        wire.decode_client(raw)
    assert err.value.code == "bad_message"
    assert says in err.value.message
