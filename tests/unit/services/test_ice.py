"""TURN credentials (the TURN REST API convention coturn implements), the Link headers
of RFC 9725, and the stage node's ICE policy from the settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress

from pnyx.config import load_settings
from pnyx.domain.types import Handle
from pnyx.services.ice import IceServers, ice_policy, link, quoted, turn_credential


def test_a_credential_is_the_hmac_sha1_of_expiry_and_user_in_base64() -> None:
    cred = turn_credential("s3cret-s3cret-s3cret", "alice", 1_800_000_000)
    assert cred.username == "1800000000:alice"
    # Written out independently: base64(HMAC-SHA1(key=secret, msg=username)).
    mac = hmac.new(b"s3cret-s3cret-s3cret", b"1800000000:alice", hashlib.sha1).digest()
    assert cred.credential == base64.b64encode(mac).decode()
    assert len(base64.b64decode(cred.credential)) == 20  # SHA-1
    # A known vector (computed with openssl: printf '1800000000:alice' |
    # openssl dgst -sha1 -hmac s3cret-s3cret-s3cret -binary | base64).
    assert cred.credential == "8heDCQhTA2VJ19OZffK/UyJUaAY="


def test_links_carry_stun_for_anyone_and_turn_with_fresh_credentials_for_an_account() -> None:
    settings = load_settings(
        {
            "ice_stun_urls": ["stun:stun.example.net:3478"],
            "ice_turn_urls": ["turn:turn.example.net:3478?transport=udp", "turns:t.example.net"],
            "ice_turn_secret": "0123456789abcdef",
            "ice_turn_ttl_s": 600,
        },
        env={},
    )
    servers = IceServers(settings, clock=lambda: 1_700_000_000.7)
    assert servers.links(None) == ['<stun:stun.example.net:3478>; rel="ice-server"']
    links = servers.links(Handle("bob"))
    assert links[0] == '<stun:stun.example.net:3478>; rel="ice-server"'
    cred = turn_credential("0123456789abcdef", "bob", 1_700_000_600)
    assert links[1:] == [
        f'<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="{cred.username}";'
        f' credential="{cred.credential}"; credential-type="password"',
        f'<turns:t.example.net>; rel="ice-server"; username="{cred.username}";'
        f' credential="{cred.credential}"; credential-type="password"',
    ]
    assert IceServers(load_settings({}, env={})).links(Handle("bob")) == []  # none configured


def test_link_parameters_are_quoted_strings() -> None:
    assert quoted('a"b\\c') == '"a\\"b\\\\c"'
    cred = turn_credential("0123456789abcdef", 'we"ird\\', 1)
    value = link("turn:h", cred)
    assert 'username="1:we\\"ird\\\\"' in value
    assert value.startswith('<turn:h>; rel="ice-server"; ')


def test_the_policy_from_the_settings() -> None:
    policy = ice_policy(
        load_settings(
            {
                "ice_addresses": "10.0.0.11, 10.0.1.11",
                "ice_port_min": 40000,
                "ice_port_max": 40099,
                "ice_nat_1_1": ["10.0.0.11=203.0.113.7", "2001:db8::1"],
                "ice_allowed_networks": "198.51.100.0/24",
            },
            env={},
        )
    )
    assert policy.addresses == ("10.0.0.11", "10.0.1.11")
    assert (policy.port_min, policy.port_max) == (40000, 40099)
    assert policy.nat_1_1 == (("10.0.0.11", "203.0.113.7"), (None, "2001:db8::1"))
    assert policy.allowed == (ipaddress.ip_network("198.51.100.0/24"),)
    assert policy.public_for("10.0.0.11") == "203.0.113.7"
    assert policy.public_for("10.0.1.11") is None  # no IPv4 "any" mapping
    assert policy.public_for("fd00::2") == "2001:db8::1"
    assert not policy.allow_own
