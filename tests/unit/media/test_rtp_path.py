"""The direct RTP path's header-only parse agrees with aiortc's on everything an audio
receiver reads, and refuses what is not RTP."""

from __future__ import annotations

import struct

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from pnyx.media.rtp_path import _ExtensionHeader, parse_audio_rtp

ABS = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"

EXTENSIONS = HeaderExtensionsMap()
EXTENSIONS.configure(
    RTCRtpParameters(
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
            RTCRtpHeaderExtensionParameters(
                id=2, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"
            ),
        ]
    )
)


def packet(*, extensions: bool, csrc: list[int], padding: int, marker: int) -> bytes:
    p = RtpPacket(
        payload_type=111,
        marker=marker,
        sequence_number=65_535,
        timestamp=0xFFFF_FF00,
        ssrc=0xDEAD_BEEF,
        payload=bytes(range(160)),
    )
    p.csrc = csrc
    p.padding_size = padding
    if extensions:
        p.extensions.mid = "0"
        p.extensions.audio_level = (True, 30)
    return p.serialize(EXTENSIONS)


@pytest.mark.parametrize("extensions", [False, True])
@pytest.mark.parametrize("csrc", [[], [1, 2, 3]])
@pytest.mark.parametrize("padding", [0, 4])
@pytest.mark.parametrize("marker", [0, 1])
def test_the_header_only_parse_agrees_with_aiortcs(
    extensions: bool, csrc: list[int], padding: int, marker: int
) -> None:
    data = packet(extensions=extensions, csrc=csrc, padding=padding, marker=marker)
    ours, theirs = parse_audio_rtp(data), RtpPacket.parse(data, EXTENSIONS)
    fields = ("payload_type", "marker", "sequence_number", "timestamp", "ssrc", "payload")
    assert [getattr(ours, f) for f in fields] == [getattr(theirs, f) for f in fields]
    assert ours.padding_size == theirs.padding_size == padding


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80\x6f", bytes(12), b"\x90" + bytes(11), b"\xa0" + bytes(10) + b"\xff"],
    ids=["empty", "short", "version 0", "extension cut off", "padding past the header"],
)
def test_what_is_not_rtp_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="RTP"):
        parse_audio_rtp(data)


SENT_MAPS = {
    "mid and send time": [(1, "urn:ietf:params:rtp-hdrext:sdes:mid"), (3, ABS)],
    "send time only": [(3, ABS)],
    "mid only": [(4, "urn:ietf:params:rtp-hdrext:sdes:mid")],
    "none": [],
    "two-byte ids": [(1, "urn:ietf:params:rtp-hdrext:sdes:mid"), (15, ABS)],
}


@pytest.mark.parametrize("negotiated", SENT_MAPS.values(), ids=SENT_MAPS.keys())
@pytest.mark.parametrize("mid", ["0", "a-mid-longer-than-16"])
def test_the_sent_extensions_are_the_bytes_aiortc_would_write(
    negotiated: list[tuple[int, str]], mid: str
) -> None:
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=u) for i, u in negotiated]
        )
    )
    header = _ExtensionHeader(extensions._HeaderExtensionsMap__ids, mid)  # type: ignore[attr-defined]
    for abs_send_time in (0, 0x123456, 0xFFFFFF):
        theirs = RtpPacket(payload_type=111, marker=1, sequence_number=7, timestamp=9, ssrc=5)
        theirs.payload = b"opus"
        theirs.extensions.mid = mid
        theirs.extensions.abs_send_time = abs_send_time
        first = 0x90 if header.pack(b"\0\0\0") else 0x80
        ours = (
            struct.pack("!BBHII", first, 0x80 | 111, 7, 9, 5)
            + header.pack(abs_send_time.to_bytes(3, "big"))
            + b"opus"
        )
        assert ours == theirs.serialize(extensions)
