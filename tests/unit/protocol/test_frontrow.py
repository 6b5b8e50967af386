from __future__ import annotations

import pytest

from pnyx.protocol import frontrow
from pnyx.protocol.frontrow import BadMessage


def test_a_message_round_trips() -> None:
    data = frontrow.encode(7, 123_456_000, [b"\x01\x02", b"\xff" * 300])
    msg = frontrow.decode(data)
    assert (msg.seq, msg.media_time, msg.frames) == (7, 123_456_000, (b"\x01\x02", b"\xff" * 300))
    assert msg.end_time == 123_456_000 + 2 * 960
    assert len(data) == frontrow.HEADER_BYTES + 2 + 2 + 2 + 300


def test_the_sequence_wraps() -> None:
    assert frontrow.decode(frontrow.encode(2**32 + 5, 0, [b"x"])).seq == 5


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01\x01",
        frontrow.encode(1, 0, [b"abc"])[:-1],  # truncated frame
        frontrow.encode(1, 0, [b"abc"]) + b"!",  # trailing bytes
        b"\x02" + frontrow.encode(1, 0, [b"abc"])[1:],  # another version
        b"\x01\x00" + frontrow.encode(1, 0, [b"abc"])[2:],  # no frames
    ],
)
def test_bad_messages_are_refused(data: bytes) -> None:
    with pytest.raises(BadMessage):
        frontrow.decode(data)


def test_encode_checks_its_input() -> None:
    with pytest.raises(ValueError, match="1 to 255 frames"):
        frontrow.encode(0, 0, [])
    with pytest.raises(ValueError, match="media_time"):
        frontrow.encode(0, -1, [b"x"])
    with pytest.raises(ValueError, match="1 to 65535 bytes"):
        frontrow.encode(0, 0, [b""])
