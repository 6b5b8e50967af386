"""The direct RTP path's header-only parse agrees with aiortc's on everything an audio
receiver reads, and refuses what is not RTP."""

from __future__ import annotations

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from pnyx.media.rtp_path import parse_audio_rtp

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
