"""Webhook URLs: their shape, and the addresses they may reach (SSRF)."""

from __future__ import annotations

import pytest

from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.webhook_urls import allowed, parse, resolve


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("https://hooks.example.com/pnyx?x=1", ("https", "hooks.example.com", 443)),
        ("http://hooks.example.com:8080/", ("http", "hooks.example.com", 8080)),
        ("https://[2001:db8::1]/h", ("https", "2001:db8::1", 443)),
    ],
)
def test_parse(url: str, parts: tuple[str, str, int]) -> None:
    assert parse(url) == parts


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "example.com/hook",
        "https:///nohost",
        "https://user:pw@example.com/",
        "https://example.com/#frag",
        "https://example.com:99999/",
        "https://example.com/" + "a" * 2048,
    ],
)
def test_parse_refuses(url: str) -> None:
    with pytest.raises(PnyxError) as err:
        parse(url)
    assert (err.value.kind, err.value.code) == (ErrorKind.INVALID, "bad_webhook_url")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # shared (CGNAT)
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1%eth0",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "240.0.0.1",
    ],
)
def test_private_addresses_are_refused_unless_allowed(address: str) -> None:
    assert not allowed(address, allow_private=False)
    unspecified_or_multicast = address in ("0.0.0.0", "224.0.0.1")
    assert allowed(address, allow_private=True) is not unspecified_or_multicast


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1::1", "8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert allowed(address, allow_private=False)


async def test_resolve_checks_what_the_name_resolves_to() -> None:
    with pytest.raises(PnyxError) as err:
        await resolve("http://localhost:9/hook", allow_private=False, timeout_s=5)
    assert err.value.code == "webhook_url_private"
    target = await resolve("http://127.0.0.1:9/hook", allow_private=True, timeout_s=5)
    assert (target.scheme, target.host, target.port, target.addresses) == (
        "http",
        "127.0.0.1",
        9,
        ("127.0.0.1",),
    )
    with pytest.raises(PnyxError) as err:
        await resolve("http://no-such-host.invalid/", allow_private=True, timeout_s=5)
    assert err.value.code == "webhook_url_unresolvable"
