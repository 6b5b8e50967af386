"""The pure parts of ``pnyx.edge``: the link secret's file, the folders a config names,
and what a config without a secret or TLS leaves out (nginx checks the rest, in
tests/e2e/test_edge*.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pnyx.edge import (
    Collapse,
    EdgeSpec,
    Tls,
    folders,
    install_commands,
    read_link_secret,
    render,
    render_vcl,
    varnishd_command,
)


def test_the_link_secret_is_read_stripped_and_must_be_safe_in_a_config(tmp_path: Path) -> None:
    f = tmp_path / "secret"
    f.write_text("  c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n")
    assert read_link_secret(f) == "c2VjcmV0LXNlY3JldC1zZWNyZXQ="
    for bad in ("short", "with $variable-0123456789", 'quote"0123456789abcdef', "a b" * 8):
        f.write_text(bad)
        with pytest.raises(ValueError, match="16-256 characters"):
            read_link_secret(f)


def test_pid_and_temp_files_are_outside_the_cache() -> None:
    spec = EdgeSpec("8080", ("127.0.0.1:8000",), Path("/c"), Path("/s"))
    text = render(spec)
    assert "pid /s/nginx.pid;" in text and "proxy_temp_path /s/proxy_temp;" in text
    assert [line for line in text.splitlines() if re.search(r"\s/c[\s/;]", line)] == [
        "    proxy_cache_path /c levels=1:2 keys_zone=pnyx:64m max_size=2g"
    ]
    assert folders(spec) == [Path("/c"), Path("/s")]
    assert install_commands(spec) == "install -d -m 0755 /c\ninstall -d -m 0755 /s\n"


def test_without_a_secret_nothing_needs_the_secure_link_module() -> None:
    text = render(EdgeSpec("8080", ("127.0.0.1:8000",)))
    assert "secure_link $" not in text and "secure_link_md5" not in text
    assert "$secure_link" not in text
    assert "ssl" not in text
    assert "Host 127.0.0.1:8000;" in text  # the first upstream's


def test_tls_listens_with_http2_and_redirects_plain_http() -> None:
    tls = Tls(Path("/t/cert.pem"), Path("/t/key.pem"), "0.0.0.0:8443")
    text = render(EdgeSpec("80", ("n1:8000",), tls=tls))
    assert "listen 0.0.0.0:8443 ssl http2 default_server;" in text
    assert "return 308 https://$host:8443$request_uri;" in text
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text
    text = render(EdgeSpec("80", ("n1:8000",), tls=Tls(tls.cert, tls.key), server_name="x.org"))
    assert "return 308 https://x.org$request_uri;" in text


def test_an_edge_needs_an_upstream() -> None:
    with pytest.raises(ValueError, match="upstream"):
        render(EdgeSpec("8080", ()))


def test_live_blocking_reads_go_to_varnish_and_the_rest_stays_in_nginx_s_cache() -> None:
    collapse = Collapse("127.0.0.1:7001", "127.0.0.1:7002")
    spec = EdgeSpec("8080", ("10.0.0.1:8000",), varnish=collapse)
    conf = render(spec)
    assert "server 127.0.0.1:7001;" in conf  # the pnyx_collapse upstream
    assert "listen 127.0.0.1:7002;" in conf  # the internal server Varnish asks
    parts = conf.index('location ~ "^' + r"(?<pnyx_link>")
    assert "proxy_pass http://pnyx_collapse$pnyx_link$pnyx_path;" in conf[parts : parts + 2000]
    # a blocking reload (arguments) goes to Varnish, never into nginx's cache lock
    assert "proxy_cache_bypass $pnyx_account_read $pnyx_blocking;" in conf
    assert "proxy_pass http://$pnyx_live_upstream$pnyx_link$pnyx_path$pnyx_hls_args;" in conf
    assert "X-Pnyx-Key $pnyx_ns$pnyx_path" in conf
    assert "add_header X-Cache-Status $pnyx_cache_status always;" in conf
    vcl = render_vcl(spec)
    assert '.port = "7002";' in vcl and "hash_data(req.http.X-Pnyx-Key);" in vcl
    assert "return (pass);" in vcl and "return (hash);" in vcl
    command = varnishd_command(spec, Path("/etc/pnyx/edge.vcl"))
    assert command[:4] == ["varnishd", "-F", "-a", "127.0.0.1:7001"]
    assert "/etc/pnyx/edge.vcl" in command


def test_without_varnish_the_edge_is_nginx_alone() -> None:
    conf = render(EdgeSpec("8080", ("10.0.0.1:8000",)))
    assert "pnyx_collapse" not in conf and "$upstream_cache_status always" in conf
    with pytest.raises(ValueError, match="no Varnish"):
        render_vcl(EdgeSpec("8080", ("10.0.0.1:8000",)))
