"""The stage node's per-packet RTP path through aiortc's transports, without its
per-packet tasks and queues.

aiortc (1.16) moves every RTP packet through several asyncio hops: a received datagram is
parsed as STUN first (and fails), queued by aioice, handed to the DTLS transport's reading
task, and awaited down to the receiver; a sent one is awaited from the track by one task
per speaker, then down through three more coroutines to the socket. With thirteen
speakers that is 1,300 packets a second, and those hops were most of the event loop's
time (docs/benchmarks.md). Everything aiortc does *with* an audio packet is kept, with
aiortc's own objects: SRTP, RTP routing, the receiver's statistics (its RTCP receiver
reports), the jitter buffer, the negotiated header extensions, the sender's RTCP sender
reports, ICE consent and DTLS. The hops go, and the per-packet calls an audio packet
does not need:

* **Receiving** (:func:`receive_directly`): an SRTP datagram (first byte 128 to 191) on the
  nominated pair skips the STUN parse and the queues: it is unprotected, parsed (its
  header only: :func:`parse_audio_rtp`), routed
  and handled right in ``datagram_received``: what the receiver's ``_handle_rtp_packet``
  does for audio (statistics, jitter buffer, decoder queue) in one plain call
  (:class:`_AudioReceive`; its awaits are for video's NACK and REMB feedback, which an
  audio receiver does not have: checked when installed). STUN, DTLS and RTCP datagrams
  take aiortc's path as before.
* **Sending** (:class:`DirectSender`): the mixer's packets for a speaker are sent by one
  synchronous call per tick (:meth:`DirectSender.send`), from the callback the mix clock
  already schedules on the loop, laid out as aiortc's serialisation would (the
  negotiated MID and send-time extensions: :class:`_ExtensionHeader`); aiortc's sending
  task for that speaker is replaced by one that only waits to be stopped. The sender's
  counters that its RTCP sender reports carry are kept up to date.

This reaches into aiortc's private attributes; :func:`check` says which are missing, and
ingest sessions refuse to start on an aiortc without them (aiortc is pinned in the lock;
the tests exercise this path end to end).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Iterable
from typing import Any

import pylibsrtp
from aiortc import RTCPeerConnection, clock
from aiortc.codecs import is_rtx
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import RtpPacket
from aiortc.utils import random16, random32, uint16_add, uint32_add

log = logging.getLogger(__name__)

_RECEIVER = ("_RTCRtpReceiver__nack_generator", "_RTCRtpReceiver__remote_bitrate_estimator")
_RECEIVER_STATE = (
    "_enabled",
    "_RTCRtpReceiver__codecs",
    "_RTCRtpReceiver__remote_streams",
    "_RTCRtpReceiver__active_ssrc",
    "_RTCRtpReceiver__jitter_buffer",
    "_RTCRtpReceiver__decoder_thread",
    "_RTCRtpReceiver__decoder_queue",
)
_DTLS = ("_rx_srtp", "_tx_srtp", "_rtp_router", "_rtp_header_extensions_map", "transport")
_SENDER = (
    "_ssrc",
    "_RTCRtpSender__mid",
    "_RTCRtpSender__rtp_header_extensions_map",
    "_RTCRtpSender__rtp_started",
    "_RTCRtpSender__rtp_exited",
    "_RTCRtpSender__ntp_timestamp",
    "_RTCRtpSender__rtp_timestamp",
    "_RTCRtpSender__octet_count",
    "_RTCRtpSender__packet_count",
)


def _missing(obj: Any, names: Iterable[str]) -> list[str]:
    return [f"{type(obj).__name__}.{n}" for n in names if not hasattr(obj, n)]


def check(pc: RTCPeerConnection) -> None:
    """Raise RuntimeError if this aiortc lacks what the direct path uses."""
    missing: list[str] = []
    for transceiver in pc.getTransceivers():
        missing += _missing(transceiver.receiver, _RECEIVER + _RECEIVER_STATE)
        missing += _missing(transceiver.sender, _SENDER)
        missing += _missing(transceiver.receiver.transport, _DTLS)
    if missing:
        raise RuntimeError(f"aiortc has changed: no {', '.join(missing)} (media/rtp_path.py)")


def _is_srtp(data: bytes) -> bool:
    """RTP or RTCP under SRTP (RFC 7983: first byte 128 to 191); never STUN or DTLS."""
    return len(data) > 1 and 127 < data[0] < 192


def _is_rtcp(data: bytes) -> bool:
    return 191 < data[1] < 209  # aiortc's rule (rtp.is_rtcp)


_HEADER = struct.Struct("!BBHII")


def parse_audio_rtp(data: bytes) -> RtpPacket:
    """An RTP packet (RFC 3550) without its header extensions parsed: what an audio
    receiver reads (payload type, marker, sequence number, timestamp, SSRC, payload).
    aiortc's own parse decodes every header extension too, at several times the cost;
    an audio receiver uses none of them. ValueError for anything that is not RTP."""
    if len(data) < 12:
        raise ValueError("RTP packet shorter than its header")
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != 2:
        raise ValueError("not RTP version 2")
    start = 12 + 4 * (first & 0x0F)  # past the CSRCs
    if first & 0x10:  # a header extension: its length is in 32-bit words
        if len(data) < start + 4:
            raise ValueError("RTP header extension truncated")
        start += 4 + 4 * int.from_bytes(data[start + 2 : start + 4], "big")
    end = len(data)
    padding = data[-1] if first & 0x20 else 0
    end -= padding
    if start > end:
        raise ValueError("RTP packet shorter than its header and padding")
    packet = RtpPacket(
        payload_type=second & 0x7F,
        marker=second >> 7,
        sequence_number=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=data[start:end],
    )
    packet.padding_size = padding
    return packet


def receive_directly(pc: RTCPeerConnection) -> None:
    """Give ``pc``'s audio receivers their SRTP packets straight from the socket (call
    after setLocalDescription: the ICE sockets exist)."""
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        if transceiver.kind != "audio" or any(getattr(receiver, n) is not None for n in _RECEIVER):
            continue  # a receiver that may await feedback keeps aiortc's path
        dtls = receiver.transport
        connection = dtls.transport._connection
        queued = connection.data_received  # aioice's: onto the queue dtls reads

        def data_received(
            data: bytes,
            component: int,
            *,
            dtls: Any = dtls,
            queued: Any = queued,
            handlers: dict[Any, _AudioReceive] = {},  # noqa: B006 (this receiver's, by design)
        ) -> None:
            srtp = dtls._rx_srtp
            if srtp is None or not _is_srtp(data) or _is_rtcp(data):
                queued(data, component)
                return
            dtls._RTCDtlsTransport__rx_bytes += len(data)  # its getStats, as aiortc keeps it
            dtls._RTCDtlsTransport__rx_packets += 1
            try:
                packet = parse_audio_rtp(srtp.unprotect(data))
            except (pylibsrtp.Error, ValueError):
                return  # as aiortc: a packet that does not decrypt or parse is dropped
            target = dtls._rtp_router.route_rtp(packet)
            if target is None:
                return
            handle = handlers.get(target)
            if handle is None:
                handle = handlers[target] = _AudioReceive(target)
            handle(packet)

        connection.data_received = data_received  # type: ignore[method-assign]
        for protocol in connection._protocols:
            _skip_stun_parse(protocol)


class _AudioReceive:
    """What aiortc's ``_handle_rtp_packet`` does with an audio packet, in one plain call:
    the receiver's statistics (its RTCP receiver reports), the known sources, the jitter
    buffer, and the released frame to the decoder queue (the mapped timestamp). Not done per
    packet: the clock reads only the bitrate estimator wants (audio has none) and the
    codec-name dispatch of depayloading (audio payloads are the frame). The known sources'
    last-seen time is refreshed every :data:`_SOURCE_EVERY` packets (half a second at 20 ms
    a packet; aiortc reports a source for 10 s after it was seen). Anything else (RTX) takes
    aiortc's own path."""

    def __init__(self, receiver: Any) -> None:
        self._receiver = receiver
        self._codecs: dict[int, Any] = receiver._RTCRtpReceiver__codecs
        self._streams: dict[int, StreamStatistics] = receiver._RTCRtpReceiver__remote_streams
        self._sources: dict[int, Any] = receiver._RTCRtpReceiver__active_ssrc
        self._count = 0

    def __call__(self, packet: RtpPacket) -> None:
        receiver = self._receiver
        if not receiver._enabled:
            return
        codec = self._codecs.get(packet.payload_type)
        if codec is None:
            return
        if is_rtx(codec):
            _run_now(receiver._handle_rtp_packet(packet, arrival_time_ms=clock.current_ms()))
            return
        ssrc = packet.ssrc
        self._count += 1
        if self._count >= _SOURCE_EVERY or ssrc not in self._sources:
            self._sources[ssrc] = clock.current_datetime()
            self._count = 0
        stats = self._streams.get(ssrc)
        if stats is None:
            stats = self._streams[ssrc] = StreamStatistics(codec.clockRate)
        stats.add(packet)
        packet._data = packet.payload  # type: ignore[attr-defined]
        _, frame = receiver._RTCRtpReceiver__jitter_buffer.add(packet)
        if frame is not None and receiver._RTCRtpReceiver__decoder_thread:
            # No timestamp mapping: the frame keeps the RTP timestamp as sent (the
            # speaker's playout buffer unwraps it itself).
            receiver._RTCRtpReceiver__decoder_queue.put((codec, frame))


