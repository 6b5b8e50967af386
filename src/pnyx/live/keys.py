"""Every name in the live state: the one place keys and channels are spelled.

What the services ask the live state for (the ``key``/``name``/``channel``/``space``
arguments of ``base.LiveState``):

=====================  =================  ==============================================
name                   kind               what, who writes it
=====================  =================  ==============================================
``<space>``            snapshot           the room and stats parts (spaces, ticker)
``hls:<space>``        snapshot           the playlist state (:func:`hls_key`, origin)
``<space>/<name>``     blob               the space's media (:func:`blob_key`, origin)
``node/<node>/url``    blob               a stage node's URL (:func:`node_url_key`)
``tick:<space>``       lease              the stage lease: the node that ticks and mixes
                                          the space (:func:`lease_name`)
``stage:<space>``      channel            stage events (:func:`stage_channel`)
``react:<listener>``   rate-limit bucket  a listener's reactions (:func:`reaction_bucket`)
``create:<handle>``    rate-limit bucket  an account's new spaces (:func:`space_create_bucket`)
``limit:<kind>:<key>``  rate-limit bucket  sign-ins, sign-ups (:func:`rate_limit_bucket`)
``account/<h>/ended``  blob               sign-out everywhere: tokens of account ``h``
                                          issued up to the time (ms) it holds are refused
                                          (:func:`sessions_ended_key`)
``token/<jti>/ended``  blob               one signed-out account token
                                          (:func:`token_ended_key`)
=====================  =================  ==============================================

A space's presence and reactions are addressed by the bare space id; each implementation
keeps them apart from its snapshot. Space ids are made by ``secrets.token_urlsafe(9)``
(twelve of ``[A-Za-z0-9_-]``) and checked against ``[A-Za-z0-9_-]{1,64}``
(``media.recording.valid_space``) or looked up in the store where they come in. With no
``:`` and no ``/`` in an id, a bare space id is never ``hls:…`` and a space's blobs are
never another space's (``drop_space`` and ``expire_space`` rely on that; both also take the
space's other snapshots, :func:`snapshot_keys`). Three valid ids are special: spaces
called ``node``, ``account`` or ``token`` would own the nodes' or the sessions' blobs;
none is ever made (ids have twelve characters).

How ``redis.RedisLiveState`` (and its scripts, ``redis_scripts.py``) lays them out, each
under its ``key_prefix`` (default ``pnyx:``) by :func:`redis_key`:

==============================  ==========================================================
``snap:<space>``                hash: ``v`` snapshot version, ``p:<part>`` JSON,
                                ``pv:<part>`` part version (written by ``PUT_PART_LUA``);
                                no TTL while the space runs, then ``expire_space``'s (or
                                the one ``put_part`` was given: an ended room)
``presence:<space>:<bucket>``   HyperLogLog of the members heard in that bucket
``gone:<space>:<bucket>``       HyperLogLog of the members marked gone in that bucket
``unique:<space>``              HyperLogLog of every member ever heard (a week's TTL)
``people:<space>``              HyperLogLog of the people who joined (``@handle``,
                                ``~<client id>`` or a listener id; a week's TTL)
``audience:<space>``            sorted set ``"<listener> <handle>"`` -> join time (the
                                newest ``audience_list_cap`` signed-in listeners)
``heard:<space>``               sorted set, the same members -> last heard (joins and
                                batched heartbeats, ``ZADD XX``; written with the above
                                by ``AUDIENCE_ADD_LUA``, pruned by ``AUDIENCE_PAGE_LUA``)
``react:<space>:<second>``      hash: emoji -> count in that second
``rate:<key>``                  hash: ``tokens``, ``ts`` (a token bucket)
``lease:<name>``                ``<holder>|<token>`` with a PX expiry
``fence:<name>``                counter handing out fencing tokens (no TTL, until an
                                ``expire_space`` names the lease: never taken again)
``blob:<key>``                  bytes with a PX expiry
==============================  ==========================================================

Channels: ``snap:<space>`` carries the new version after every snapshot change;
``chan:<channel>`` carries ``publish``ed messages.

These strings are what running deployments share through Redis: changing one strands the
data of nodes still on the old spelling (tests/contract/test_redis_live_state.py pins
the layout).
"""

