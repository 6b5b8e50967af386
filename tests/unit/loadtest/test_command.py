"""Argument validation and safety of ``pnyx loadtest``: bounds, loopback only."""

from __future__ import annotations

import argparse

import pytest

from pnyx.errors import PnyxError
from pnyx.loadtest import command
from pnyx.loadtest.runner import split
from pnyx.loadtest.target import check_fds, fd_hard_limit, is_loopback, parse_target


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
    for url in ("https://127.0.0.1", "127.0.0.1:80", "http://127.0.0.1/base"):
        with pytest.raises(PnyxError):
            parse_target(url, allow_remote=False)


def test_file_descriptor_budget() -> None:
    check_fds(100, "a few listeners")
    with pytest.raises(PnyxError, match="--procs"):
        check_fds(fd_hard_limit(), "too many listeners")


def test_split_listeners_over_workers() -> None:
    assert split(10, 3) == [4, 3, 3]
    assert sum(split(100_000, 7)) == 100_000