_SOURCE_EVERY = 25


def _skip_stun_parse(protocol: Any) -> None:
    """aioice tries every datagram as STUN before passing it on; SRTP never is one."""
    parse_first = protocol.datagram_received

    def datagram_received(data: bytes, addr: tuple[Any, ...]) -> None:
        if _is_srtp(data):
            protocol.receiver.data_received(data, protocol.local_candidate.component)
        else:
            parse_first(data, addr)

    protocol.datagram_received = datagram_received


def _run_now(coroutine: Any) -> None:
    """Run a coroutine that does not suspend to its end, here."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()  # it awaited after all: drop it rather than block the loop
    log.warning("an RTP handler suspended on the direct path: packet dropped")


class _ExtensionHeader:
    """The header extensions of a mix-minus packet (RFC 8285), as aiortc's serialisation
    writes them with the negotiated map: the MID, then the absolute send time (the only
    two it sets on a sent audio packet), one-byte form unless an element does not fit.
    Laid out once; each packet only puts its 3-byte send time in its place."""

    def __init__(self, ids: Any, mid: str | None) -> None:
        elements: list[tuple[int, bytes]] = []
        if ids.mid and mid is not None:
            elements.append((ids.mid, mid.encode("utf8")))
        if ids.abs_send_time:
            elements.append((ids.abs_send_time, b"\0\0\0"))
        if not elements:
            self._before, self._after = b"", None
            return
        one_byte = all(0 < i < 15 and 0 < len(v) <= 16 for i, v in elements)
        body = b""
        at = -1
        for i, v in elements:
            body += bytes([(i << 4) | (len(v) - 1)]) if one_byte else bytes([i, len(v)])
            if i == ids.abs_send_time:
                at = len(body)
            body += v
        body += bytes(-len(body) % 4)
        whole = struct.pack("!HH", 0xBEDE if one_byte else 0x1000, len(body) // 4) + body
        if at < 0:  # no send time: the same bytes on every packet
            self._before, self._after = whole, None
        else:
            self._before, self._after = whole[: 4 + at], whole[4 + at + 3 :]

    def pack(self, abs_send_time: bytes) -> bytes:
        """The extension bytes for a packet sent at ``abs_send_time`` (3 bytes, 6.18 fixed
        point seconds); empty when none was negotiated."""
        if self._after is None:
            return self._before
        return self._before + abs_send_time + self._after


class DirectSender:
    """Sends one speaker's mix-minus packets with aiortc's sender state, synchronously.

    :meth:`install` replaces the sender's RTP task before the connection starts it;
    :meth:`send` (on the loop) then puts each packet on the wire: aiortc's RTP packet
    and serialisation (negotiated header extensions), SRTP, the nominated pair's socket.
    Packets sent before the connection is up are dropped, as aiortc would not send them.
    """

    def __init__(self) -> None:
        self._sender: Any = None
        self._dtls: Any = None
        self._payload_type: int | None = None
        self._sequence = random16()
        self._timestamp_origin = random32()
        self._header: _ExtensionHeader | None = None

    def _extension_header(self, sender: Any) -> _ExtensionHeader:
        header = self._header
        if header is None:
            extensions = sender._RTCRtpSender__rtp_header_extensions_map
            header = self._header = _ExtensionHeader(
                extensions._HeaderExtensionsMap__ids, sender._RTCRtpSender__mid
            )
        return header

    def install(self, pc: RTCPeerConnection) -> None:
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "audio":
                self._sender = sender = transceiver.sender
                sender._run_rtp = self._run_rtp  # type: ignore[method-assign]
                return

    async def _run_rtp(self, codec: RTCRtpCodecParameters) -> None:
        """In place of aiortc's sending task: note the codec, then wait to be stopped."""
        sender = self._sender
        self._dtls = sender.transport
        self._payload_type = codec.payloadType
        sender._RTCRtpSender__rtp_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
        finally:
            self._payload_type = None
            sender._RTCRtpSender__rtp_exited.set()

    def send(self, packets: Iterable[Any]) -> int:
        """Send ``packets`` (pre-encoded: ``bytes()`` and ``pts`` at 48 kHz); returns how
        many went out."""
        pt = self._payload_type
        dtls = self._dtls
        if pt is None or dtls is None or dtls._tx_srtp is None:
            return 0
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None:
            return 0
        transport = pair.protocol.transport
        if transport is None:
            return 0
        sender = self._sender
        header = self._extension_header(sender)
        sendto = transport.sendto
        ntp = clock.current_ntp_time()
        abs_send_time = ((ntp >> 14) & 0x00FFFFFF).to_bytes(3, "big")
        extension = header.pack(abs_send_time)
        first = 0x90 if extension else 0x80
        second = 0x80 | pt  # the marker on every packet, as aiortc's audio sender sets it
        remote = pair.remote_addr
        ssrc = sender._ssrc
        protect = dtls._tx_srtp.protect
        sent = octets = wire = 0
        timestamp = 0
        for item in packets:
            payload = bytes(item)
            timestamp = uint32_add(self._timestamp_origin, item.pts)
            rtp = _HEADER.pack(first, second, self._sequence, timestamp, ssrc)
            data = protect(rtp + extension + payload)
            try:
                sendto(data, remote)
            except (OSError, RuntimeError):  # the socket is closing: the session is ending
                break
            self._sequence = uint16_add(self._sequence, 1)
            sent += 1
            octets += len(payload)
            wire += len(data)
        if sent:
            sender._RTCRtpSender__ntp_timestamp = ntp
            sender._RTCRtpSender__rtp_timestamp = timestamp
            sender._RTCRtpSender__octet_count += octets
            sender._RTCRtpSender__packet_count += sent
            dtls._RTCDtlsTransport__tx_bytes += wire
            dtls._RTCDtlsTransport__tx_packets += sent
        return sent
