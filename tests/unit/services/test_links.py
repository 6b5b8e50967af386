"""Signed links: the nginx secure_link_md5 signature, checked in constant time, expiry
rounding, and the private id prefix."""

from __future__ import annotations

import pytest

from pnyx.domain.types import SpaceId, Visibility
from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.links import (
    LinkSigner,
    expiry,
    is_private,
    plain_links,
    prefix,
    sign,
    verify,
)
from pnyx.services.spaces import new_space_id

SECRET = "s3cret-s3cret-s3cret-s3cret-s3cret-00"
SPACE = "p-AbCdEfGhIjKl"
EXP = 1765000000
# printf '%s' "1765000000p-AbCdEfGhIjKl s3cret-…-00" | openssl md5 -binary | openssl base64 \
#   | tr +/ -_ | tr -d =   (what nginx secure_link_md5 "$exp$space $secret" compares)
OPENSSL_SIG = "bBL-tWVzER0U0fYcYtw1EQ"


def test_the_signature_is_what_nginx_secure_link_md5_computes() -> None:
    assert sign(SPACE, EXP, SECRET) == OPENSSL_SIG
    assert len(OPENSSL_SIG) == 22 and "=" not in OPENSSL_SIG


def test_a_valid_link_verifies_until_its_expiry() -> None:
    assert verify(SPACE, str(EXP), OPENSSL_SIG, SECRET, now=EXP - 1) == EXP
    assert verify(SPACE, str(EXP), OPENSSL_SIG, SECRET, now=EXP) == EXP


def test_an_expired_link_is_gone() -> None:
    with pytest.raises(PnyxError) as info:
        verify(SPACE, str(EXP), OPENSSL_SIG, SECRET, now=EXP + 1)
    assert info.value.kind is ErrorKind.GONE
    assert info.value.code == "link_expired"


@pytest.mark.parametrize(
    ("space", "exp", "sig", "secret"),
    [
        ("p-OtherSpace00", str(EXP), OPENSSL_SIG, SECRET),  # another space's link
        (SPACE, str(EXP + 300), OPENSSL_SIG, SECRET),  # a later expiry, same signature
        (SPACE, str(EXP), "A" + OPENSSL_SIG[1:], SECRET),  # tampered signature
        (SPACE, str(EXP), OPENSSL_SIG, SECRET + "x"),  # another secret
        (SPACE, "soon", OPENSSL_SIG, SECRET),  # not a number
        (SPACE, str(EXP), OPENSSL_SIG + "==", SECRET),  # padded
        (SPACE, str(EXP), "", SECRET),
    ],
)
def test_a_wrong_or_malformed_signature_is_forbidden(
    space: str, exp: str, sig: str, secret: str
) -> None:
    with pytest.raises(PnyxError) as info:
        verify(space, exp, sig, secret, now=EXP - 10)
    assert info.value.kind is ErrorKind.FORBIDDEN
    assert info.value.code == "bad_signature"


def test_the_expiry_is_rounded_up_to_the_step() -> None:
    assert expiry(1000.0, 3600, 300) == 4800  # 4600 -> 4800
    assert expiry(1200.0, 3600, 300) == 4800  # already a multiple
    assert expiry(1200.5, 3600, 300) == 5100
    # every link handed out within one step is the same URL
    signer = LinkSigner(SECRET, ttl_s=3600, step_s=300, clock=lambda: 1000.0)
    later = LinkSigner(SECRET, ttl_s=3600, step_s=300, clock=lambda: 1199.0)
    assert signer.links(SpaceId(SPACE)) == later.links(SpaceId(SPACE))


def test_a_private_space_gets_signed_read_links_and_others_plain_ones() -> None:
    signer = LinkSigner(SECRET, ttl_s=3600, step_s=300, clock=lambda: 1000.0)
    pre = prefix(4800, sign(SPACE, 4800, SECRET))
    links = signer.links(SpaceId(SPACE))
    plain = plain_links(SpaceId(SPACE))
    reads = ("self", "state", "hls", "hls_plain", "hls_main", "captions", "transcript")
    for key in (*reads, "replay", "recording"):
        assert links[key] == pre + plain[key]
    assert links["join"] == plain["join"]  # an account call: its plain path
    assert signer.links(SpaceId("AbCdEfGhIjKl")) == plain_links(SpaceId("AbCdEfGhIjKl"))
    # the prefix a listener read (the front row's WebSocket too) goes behind
    assert signer.read_prefix(SpaceId(SPACE)) == pre == signer.prefix_for(SpaceId(SPACE))[0]
    assert signer.read_prefix(SpaceId("AbCdEfGhIjKl")) == ""


def test_only_private_ids_begin_with_p_dash_and_none_with_a_dash() -> None:
    # by chance a public id would begin with "p-" one time in 4,096, with "-" one in 64
    for _ in range(20_000):
        for visibility in (Visibility.PUBLIC, Visibility.UNLISTED):
            space = new_space_id(visibility)
            assert not is_private(space) and not space.startswith("-"), space
    private = new_space_id(Visibility.PRIVATE)
    assert is_private(private) and len(private) == 14
    assert len({new_space_id(Visibility.PRIVATE) for _ in range(1000)}) == 1000