from __future__ import annotations

from enum import StrEnum


# -- what the services name ---------------------------------------------------------------
def blob_key(space: str, name: str) -> str:
    """The key of a blob that belongs to ``space``: ``drop_space(space)`` removes it.
    One whose TTL may be longer than an ended space's retention is named in
    ``services.spaces.lasting_blobs`` (or its TTL counted in ``media_blob_ttl_s``)."""
    return f"{space}/{name}"


def blob_belongs(key: str, space: str) -> bool:
    """Whether blob ``key`` belongs to ``space`` (was made by ``blob_key(space, …)``)."""
    return key.startswith(blob_key(space, ""))


def analytics_key(space: str) -> str:
    """The blob of a live space's running figures (``services/analytics.py``)."""
    return blob_key(space, "analytics")


def hls_key(space: str) -> str:
    """The snapshot key of a space's playlist state (apart from its room snapshot)."""
    return f"hls:{space}"


def snapshot_keys(space: str) -> tuple[str, ...]:
    """Every snapshot key that belongs to ``space``: its own (room, stats) and its
    playlist state's (the captions are rendered from it). ``drop_space`` and
    ``expire_space`` take them all; a new snapshot of a space is added here."""
    return (space, hls_key(space))


def lease_name(space: str) -> str:
    """The stage lease: its holder ticks the space and runs its media."""
    return f"tick:{space}"


def node_url_key(node_id: str) -> str:
    """The blob where a stage node advertises its base URL."""
    return f"node/{node_id}/url"


def stage_channel(space: str) -> str:
    """The channel of a space's stage events."""
    return f"stage:{space}"


def reaction_bucket(listener: str) -> str:
    """The rate-limit bucket of one listener's reactions."""
    return f"react:{listener}"


def space_create_bucket(handle: str) -> str:
    """The rate-limit bucket of the spaces one account creates."""
    return f"create:{handle}"


def rate_limit_bucket(kind: str, key: str) -> str:
    """The bucket of one rate limit (``services.ratelimits.RateKind``) for one key (a
    handle, a client address)."""
    return f"limit:{kind}:{key}"


def sessions_ended_key(handle: str) -> str:
    """The blob saying until when (ms since the epoch) an account's tokens are refused."""
    return f"account/{handle}/ended"


def token_ended_key(jti: str) -> str:
    """The blob saying one account token was signed out."""
    return f"token/{jti}/ended"


# -- how the Redis implementation stores them ---------------------------------------------
class RedisKind(StrEnum):
    """The first part of every key and channel ``RedisLiveState`` uses."""

    SNAP = "snap"  # snapshot hashes, and their change notifications
    PRESENCE = "presence"
    REACT = "react"
    RATE = "rate"
    LEASE = "lease"
    FENCE = "fence"
    CHAN = "chan"  # channels of ``publish``/``subscribe``
    BLOB = "blob"
    GONE = "gone"  # presence_leave_many, per bucket like presence
    UNIQUE = "unique"  # one HyperLogLog per space: everyone ever added
    PEOPLE = "people"  # one HyperLogLog per space: the people who joined (accounts, clients)
    AUDIENCE = "audience"  # the capped sorted set of recent signed-in listeners (join time)
    HEARD = "heard"  # the same members, scored by when each was last heard


def redis_key(prefix: str, kind: RedisKind, *parts: str | int) -> str:
    """``<prefix><kind>:<part>:<part>…``, e.g. ``pnyx:presence:<space>:<bucket>``."""
    return prefix + ":".join(str(p) for p in (kind, *parts))
