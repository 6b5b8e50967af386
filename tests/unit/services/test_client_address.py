"""The client address behind rate limits: X-Forwarded-For is believed from trusted
proxies only, read from the right."""

from __future__ import annotations

from pnyx.services.client_address import ClientAddresses

EDGE = "10.0.0.5"


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert ClientAddresses([]).of("198.51.100.9", ["203.0.113.1"]) == "198.51.100.9"


def test_a_spoofed_header_from_an_untrusted_peer_is_ignored() -> None:
    addresses = ClientAddresses([EDGE])
    assert addresses.of("198.51.100.9", ["203.0.113.1"]) == "198.51.100.9"
    assert addresses.of("198.51.100.9", []) == "198.51.100.9"


def test_from_the_edge_the_right_most_untrusted_address_is_the_client() -> None:
    addresses = ClientAddresses(["10.0.0.0/24"])
    # The client wrote "1.2.3.4"; the edge appended the address it saw.
    assert addresses.of(EDGE, ["1.2.3.4, 198.51.100.9"]) == "198.51.100.9"
    # Two trusted hops (edge behind a load balancer), repeated headers.
    assert addresses.of(EDGE, ["1.2.3.4", "198.51.100.9, 10.0.0.7"]) == "198.51.100.9"
    # Only trusted hops: the left-most of them.
    assert addresses.of(EDGE, ["10.0.0.8"]) == "10.0.0.8"
    # No header at all: the edge itself.
    assert addresses.of(EDGE, []) == EDGE


def test_garbage_in_a_trusted_chain_stops_at_the_last_trusted_hop() -> None:
    addresses = ClientAddresses([EDGE])
    assert addresses.of(EDGE, ["198.51.100.9, not-an-address"]) == EDGE


def test_ports_brackets_and_mapped_addresses() -> None:
    addresses = ClientAddresses([EDGE, "::1"])
    assert addresses.of("::ffff:198.51.100.9", []) == "198.51.100.9"
    assert addresses.of("::1", ["[2001:db8::7]:4711"]) == "2001:db8::7"
    assert addresses.of(EDGE, ["198.51.100.9:4711"]) == "198.51.100.9"
    assert addresses.of("testclient", ["1.2.3.4"]) == "testclient"
    assert addresses.of(None, ["1.2.3.4"]) == "unknown"
