"""The pure parts of ``pnyx.edge``: the link secret's file, the folders a config names,
and what a config without a secret or TLS leaves out (nginx checks the rest, in
tests/e2e/test_edge*.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from pnyx.config import Settings
from pnyx.edge import (
    EdgeSpec,
    Tls,
    folders,
    install_commands,
    read_link_secret,
    render,
    render_vcl,
    varnishd_command,
)
from pnyx.edge_frontrow import PRIVATE, FrontRow
from pnyx.edge_reads import BAD_LINK, EXPIRED, LONGEST_ORIGIN_WAIT_S, NO_LINKS
from pnyx.edge_varnish import Collapse


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


def test_a_private_front_row_is_subscribed_through_a_link_checked_like_the_media_reads() -> None:
    secret = "front-row-and-media-share-this"
    text = render(EdgeSpec("8080", ("127.0.0.1:8000",), link_secret=secret, frontrow=FrontRow()))
    sub = text[text.index("/frontrow/(?<pnyx_fr_space>") :]
    sub = sub[: sub.index("\n        }")]
    assert '"^(?<pnyx_fr_link>/p/(?<pnyx_fr_exp>[^/]*)/(?<pnyx_fr_sig>[^/]*))?/frontrow/' in text
    # the media reads' check, on the front row's own captures, with the same secret
    assert "secure_link $pnyx_fr_sig,$pnyx_fr_exp;" in sub
    assert f'secure_link_md5 "$pnyx_fr_exp$pnyx_fr_space {secret}";' in sub
    assert f'secure_link_md5 "$pnyx_exp$pnyx_space {secret}";' in text
    assert f'if ($pnyx_fr_gate = unsigned) {{ return 403 "{PRIVATE}\\n"; }}' in sub
    assert f'if ($pnyx_fr_gate = bad_link) {{ return 403 "{BAD_LINK}\\n"; }}' in sub
    assert f'if ($pnyx_fr_gate = expired) {{ return 410 "{EXPIRED}\\n"; }}' in sub
    assert sub.index("pnyx_fr_gate") < sub.index("nchan_subscriber websocket;")
    assert "nchan_channel_id $pnyx_fr_space;" in sub  # one channel, signed or not
    assert 'default "s$secure_link";' in text and '"~^none:p-" unsigned;' in text
    # without a secret: no secure_link anywhere, every signed subscription a 403
    plain = render(EdgeSpec("8080", ("127.0.0.1:8000",), frontrow=FrontRow()))
    assert "secure_link $" not in plain and "$secure_link" not in plain
    assert "secure_link_md5" not in plain
    assert f'return 403 "{NO_LINKS}\\n";' in plain
    # without the front row: none of its maps
    assert "pnyx_fr_" not in render(EdgeSpec("8080", ("127.0.0.1:8000",), link_secret=secret))


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


def test_replay_objects_are_revalidated_and_live_reads_are_not() -> None:
    """Replay objects expire after the origin's s-maxage (a deleted recording must leave
    the edge); their copies are then checked with If-None-Match, not fetched again."""
    conf = render(EdgeSpec("8080", ("10.0.0.1:8000",), varnish=Collapse()))
    blocks = re.split(r"\n        location ", conf)
    revalidated = [b.split("\n", 1)[0] for b in blocks if "proxy_cache_revalidate on;" in b]
    assert len(revalidated) == 2, revalidated
    assert "rec/" in revalidated[0] and "replay\\.m3u8" in revalidated[0]
    assert "recording\\.m4a" in revalidated[1]
    assert not any("live|plain" in line or "/state" in line for line in revalidated)


@pytest.mark.parametrize("name", ["state_wait_s", "hls_block_s"])
def test_no_origin_wait_a_setting_allows_outlasts_the_edge(name: str) -> None:
    """The edge holds an upstream read LONGEST_ORIGIN_WAIT_S; a node may not be set to
    hold a long-poll or a blocking reload longer (the edge would cut it off)."""
    bounds = [m.le for m in Settings.model_fields[name].metadata if hasattr(m, "le")]
    assert bounds and bounds[0] < LONGEST_ORIGIN_WAIT_S
    with pytest.raises(ValidationError):
        Settings(**{name: LONGEST_ORIGIN_WAIT_S})
