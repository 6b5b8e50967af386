"""Argument validation and safety of ``pnyx loadtest``: bounds, loopback only."""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path

import pytest

from pnyx.errors import PnyxError
from pnyx.loadtest import command
from pnyx.loadtest.runner import split
from pnyx.loadtest.target import (
    check_fds,
    fd_hard_limit,
    is_loopback,
    parse_target,
    tls_options,
)
from pnyx.loadtest.tls import TlsOptions, client_context


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["loadtest", *argv])


LISTEN = ("listeners", "--url", "http://127.0.0.1:8080", "--space", "s")


@pytest.mark.parametrize(
    "extra",
    [
        ("--listeners", "0", "--duration-s", "10"),
        ("--listeners", "100001", "--duration-s", "10"),
        ("--listeners", "10", "--duration-s", "3601"),
        ("--listeners", "10", "--duration-s", "0"),
        ("--listeners", "10", "--duration-s", "10", "--procs", "11"),
        ("--listeners", "10", "--duration-s", "10", "--ramp-s", "10"),
    ],
)
def test_listener_bounds(extra: tuple[str, ...]) -> None:
    with pytest.raises(PnyxError):
        command.validate(parse(*LISTEN, *extra))


def test_required_arguments() -> None:
    with pytest.raises(SystemExit):
        parse(*LISTEN, "--listeners", "10")  # no --duration-s
    with pytest.raises(SystemExit):
        parse(*LISTEN, "--duration-s", "10")  # no --listeners


def test_joinstorm_bounds_and_stage_credentials() -> None:
    base = ("joinstorm", "--url", "http://[::1]:8080", "--duration-s", "10")
    command.validate(parse(*base, "--rate", "100000"))
    with pytest.raises(PnyxError):
        command.validate(parse(*base, "--rate", "100001"))
    with pytest.raises(PnyxError):
        command.validate(parse(*base, "--rate", "10", "--ramp-s", "11"))
    with pytest.raises(PnyxError, match="host-handle"):
        command.validate(parse(*base, "--rate", "10", "--space", "x"))
    command.validate(parse(*base, "--rate", "10", "--space", "x", "--no-stage"))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost"])
def test_loopback_targets(host: str) -> None:
    assert is_loopback(host)
    url = f"http://[{host}]:8080" if ":" in host else f"http://{host}:8080"
    assert parse_target(url, allow_remote=False).port == 8080


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1:80", "http://example.org", "http://192.168.1.2:8080"]
)
def test_remote_targets_refused_unless_allowed(url: str) -> None:
    with pytest.raises(PnyxError, match="not a loopback address"):
        parse_target(url, allow_remote=False)
    assert parse_target(url, allow_remote=True).host


def test_run_refuses_remote_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(
        "listeners",
        "--url",
        "http://10.1.2.3:80",
        "--space",
        "s",
        "--listeners",
        "5",
        "--duration-s",
        "5",
    )
    assert command.run(args) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_bad_urls() -> None:
    for url in ("ftp://127.0.0.1", "127.0.0.1:80", "http://127.0.0.1/base", "http://127.0.0.1:x"):
        with pytest.raises(PnyxError):
            parse_target(url, allow_remote=False)


@pytest.mark.parametrize(
    ("url", "port", "tls"),
    [
        ("https://127.0.0.1", 443, True),
        ("https://localhost:8443", 8443, True),
        ("https://[::1]:9443/", 9443, True),
        ("http://127.0.0.1", 80, False),
    ],
)
def test_https_targets(url: str, port: int, tls: bool) -> None:
    target = parse_target(url, allow_remote=False)
    assert (target.port, target.tls) == (port, tls)


def test_remote_https_needs_the_flag_too() -> None:
    with pytest.raises(PnyxError, match="not a loopback address"):
        parse_target("https://example.org", allow_remote=False)
    assert parse_target("https://example.org", allow_remote=True).port == 443


def test_tls_options_fit_the_url(tmp_path: Path) -> None:
    https = parse_target("https://localhost:8443", allow_remote=False)
    http = parse_target("http://localhost:8080", allow_remote=False)
    assert tls_options(http, cacert=None, insecure=False) is None
    options = tls_options(https, cacert=None, insecure=False)
    assert options == TlsOptions("localhost", None, False)  # the system's CAs, verified
    assert tls_options(https, cacert=None, insecure=True) == TlsOptions("localhost", None, True)
    with pytest.raises(PnyxError, match="https:// URLs"):
        tls_options(http, cacert="ca.pem", insecure=False)
    with pytest.raises(PnyxError, match="https:// URLs"):
        tls_options(http, cacert=None, insecure=True)
    with pytest.raises(PnyxError, match="not both"):
        tls_options(https, cacert="ca.pem", insecure=True)
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    for cafile in (str(bad), str(tmp_path / "absent.pem")):
        with pytest.raises(PnyxError, match="--cacert"):
            client_context(TlsOptions("localhost", cafile))


def test_tls_contexts_verify_unless_told_not_to() -> None:
    strict = client_context(TlsOptions("localhost"))
    assert strict.check_hostname and strict.verify_mode is ssl.CERT_REQUIRED
    assert strict.minimum_version is ssl.TLSVersion.TLSv1_2
    lax = client_context(TlsOptions("localhost", insecure=True))
    assert not lax.check_hostname and lax.verify_mode is ssl.CERT_NONE


def test_a_missing_cacert_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = parse(
        *("listeners", "--url", "https://127.0.0.1:1", "--space", "s"),
        *("--listeners", "1", "--duration-s", "1", "--cacert", str(tmp_path / "none.pem")),
    )
    assert command.run(args) == 2
    assert "--cacert" in capsys.readouterr().err


def test_file_descriptor_budget() -> None:
    check_fds(100, "a few listeners")
    with pytest.raises(PnyxError, match="--procs"):
        check_fds(fd_hard_limit(), "too many listeners")


def test_split_listeners_over_workers() -> None:
    assert split(10, 3) == [4, 3, 3]
    assert sum(split(100_000, 7)) == 100_000
