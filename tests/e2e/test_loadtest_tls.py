"""``pnyx loadtest`` over HTTPS: a real nginx terminating TLS (self-signed P-256) in front
of a real node. Simulated listeners verify the certificate against ``--cacert``, play,
and resume their TLS sessions when the proxy closes their connections; the tone the
speaker publishes is decoded from what the proxy serves; an untrusted certificate is a
clear set-up error, not a traceback."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_loadtest import loadtest, segments_listed
from tests.support.api import create_space, new_user
from tests.support.hls import HlsListener
from tests.support.pnyx_server import PnyxProcess, pnyx_serve
from tests.support.tls import self_signed
from tests.support.tls_proxy import TlsProxy, tls_proxy
from tests.support.tones import describe, dominant_tones
from tests.support.webrtc import ToneTrack, publish

pytestmark = pytest.mark.e2e

LISTENERS = 20
DURATION_S = 15
TONE_HZ = 587.0
# The proxy closes a client connection after this many requests: low-latency listeners
# make several requests a second, so each reconnects (and should resume) within the run.
KEEPALIVE_REQUESTS = 12


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PnyxProcess]:
    with pnyx_serve(Path(tmp_path_factory.mktemp("loadtest-tls"))) as n:
        yield n


@pytest.fixture(scope="module")
def proxy(node: PnyxProcess) -> Iterator[TlsProxy]:
    with tls_proxy(node.url.removeprefix("http://"), keepalive_requests=KEEPALIVE_REQUESTS) as p:
        yield p


def _trust(proxy: TlsProxy) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(proxy.cert.cert))


async def _hear_tone(proxy: TlsProxy, space: str) -> None:
    """A player of our own, through the proxy over verified TLS, hears the speaker."""
    async with (
        httpx.AsyncClient(verify=_trust(proxy), timeout=15) as http,
        HlsListener(proxy.url, space, client=http) as listener,
    ):
        await listener.start(within=20)
        await listener.follow(4.0)
        decoded = listener.decode()
    heard = dominant_tones(decoded.samples, decoded.rate, {TONE_HZ})
    assert heard == {TONE_HZ}, describe(decoded.samples, (TONE_HZ,), decoded.rate)


async def test_listeners_play_over_https_and_resume_their_sessions(
    node: PnyxProcess, proxy: TlsProxy, c: httpx.Client, tmp_path: Path
) -> None:
    host = new_user(c, "tls_host")
    space = create_space(c, host)
    speaker = await publish(node.url, space, host.token, ToneTrack(TONE_HZ))
    try:
        await speaker.connected()
        await segments_listed(f"{proxy.url}/media/{space}/live.m3u8", 20, 2, verify=_trust(proxy))
        out = tmp_path / "listeners.json"
        proc = await asyncio.create_subprocess_exec(
            *loadtest(
                "listeners",
                "--url",
                proxy.url,
                "--cacert",
                str(proxy.cert.cert),
                "--space",
                space,
                "--listeners",
                str(LISTENERS),
                "--duration-s",
                str(DURATION_S),
                "--ramp-s",
                "2",
                "--latency",
                "low",
                "--json",
                str(out),
            ),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        await _hear_tone(proxy, space)  # while the crowd plays
        stdout, stderr = await asyncio.wait_for(proc.communicate(), DURATION_S + 30)
    finally:
        await speaker.close()
    assert proc.returncode == 0, stderr.decode()
    print(stdout.decode())  # the summary, with the handshakes and connect times (-s)
    assert b"TLS handshakes:" in stdout, stdout.decode()
    report: dict[str, Any] = json.loads(out.read_text())
    assert report["config"]["url"] == proxy.url
    assert report["joins"]["accepted"] == LISTENERS
    assert report["listeners"]["playing"] == LISTENERS
    assert report["rate"]["media_bytes"] > 0
    assert report["requests"]["part"]["count"] > 0
    assert "tls" not in report["http_errors"], report["http_errors"]
    conns = report["connections"]
    # A listener's first connections (two, opened together) are full handshakes; the
    # proxy closing connections makes them reconnect, and a reconnection offers the
    # session the listener holds.
    assert conns["tls_full"] >= LISTENERS, conns
    assert conns["tls_resumed"] >= LISTENERS, conns
    assert conns["made"] == conns["tls_full"] + conns["tls_resumed"]
    assert conns["connect_ms"]["p50_ms"] is not None and conns["connect_ms"]["p50_ms"] > 0
    assert conns["connect_full_ms"]["count"] == conns["tls_full"]
    assert conns["connect_resumed_ms"]["count"] == conns["tls_resumed"]
    # nginx agrees: requests arrived on resumed sessions.
    resumed, full = proxy.handshakes()
    assert resumed > 0 and full > 0, (resumed, full)


def test_an_untrusted_certificate_is_a_clear_error(proxy: TlsProxy, tmp_path: Path) -> None:
    other_ca = self_signed(tmp_path / "other")  # not the proxy's
    args = ["--space", "x", "--listeners", "1", "--duration-s", "1"]
    for trust in (["--cacert", str(other_ca.cert)], []):  # a wrong CA, the system's CAs
        done = subprocess.run(
            loadtest("listeners", "--url", proxy.url, *trust, *args),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert "is not trusted" in done.stderr and "--cacert" in done.stderr, done.stderr
    plain = subprocess.run(
        loadtest("listeners", "--url", proxy.url.replace("https:", "http:"), *args),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert "400" in plain.stderr, plain.stderr  # nginx: plain HTTP sent to an HTTPS port


def test_a_join_storm_over_https_with_insecure(proxy: TlsProxy, tmp_path: Path) -> None:
    out = tmp_path / "storm.json"
    done = subprocess.run(
        loadtest(
            "joinstorm",
            "--url",
            proxy.url,
            "--insecure",
            "--rate",
            "30",
            "--duration-s",
            "4",
            "--json",
            str(out),
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["accepted"] > 0 and report["errors"] == 0, report
    assert report["stage"]["failures"] == 0, report["stage"]
    assert report["connections"]["tls_full"] >= 1


async def test_a_tls_connection_resumes_its_session_and_refuses_a_stranger(
    tmp_path: Path,
) -> None:
    """The lean client against a tiny TLS server that closes after every answer: the
    second connection resumes the first's session; a client trusting another CA fails
    with the TLS kind."""
    from pnyx.loadtest.http import TLS, Conn, RequestFailed, get_bytes
    from pnyx.loadtest.tls import SessionSlot, TlsOptions, client_context

    cert = self_signed(tmp_path / "server")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert.cert, cert.key)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass  # the stranger's handshake failed
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    seen: list[bool | None] = []
    ctx = client_context(TlsOptions("127.0.0.1", str(cert.cert)))
    conn = Conn(
        "127.0.0.1",
        port,
        tls=ctx,
        server_hostname="127.0.0.1",
        slot=SessionSlot(),
        on_connect=lambda _s, resumed: seen.append(resumed),
    )
    stranger_ca = self_signed(tmp_path / "stranger")
    stranger = Conn(
        "127.0.0.1",
        port,
        tls=client_context(TlsOptions("127.0.0.1", str(stranger_ca.cert))),
        server_hostname="127.0.0.1",
    )
    host = f"127.0.0.1:{port}".encode()
    try:
        for _ in range(3):
            r = await conn.request(get_bytes(b"/", host), limit_s=5)
            assert (r.status, r.body) == (200, b"ok")
        assert seen == [False, True, True]
        with pytest.raises(RequestFailed) as failed:
            await stranger.request(get_bytes(b"/", host), limit_s=5)
        assert failed.value.kind == TLS
    finally:
        conn.close()
        stranger.close()
        server.close()
        await server.wait_closed()
