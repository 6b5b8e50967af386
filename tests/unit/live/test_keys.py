"""The live state's names (pnyx.live.keys): spelled as deployments already store them,
and no two things share a name as long as space ids are validated."""

from __future__ import annotations

import itertools
import random
import string
from collections.abc import Callable

import pytest

from pnyx.errors import PnyxError
from pnyx.live.keys import (
    RedisKind,
    blob_belongs,
    blob_key,
    hls_key,
    lease_name,
    node_url_key,
    reaction_bucket,
    redis_key,
    stage_channel,
)
from pnyx.media.recording import valid_space

_ID_CHARS = string.ascii_letters + string.digits + "_-"
_rng = random.Random(7)
# What the service makes (secrets.token_urlsafe(9): twelve characters), and the odd ones
# the validation still admits, among them each kind's word.
SPACES = [
    *("".join(_rng.choices(_ID_CHARS, k=12)) for _ in range(200)),
    *("s", "s1", "s1-", "s1_", "-", "_", "-s1", "S1", "1", "0" * 64, "a" * 63),
    *("hls", "tick", "stage", "react", "snap", "blob", "chan", "init", "part", "seg"),
]
MEDIA = ["init.mp4", "part/0.0.m4s", "part/12.3.m4s", "seg/0.m4s", "seg/12.m4s"]
NODES = ["node-a", "node-0f3c9a1b", "stage-1", "a/b", "x:y"]  # a setting: any string


def test_the_names_are_spelled_as_deployments_store_them() -> None:
    assert blob_key("s1", "part/3.1.m4s") == "s1/part/3.1.m4s"
    assert hls_key("s1") == "hls:s1"
    assert lease_name("s1") == "tick:s1"
    assert node_url_key("node-a") == "node/node-a/url"
    assert stage_channel("s1") == "stage:s1"
    assert reaction_bucket("L1") == "react:L1"
    assert [k.value for k in RedisKind] == [
        *("snap", "presence", "react", "rate", "lease", "fence", "chan", "blob"),
        *("gone", "unique", "people", "audience", "heard"),
    ]
    assert redis_key("pnyx:", RedisKind.PRESENCE, "s1", 340_000_000) == (
        "pnyx:presence:s1:340000000"
    )
    assert redis_key("pnyx:", RedisKind.LEASE, lease_name("s1")) == "pnyx:lease:tick:s1"
    assert redis_key("p:", RedisKind.BLOB, blob_key("s1", "init.mp4")) == "p:blob:s1/init.mp4"
    assert redis_key("pnyx:", RedisKind.SNAP, "") == "pnyx:snap:"


def test_every_test_space_id_is_a_valid_one() -> None:
    assert all(valid_space(space) == space for space in SPACES)
    assert len(set(SPACES)) == len(SPACES)


def test_no_two_snapshots_share_a_key() -> None:
    """A space's room snapshot is keyed by the bare id, its playlist by ``hls_key``."""
    keys = [*SPACES, *(hls_key(s) for s in SPACES)]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("make", [lease_name, stage_channel, hls_key])
def test_one_name_per_space(make: Callable[[str], str]) -> None:
    assert len({make(s) for s in SPACES}) == len(SPACES)


def test_a_blob_belongs_to_its_space_and_to_no_other() -> None:
    for space, name in itertools.product(SPACES, MEDIA):
        key = blob_key(space, name)
        owners = [s for s in SPACES if blob_belongs(key, s)]
        assert owners == [space], key
    keys = [blob_key(s, n) for s, n in itertools.product(SPACES, MEDIA)]
    assert len(set(keys)) == len(keys)


def test_a_nodes_blob_belongs_to_no_space_that_is_made() -> None:
    for node in NODES:
        assert not any(blob_belongs(node_url_key(node), s) for s in SPACES)
    # The one valid id that would own it is never made: ids are twelve characters.
    assert blob_belongs(node_url_key("node-a"), valid_space("node"))
    assert len(valid_space("node")) != 12


@pytest.mark.parametrize(
    "forged",
    [
        "hls:s1",  # would be the playlist snapshot of s1
        "s1/part",  # would own s1's parts
        "s1:1",  # would take s1's presence buckets in Redis
        "",
        "a" * 65,
        "s 1",
        "s1/../s2",
    ],
)
def test_an_id_that_could_forge_another_name_is_not_a_valid_space(forged: str) -> None:
    with pytest.raises(PnyxError):
        valid_space(forged)


def test_redis_keys_of_different_kinds_never_collide() -> None:
    args = [*SPACES, *(hls_key(s) for s in SPACES), *(blob_key(s, "init.mp4") for s in SPACES)]
    assert all(":" not in kind for kind in RedisKind)
    seen: dict[str, tuple[RedisKind, str]] = {}
    for kind, arg in itertools.product(RedisKind, args):
        key = redis_key("pnyx:", kind, arg)
        assert key.startswith(f"pnyx:{kind}:")
        assert seen.setdefault(key, (kind, arg)) == (kind, arg), key


def test_a_spaces_buckets_are_not_another_spaces() -> None:
    """``presence:<space>:<bucket>``: with no ':' in ids, the bucket is always the last
    part, so one space's buckets never read as another's."""
    keys = {
        redis_key("pnyx:", kind, s, bucket): s
        for kind in (RedisKind.PRESENCE, RedisKind.REACT)
        for s in SPACES
        for bucket in (0, 1, 12, -1, 340_000_000)
    }
    for key, space in keys.items():
        assert key.rsplit(":", 2)[1] == space
