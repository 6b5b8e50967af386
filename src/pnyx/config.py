"""One frozen, typed configuration, read once (docs/conventions.md, rule 13).

Precedence, lowest first: built-in defaults < TOML file (``--config`` or ``PNYX_CONFIG``)
< environment (``PNYX_<FIELD>``, e.g. ``PNYX_MAX_SPEAKERS=8``) < command-line flags.
Unknown keys and bad values fail loudly at start-up. ``config.example.toml`` lists every
setting with its default.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pnyx.errors import ErrorKind, PnyxError
from pnyx.live.redis_url import check_redis_url
from pnyx.media.hls import SEGMENT_AUS

ENV_PREFIX = "PNYX_"
LINK_SECRET = re.compile(r"[A-Za-z0-9_.~-]{32,256}")
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "", "[::]"})  # listen on every address


# ICE server URLs (RFC 7064, RFC 7065): a host name, an IPv4 address or a bracketed IPv6
# one, an optional port; TURN may name its transport. Nothing a Link header must escape.
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
_PORT = r"(?::[0-9]{1,5})?"
_STUN_URL = re.compile(rf"stuns?:{_HOST}{_PORT}")
_TURN_URL = re.compile(rf"turns?:{_HOST}{_PORT}(?:\?transport=(?:udp|tcp))?")


def _ip(text: str, expected: str) -> None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address: expected {expected}") from None


class NodeRole(StrEnum):
    API = "api"
    STAGE = "stage"
    BOTH = "both"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # -- where and how --------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    data_dir: Path = Path("data")
    database: str | None = None  # default: SQLite file in data_dir
    redis: str | None = None  # default: in-process memory live state
    role: NodeRole = NodeRole.BOTH
    node_id: str = ""  # default: random per process
    secret: str | None = None  # token signing key; default: generated into data_dir
    link_secret: str | None = None  # signs private spaces' links; shared with the edges
    log_level: str = "info"
    serve_web: bool = True
    serve_docs: bool = True  # the API documentation at /docs (its assets ship with Pnyx)

    # -- accounts and tokens --------------------------------------------------------
    token_ttl_s: int = Field(7 * 24 * 3600, gt=0)
    listener_token_ttl_s: int = Field(6 * 3600, gt=0)
    min_password_len: int = Field(8, ge=1)
    link_ttl_s: int = Field(6 * 3600, ge=60)  # a private space's signed links live this long
    link_step_s: int = Field(300, ge=1, le=3600)  # their expiry is rounded up to this step
    # zxcvbn's score a new password needs: 0 anything, 3 "safely unguessable" (at least
    # 10^8 guesses), 4 at least 10^10.
    password_min_score: int = Field(3, ge=0, le=4)
    argon2_concurrency: int = Field(0, ge=0, le=256)  # hashes at once; 0: the CPU count
    argon2_queue: int = Field(64, ge=0, le=100_000)  # waiting for a slot; above: 503 busy
    session_check_s: float = Field(2.0, ge=0, le=60)  # a process trusts a revocation read
    session_cache_entries: int = Field(100_000, ge=1, le=10_000_000)  # that many, at most
    # CIDRs of the proxies (the edges) whose X-Forwarded-For is believed; the client is the
    # right-most address in it that is not one of them. Empty: the peer's address.
    trusted_proxies: list[str] = Field(default_factory=list)

    # -- rate limits (token buckets in the live state, shared by every node) --------------
    signin_handle_burst: int = Field(10, ge=1, le=100_000)  # sign-ins per handle at once
    signin_handle_per_min: float = Field(2.0, gt=0, le=100_000)  # then this many a minute
    signin_address_burst: int = Field(30, ge=1, le=100_000)  # sign-ins per client address
    signin_address_per_min: float = Field(10.0, gt=0, le=100_000)
    signup_address_burst: int = Field(5, ge=1, le=100_000)  # new accounts per client address
    signup_address_per_min: float = Field(0.5, gt=0, le=100_000)
    profile_edit_burst: int = Field(10, ge=1, le=100_000)  # profile edits per account at once
    profile_edit_per_min: float = Field(6.0, gt=0, le=100_000)  # then this many a minute

    # -- the stage ------------------------------------------------------------------
    max_cohosts: int = Field(2, ge=0)
    max_speakers: int = Field(10, ge=0)
    host_grace_s: float = Field(300.0, ge=0)
    max_title_len: int = Field(120, gt=0)
    stage_presence_ttl_s: float = Field(15.0, gt=0)  # a stage socket's presence, unrefreshed
    scheduled_expiry_s: float = Field(3600.0, ge=0)  # not started this long after the slot
    expiry_sweep_s: float = Field(60.0, gt=0)  # how often stage nodes look for them
    expiry_sweep_batch: int = Field(100, ge=1, le=10_000)  # cancelled per pass at most
    # An ended or cancelled space's live state (room, playlist, counters, media) stays
    # this long, so open pages and players learn it ended, then goes (expire_space)
    ended_live_retention_s: float = Field(600.0, ge=1, le=604_800)

    # -- what one account may host (services/spaces.py HostLimits) -----------------------
    max_live_spaces_per_account: int = Field(1, ge=1, le=1000)  # live at once (409 beyond)
    max_scheduled_spaces_per_account: int = Field(20, ge=0, le=10_000)  # scheduled at once
    space_creations_per_hour: float = Field(30.0, gt=0, le=1_000_000)  # new spaces (429)
    space_creation_burst: float = Field(10.0, ge=1, le=1_000_000)  # of them at once

    # -- clips (services/clips.py) ---------------------------------------------------
    clip_default_s: float = Field(30.0, ge=2, le=60)  # a clip's length when none is asked
    clip_max_s: float = Field(60.0, ge=2, le=60)  # the longest clip one may ask for
    clips_per_hour: float = Field(30.0, gt=0, le=1_000_000)  # per account (429 beyond)
    clip_burst: float = Field(5.0, ge=1, le=1_000_000)  # of them at once

    # -- search and discovery (services/directory.py) ----------------------------------
    live_audience_candidates: int = Field(200, ge=1, le=5000)  # live spaces ranked by audience

    # -- listeners ------------------------------------------------------------------
    heartbeat_s: float = Field(15.0, gt=0)
    listener_lean_paths: bool = True  # plain heartbeats, anonymous joins: before the framework
    presence_bucket_s: float = Field(5.0, gt=0)
    presence_window_s: float = Field(45.0, gt=0)
    # An edge waits for the origin at most 16 s (pnyx.edge_reads LONGEST_ORIGIN_WAIT_S), so a
    # long-poll or a blocking reload is held here no longer than 15 s.
    state_wait_s: float = Field(15.0, gt=0, le=15)
    state_tick_s: float = Field(1.0, gt=0)
    state_keepalive_s: float = Field(12.0, ge=0)  # new state version at least this often
    big_audience_stats_s: float = Field(5.0, ge=0)  # counts/reactions cadence, big audiences
    reactions_window_s: int = Field(5, gt=0)
    reaction_rate: float = Field(5.0, gt=0)  # per listener, tokens per second
    reaction_burst: float = Field(10.0, gt=0)
    space_cache_s: int = Field(1, ge=0)
    share_page_cache_s: int = Field(30, ge=0, le=3600)  # max-age of /s/{id}, /u/{handle}
    # The site's address as people open it (https://spaces.example.org), for the absolute
    # og:url of share previews; None: previews carry no og:url (never the request's Host).
    share_base_url: str | None = None
    presence_flush_s: float = Field(0.2, gt=0, le=5)  # joins/heartbeats written in batches
    snapshot_cache_s: float = Field(0.5, ge=0, le=5)  # a process re-reads a space this often
    low_latency_max_listeners: int = Field(2000, ge=0)  # above: standard latency (segments)
    audience_list_cap: int = Field(1000, ge=10, le=100_000)  # recent signed-in listeners kept
    analytics_sample_s: float = Field(10.0, gt=0, le=3600)  # timeline resolution, at first
    analytics_max_points: int = Field(360, ge=10, le=10_000)  # timeline points (then coarser)
    analytics_flush_s: float = Field(5.0, gt=0, le=300)  # figures saved to the live state
    # Replay plays and downloads are counted from the replay page's beacon (POST …/replay/
    # {event}), never from the cacheable GETs: limited per client address and per space.
    replay_count_address_burst: int = Field(20, ge=1, le=100_000)  # beacons per address
    replay_count_address_per_min: float = Field(30.0, gt=0, le=100_000)
    replay_count_space_burst: int = Field(500, ge=1, le=1_000_000)  # beacons per space
    replay_count_space_per_s: float = Field(50.0, gt=0, le=100_000)  # store writes, at most

    # -- admission control (per process; the stage is never refused) ---------------------
    max_inflight: int = Field(256, ge=1)  # admission-controlled requests in flight at once
    admit_captions: float = Field(0.4, gt=0, le=1)  # pause captions (never after reactions)
    admit_reactions: float = Field(0.5, gt=0, le=1)  # shed reactions from this load on
    admit_heartbeats: float = Field(0.65, gt=0, le=1)
    admit_joins: float = Field(0.8, gt=0, le=1)
    admit_listener_actions: float = Field(0.95, gt=0, le=1)
    admit_join_rate: float = Field(300.0, ge=0)  # joins/s a process accepts (0: no rate cap)
    admit_join_rate_api: float = Field(1000.0, ge=0)  # ... on an API-only process (role api)
    admission_hold_s: float = Field(60.0, ge=0)  # heartbeat interval stays raised this long
    admission_retry_after_s: int = Field(1, ge=1)  # Retry-After of a refusal
    admission_jitter: float = Field(0.5, ge=0, le=10)  # Pnyx-Retry-Jitter: add up to this

    # -- limits on input --------------------------------------------------------------
    max_body_bytes: int = Field(16 * 1024, gt=0)
    max_sdp_bytes: int = Field(64 * 1024, gt=0)
    ws_max_message_bytes: int = Field(4 * 1024, gt=0)
    ws_ping_s: float = Field(20.0, gt=0)
    ws_idle_timeout_s: float = Field(60.0, gt=0)
    ws_auth_timeout_s: float = Field(10.0, gt=0)
    ws_queue_depth: int = Field(256, gt=0, le=65_536)  # per subscription to stage events

    # -- leases ---------------------------------------------------------------------
    lease_ttl_s: float = Field(1.0, gt=0)  # a dead stage node's spaces move after this
    lease_renew_s: float = Field(0.25, gt=0)  # held leases renewed this often (no store read)

    # -- follower notifications -------------------------------------------------------
    fanout_threshold: int = Field(10_000, ge=0)  # above: followers see the host on read
    fanout_batch: int = Field(1000, ge=1, le=10_000)  # followers paged/inserted per batch
    fanout_queue: int = Field(1000, ge=1)  # pending fan-out jobs per node (oldest dropped)
    fanout_big_host_ttl_s: float = Field(60.0, gt=0)  # readers trust a host's side this long
    remind_before_s: float = Field(600.0, gt=0)  # "starting soon" this long before
    notify_poll_s: float = Field(30.0, ge=1, le=3600)  # clients ask for news this often
    reminders_per_hour: float = Field(60.0, gt=0)  # "remind me" requests per account and hour

    # -- browser push (Web Push with VAPID; opt-in per browser) ----------------------------
    vapid_private_key: str | None = None  # base64url P-256 key; default: generated in data_dir
    vapid_subject: str = "mailto:admin@localhost"  # who push services contact about us
    push_allow_http: bool = False  # accept http:// push endpoints (tests; never in production)
    push_queue: int = Field(10_000, ge=1)  # pushes waiting per node (oldest dropped)
    push_timeout_s: float = Field(5.0, gt=0, le=60)  # one push service request, at most
    push_ttl_s: int = Field(600, ge=0, le=86_400)  # how long a push service keeps a message
    push_per_user: int = Field(5, ge=1, le=50)  # browsers pushed to per account and event
    # Hosts above fanout_threshold (fan-out on read): a background job pages their
    # followers who have push subscriptions into the push queue (services/push_fanout.py).
    push_fanout_batch: int = Field(500, ge=1, le=10_000)  # subscribed followers per page
    push_fanout_per_s: float = Field(1000.0, gt=0, le=1_000_000)  # accounts paged a second
    push_fanout_queue: int = Field(100, ge=1, le=100_000)  # pending jobs (oldest dropped)

    # -- webhooks (services/webhooks.py, docs/webhooks.md) ------------------------------
    max_webhooks_per_account: int = Field(10, ge=1, le=100)  # endpoints one account registers
    webhook_allow_private: bool = False  # deliver to loopback/private/link-local addresses
    webhook_timeout_s: float = Field(5.0, gt=0, le=60)  # one delivery attempt, all included
    # Waits before each retry after a failed attempt; one more failure: given up ("failed").
    webhook_retries_s: list[float] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0]
    )
    webhook_jitter: float = Field(0.2, ge=0, le=1)  # each wait is scaled by 1 ± this at random
    webhook_poll_s: float = Field(1.0, gt=0, le=60)  # a node looks for due deliveries this often
    webhook_batch: int = Field(50, ge=1, le=1000)  # deliveries one node claims at a time
    webhook_concurrency: int = Field(8, ge=1, le=256)  # attempts in flight per node
    webhook_keep_s: float = Field(7 * 86_400.0, ge=0)  # delivered/failed rows kept this long
    webhook_test_burst: int = Field(5, ge=1, le=100_000)  # test events per account at once
    webhook_test_per_min: float = Field(6.0, gt=0, le=100_000)  # then this many a minute

    # -- media (stage node and origin) --------------------------------------------------
    public_url: str | None = None  # how other nodes reach this one; default http://host:port
    aac_bitrate: int = Field(64_000, ge=16_000, le=320_000)
    mix_queue_frames: int = Field(25, ge=1, le=500)  # per speaker: packets to the mix thread
    jitter_min_frames: int = Field(0, ge=0, le=10)  # per speaker: least playout delay, 20 ms
    speaking_threshold_dbov: float = Field(-45.0, ge=-127, le=0)
    hls_block_s: float = Field(6.0, gt=0, le=15)  # longest blocking reload (state_wait_s)
    # AAC frames (21.33 ms) per LL-HLS part; a divisor of 90, so segments stay 1.92 s
    hls_part_frames: int = Field(6, ge=3, le=45)
    media_part_ttl_s: float = Field(60.0, gt=0)  # parts in the live state
    media_segment_ttl_s: float = Field(300.0, gt=0)  # segments in the live state
    recording_queue_segments: int = Field(900, ge=1)  # per space awaiting the store
    recording_retry_s: float = Field(1.0, gt=0, le=60)  # a failed recording write, again
    recording_close_s: float = Field(5.0, ge=0, le=60)  # shutdown: pending writes may land
    # How long an edge keeps a replay object (s-maxage) before asking the origin again:
    # a recording its host deleted is gone from every edge this long after. Browsers
    # still get the year (max-age, immutable).
    replay_edge_ttl_s: int = Field(600, ge=1, le=31_536_000)
    mix_minus_queue_frames: int = Field(5, ge=1, le=500)  # per speaker, back to them
    mix_minus_target_frames: int = Field(2, ge=1, le=500)  # their send queue's target depth
    mix_minus_bitrate: int = Field(64_000, ge=6_000, le=510_000)  # Opus, mono, per speaker
    mix_minus_complexity: int = Field(5, ge=0, le=10)  # Opus encoder effort (media/opus.py)
    encoder_queue_frames: int = Field(50, ge=1, le=5000)  # program frames awaiting the encoder
    publish_connect_timeout_s: float = Field(20.0, gt=0)  # ICE must connect within this
    publish_idle_timeout_s: float = Field(5.0, gt=0)  # no audio this long: the peer is gone
    node_url_ttl_s: float = Field(30.0, gt=0)  # a node's advertised URL in the live state
    relay_connect_timeout_s: float = Field(1.0, gt=0, le=30)  # reaching the stage node
    relay_timeout_s: float = Field(10.0, gt=0, le=60)  # its answer to a relayed publish

    # -- the front row: the program as Opus over WebSocket (media/frontrow.py) ----------
    # Each edge's nchan publisher location, e.g. "http://edge1:8080/frontrow/pub/" (the
    # space id is appended); empty: no front row. One stream per space per edge.
    frontrow_publish_urls: list[str] = Field(default_factory=list)
    frontrow_batch_frames: int = Field(3, ge=1, le=3)  # 20 ms Opus frames per message
    frontrow_bitrate: int = Field(64_000, ge=6_000, le=510_000)  # Opus, mono, per space
    frontrow_max_listeners: int = Field(500, ge=0, le=10_000_000)  # the default up to this
    frontrow_publish_timeout_s: float = Field(1.0, gt=0, le=30)  # connect or write to an edge

    # -- live captions (media/captions.py, media/caption_worker.py) ----------------------
    captions_enabled: bool = True  # this node recognises its captioned spaces' speech
    captions_default: bool = True  # a space created without saying is captioned
    captions_engine: Literal["whisper"] = "whisper"  # media/recognizer.py
    captions_model: str = "tiny.en"  # the bundled model, or a CTranslate2 model's folder
    captions_language: str = Field("en", pattern=r"^[a-z]{2,3}$")
    captions_compute_type: Literal["int8", "int8_float32", "float32"] = "int8"
    captions_threads: int = Field(1, ge=1, le=64)  # the recogniser's CPU threads per node
    captions_window_s: float = Field(3.0, ge=1.0, le=30.0)  # longest window of speech
    captions_min_window_s: float = Field(1.0, ge=0.2, le=30.0)  # cut at a pause after this
    captions_pause_s: float = Field(0.3, ge=0.04, le=5.0)  # quiet that makes a pause
    captions_queue_windows: int = Field(8, ge=1, le=1000)  # per node, oldest dropped
    captions_max_lag_s: float = Field(8.0, gt=0, le=120)  # a window older is dropped

    # -- ICE: how speakers reach the stage node (docs/ice.md) ---------------------------
    ice_addresses: list[str] = Field(default_factory=list)  # gather on these; []: every one
    ice_port_min: int = Field(0, ge=0, le=65535)  # UDP ports of the node's candidates;
    ice_port_max: int = Field(0, ge=0, le=65535)  # both 0: any port the system picks
    ice_nat_1_1: list[str] = Field(default_factory=list)  # "PUBLIC" or "PRIVATE=PUBLIC"
    ice_keep_private: bool = False  # with ice_nat_1_1: advertise PRIVATE too, not only PUBLIC
    ice_allowed_networks: list[str] = Field(default_factory=lambda: ["0.0.0.0/0", "::/0"])
    ice_allow_own_addresses: bool = False  # check speakers' candidates on this machine
    ice_stun_urls: list[str] = Field(default_factory=list)  # for clients: stun:host:port
    ice_turn_urls: list[str] = Field(default_factory=list)  # turn:host:port?transport=udp
    ice_turn_secret: str | None = None  # coturn's static-auth-secret (use-auth-secret)
    ice_turn_ttl_s: int = Field(86_400, ge=60, le=7 * 86_400)  # minted credentials live

    @field_validator(
        "ice_addresses",
        "ice_nat_1_1",
        "ice_allowed_networks",
        "ice_stun_urls",
        "ice_turn_urls",
        "trusted_proxies",
        "webhook_retries_s",
        "frontrow_publish_urls",
        mode="before",
    )
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        """A list from TOML, or a comma-separated string (the environment)."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("frontrow_publish_urls")
    @classmethod
    def _check_frontrow_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"a front-row publisher URL must be http(s)://…: {url!r}")
        return value

    @field_validator("ice_addresses")
    @classmethod
    def _check_addresses(cls, value: list[str]) -> list[str]:
        for item in value:
            _ip(item, "an IP address of this machine, e.g. 10.0.0.11")
        return value

    @field_validator("ice_nat_1_1")
    @classmethod
    def _check_nat(cls, value: list[str]) -> list[str]:
        for item in value:
            private, _, public = item.rpartition("=")
            if private:
                _ip(private, "PRIVATE=PUBLIC, e.g. 10.0.0.11=203.0.113.7")
            _ip(public, "PUBLIC or PRIVATE=PUBLIC, e.g. 203.0.113.7")
        return value

    @field_validator("ice_allowed_networks")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not a network in CIDR notation (e.g. 10.0.0.0/8, ::/0)"
                ) from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an address or a network in CIDR notation (e.g."
                    " 10.0.0.5, 10.0.0.0/24)"
                ) from None
        return value

    @field_validator("ice_stun_urls")
    @classmethod
    def _check_stun(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _STUN_URL.fullmatch(item):
                raise ValueError(
                    f"{item!r} is not a STUN URL (RFC 7064): stun:HOST[:PORT] or stuns:HOST[:PORT]"
                )
        return value

    @field_validator("ice_turn_urls")
    @classmethod
    def _check_turn(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _TURN_URL.fullmatch(item):
                raise ValueError(
                    f"{item!r} is not a TURN URL (RFC 7065): turn:HOST[:PORT][?transport=udp|tcp]"
                    " or turns:…"
                )
        return value

    @field_validator("webhook_retries_s")
    @classmethod
    def _check_retries(cls, value: list[float]) -> list[float]:
        if len(value) > 20:
            raise ValueError("at most 20 retries")
        for wait in value:
            if not 0 < wait <= 7 * 86_400:
                raise ValueError(f"{wait!r}: a wait before a retry is over 0 and at most 7 days")
        return value

    @field_validator("redis")
    @classmethod
    def _check_redis(cls, value: str | None) -> str | None:
        """A bad live-state URL (a Sentinel one above all) fails here, at start-up."""
        if value:
            try:
                check_redis_url(value)
            except PnyxError as exc:
                raise ValueError(exc.message) from exc
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.presence_window_s < self.presence_bucket_s:
            raise ValueError("presence_window_s must be at least presence_bucket_s")
        if self.clip_default_s > self.clip_max_s:
            raise ValueError("clip_default_s must be at most clip_max_s")
        if 2 * self.lease_renew_s > self.lease_ttl_s:
            raise ValueError(
                "lease_renew_s must be at most half of lease_ttl_s (a lease must survive a "
                "missed renewal)"
            )
        if SEGMENT_AUS % self.hls_part_frames:
            raise ValueError(
                f"hls_part_frames must divide {SEGMENT_AUS} (segments of 1.92 s): one of "
                + ", ".join(str(n) for n in range(3, 46) if SEGMENT_AUS % n == 0)
            )
        if self.mix_minus_target_frames > self.mix_minus_queue_frames:
            raise ValueError("mix_minus_target_frames must not exceed mix_minus_queue_frames")
        shed = [
            self.admit_reactions,
            self.admit_heartbeats,
            self.admit_joins,
            self.admit_listener_actions,
        ]
        if shed != sorted(shed):
            raise ValueError(
                "admit_reactions <= admit_heartbeats <= admit_joins <= admit_listener_actions"
                " (the shedding order)"
            )
        if (
            self.public_url is None
            and self.host in WILDCARD_HOSTS
            and self.redis is not None
            and self.role != NodeRole.API
        ):
            raise ValueError(
                f"host {self.host!r} listens on every address, and other nodes cannot be sent"
                " there: set public_url (PNYX_PUBLIC_URL), the URL the other nodes reach this"
                " one at, e.g. http://10.0.0.11:8000"
            )
        if self.public_url is not None and urlsplit(self.public_url).hostname in WILDCARD_HOSTS:
            raise ValueError("public_url must name an address other nodes can reach, not 0.0.0.0")
        if (self.ice_port_min == 0) != (self.ice_port_max == 0):
            raise ValueError("set both ice_port_min and ice_port_max (or neither: any port)")
        if self.ice_port_min > self.ice_port_max:
            raise ValueError("ice_port_min must not exceed ice_port_max")
        if self.ice_turn_urls and not self.ice_turn_secret:
            raise ValueError(
                "ice_turn_urls needs ice_turn_secret: the TURN server's static-auth-secret, from"
                " which each speaker's credentials are minted"
            )
        if self.ice_turn_secret is not None and len(self.ice_turn_secret.encode()) < 16:
            raise ValueError("ice_turn_secret must be at least 16 bytes")
        if self.secret is not None and len(self.secret.encode()) < 32:
            raise ValueError("secret must be at least 32 bytes (HS256 key length)")
        if self.link_secret is not None and not LINK_SECRET.fullmatch(self.link_secret):
            raise ValueError(
                "link_secret must be 32 to 256 characters of A-Z a-z 0-9 - _ . ~ (it is"
                " written into the edge's nginx configuration)"
            )
        return self

    @property
    def advertised_url(self) -> str:
        """How other nodes reach this one. Never a wildcard address: a single node (memory
        live state) listening on every address is reached on loopback; many nodes must say
        (validated above)."""
        if self.public_url is not None:
            return self.public_url
        host = "127.0.0.1" if self.host in WILDCARD_HOSTS else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite+aiosqlite:///{self.data_dir / 'pnyx.db'}"


_FIELDS = set(Settings.model_fields)


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or key == "PNYX_CONFIG":
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in _FIELDS:
            raise PnyxError(ErrorKind.INVALID, f"unknown setting in environment: {key}")
        out[name] = value
    return out


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings once, failing loudly (PnyxError INVALID) on bad input."""
    env = os.environ if env is None else env
    merged: dict[str, Any] = {}
    path = config_file or env.get("PNYX_CONFIG")
    if path:
        try:
            merged.update(tomllib.loads(Path(path).read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise PnyxError(ErrorKind.INVALID, f"cannot read config file {path}: {exc}") from exc
    merged.update(_from_env(env))
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return Settings(**merged)
    except ValidationError as exc:
        # Named by field and reason, never echoing the value: it may be a secret or a URL
        # with a password in it.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise PnyxError(ErrorKind.INVALID, f"bad configuration: {problems}") from None


def signing_secret(settings: Settings) -> str:
    """The configured secret, or one generated once and kept in the data dir (single node).
    Several nodes must share ``secret`` (or ``PNYX_SECRET``)."""
    return settings.secret or _kept_secret(settings.data_dir / "secret")


def link_secret(settings: Settings) -> str:
    """The key that signs private spaces' links (services/links.py), or one generated once
    into ``data_dir/link_secret``. Every node and every edge must share it: set
    ``link_secret`` (``PNYX_LINK_SECRET``) on the nodes and give the edge the same value in
    a file (``pnyx edge-config --link-secret-file``)."""
    return settings.link_secret or _kept_secret(settings.data_dir / "link_secret")


def _kept_secret(path: Path) -> str:
    """The secret kept in ``path``, made on first use: 48 random bytes written to a
    temporary file that is private (0600) from its creation, then linked into place. No
    other user can read it at any moment, nobody reads it half-written, and processes
    starting at once on one data dir agree on the first one linked."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as draft_file:
                os.fchmod(fd, 0o600)  # whatever the umask
                draft_file.write(secrets.token_urlsafe(48))
                draft_file.flush()
                os.fsync(fd)
            with contextlib.suppress(FileExistsError):  # made by another process meanwhile:
                os.link(draft, path)  # theirs is the one
        finally:
            draft.unlink(missing_ok=True)
    value = path.read_text().strip()
    if len(value.encode()) < 32:
        raise PnyxError(
            ErrorKind.INVALID,
            f"{path} holds fewer than 32 bytes, too short a key: delete it to have a new "
            "one made (signing out everyone), or set the secret in the configuration",
        )
    return value
