"""Sentinel URLs: what they say, and what a bad one is told (never its password)."""

from __future__ import annotations

import pytest

from pnyx.config import load_settings
from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.redis_url import (
    SentinelTarget,
    check_redis_url,
    is_sentinel_url,
    parse_sentinel_url,
)


def test_the_documented_form() -> None:
    target = parse_sentinel_url("redis+sentinel://10.0.0.1:26379,10.0.0.2:26380/mymaster/3")
    assert target == SentinelTarget(
        sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26380)), service="mymaster", db=3
    )


def test_defaults_ipv6_and_credentials() -> None:
    target = parse_sentinel_url(
        "REDIS+SENTINEL://app:p%40ss@sentinel-a,[::1]:26400,[fe80::1]/cache/"
        "?sentinel_password=s3cret&sentinel_username=watcher"
    )
    assert target.sentinels == (("sentinel-a", 26379), ("::1", 26400), ("fe80::1", 26379))
    assert (target.service, target.db) == ("cache", 0)
    assert (target.username, target.password) == ("app", "p@ss")
    assert (target.sentinel_username, target.sentinel_password) == ("watcher", "s3cret")
    assert "p@ss" not in repr(target) and "s3cret" not in repr(target)


def test_password_as_a_query_parameter() -> None:
    target = parse_sentinel_url("redis+sentinel://h1/m?password=pw")
    assert (target.username, target.password) == (None, "pw")
    assert parse_sentinel_url("redis+sentinel://:pw@h1/m").password == "pw"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://h1:26379", "no service name"),
        ("redis+sentinel://h1:26379/", "no service name"),
        ("redis+sentinel:///mymaster", "address is empty"),
        ("redis+sentinel://h1,,h2/mymaster", "address is empty"),
        ("redis+sentinel://h1:port/mymaster", "port must be a number"),
        ("redis+sentinel://h1:70000/mymaster", "port must be a number"),
        ("redis+sentinel://h1:1:2/mymaster", "expected host:port"),
        ("redis+sentinel://::1/mymaster", "expected host:port"),
        ("redis+sentinel://[::1/mymaster", "[brackets]"),
        ("redis+sentinel://[::1]x/mymaster", "expected [address]:port"),
        ("redis+sentinel://h1/mymaster/zero", "database must be a number"),
        ("redis+sentinel://h1/mymaster/0/extra", "too many path segments"),
        ("redis+sentinel://h1/mymaster?db=1", "unknown query parameter 'db'"),
        ("redis+sentinel://h1/m?sentinel_password=a&sentinel_password=b", "given twice"),
        ("redis+sentinel://:hunter2@h1/m?password=hunter3", "password is given twice"),
        ("redis+sentinel://h1/m#frag", "no #fragment"),
        ("sentinel://h1/mymaster", "unsupported scheme 'sentinel'"),
        ("h1:6379", "unsupported scheme '(none)'"),
    ],
)
def test_a_bad_url_is_told_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(PnyxError) as err:
        check_redis_url(url)
    assert err.value.kind is ErrorKind.INVALID
    assert err.value.message.startswith("bad live-state (Redis) URL: ")
    assert says in err.value.message
    assert "hunter" not in err.value.message


@pytest.mark.parametrize(
    "url", ["redis://localhost:6379/0", "rediss://h:6380", "unix:///run/redis.sock"]
)
def test_plain_urls_pass_through(url: str) -> None:
    check_redis_url(url)
    assert not is_sentinel_url(url)


def test_a_bad_sentinel_url_fails_the_settings_at_start_up() -> None:
    with pytest.raises(PnyxError) as err:
        load_settings({"redis": "redis+sentinel://h1:26379"}, env={})
    assert err.value.kind is ErrorKind.INVALID
    assert "no service name" in err.value.message
    url = "redis+sentinel://h1,h2:26380/mymaster/1"
    assert load_settings({"redis": url}, env={}).redis == url
