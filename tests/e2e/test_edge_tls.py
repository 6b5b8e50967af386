"""The edge with TLS (``pnyx edge-config --tls-cert --tls-key``), against a real nginx and
a real node: HTTPS serves the media (verified against the test's own CA), HTTP/2 is
negotiated by ALPN, TLS sessions resume, and plain HTTP only redirects to HTTPS."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support import hls, tones
from tests.support.api import create_space, new_user
from tests.support.nginx import Edge, nginx_edge
from tests.support.pnyx_server import pnyx_serve
from tests.support.procs import require_binary
from tests.support.tls import Cert, self_signed
from tests.support.upstream import counting_upstream

pytestmark = pytest.mark.e2e


def _curl(edge: Edge, cert: Cert, path: str, *extra: str) -> str:
    curl = require_binary("curl", "/usr/bin")
    out = subprocess.run(
        [
            curl,
            "-sS",
            "-o",
            "/dev/null",
            "--cacert",
            str(cert.cert),
            *extra,
            "-w",
            "%{http_code} %{http_version}",
            edge.url + path,
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


async def test_https_serves_the_media_and_http_redirects(tmp_path: Path) -> None:
    cert = self_signed(tmp_path / "tls")
    trust = ssl.create_default_context(cafile=str(cert.cert))
    with (
        pnyx_serve(tmp_path / "o") as origin,
        origin.client() as direct,
        nginx_edge([origin.url.removeprefix("http://")], tls=cert) as edge,
    ):
        space = create_space(direct, new_user(direct, "h"))
        assert edge.url.startswith("https://")
        async with (
            httpx.AsyncClient(verify=trust, timeout=15) as client,
            hls.HlsListener(edge.url, space, client=client) as listener,
        ):
            await listener.start(within=20)
            await listener.follow(seconds=2)
        assert listener.init is not None and len(listener.parts) >= 3
        decoded = listener.decode()
        assert len(decoded.samples) >= tones.RATE  # a second and more of audio, decoded

        # Plain HTTP: a redirect to the same URL on HTTPS, for reads and writes alike.
        async with httpx.AsyncClient(base_url=edge.http_url, timeout=10) as plain:
            for method, path in (
                ("GET", f"/media/{space}/live.m3u8?_HLS_msn=3&_HLS_part=1"),
                ("POST", f"/v1/spaces/{space}/join"),
            ):
                r = await plain.request(method, path)
                assert r.status_code == 308, (method, path, r.status_code)
                assert r.headers["location"] == edge.url + path
            # …except the status page, still on HTTP (from loopback).
            assert "Active connections" in (await plain.get("/edge-status")).text


def test_http2_by_alpn_tls_versions_and_session_resumption(tmp_path: Path) -> None:
    cert = self_signed(tmp_path / "tls")
    with counting_upstream() as node, nginx_edge([node.address], tls=cert) as edge:
        assert _curl(edge, cert, "/media/pub1/init.mp4", "--http2") == "200 2"
        assert _curl(edge, cert, "/media/pub1/init.mp4", "--http1.1") == "200 1.1"
        assert _curl(edge, cert, "/media/pub1/init.mp4", "--tls-max", "1.2") == "200 2"
        assert node.count() == 1

        # Old protocol versions are refused.
        openssl = require_binary("openssl", "/usr/bin")
        host = edge.url.removeprefix("https://")
        old = subprocess.run(
            [openssl, "s_client", "-connect", host, "-tls1_1", "-CAfile", str(cert.cert)],
            input="",
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert old.returncode != 0

        # A second connection resumes the first one's session (a join storm pays one
        # full handshake per listener at most once).
        for version in ("-tls1_2", "-tls1_3"):
            session = tmp_path / f"session{version}"
            outputs = []
            for reuse in (["-sess_out", str(session)], ["-sess_in", str(session)]):
                done = subprocess.run(
                    [
                        openssl,
                        "s_client",
                        "-connect",
                        host,
                        version,
                        "-CAfile",
                        str(cert.cert),
                        "-servername",
                        "localhost",
                        "-ign_eof",  # read until nginx closes: a TLS 1.3 ticket comes late
                        *reuse,
                    ],
                    input="GET /edge-status HTTP/1.0\r\n\r\n",
                    capture_output=True,
                    text=True,
                    timeout=20,
                )
                assert done.returncode == 0, done.stderr
                outputs.append(done.stdout)
            assert "Verify return code: 0 (ok)" in outputs[0]
            assert "Reused," in outputs[1], (version, outputs[1][-800:])
