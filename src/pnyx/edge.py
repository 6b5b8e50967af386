"""The nginx configuration of an edge in front of Pnyx nodes (``pnyx edge-config``).

What we own at the edge is that every listener read is cacheable and collapsible: one
origin request per object per edge, however many listeners wait for it. The rules:

- media parts, segments, init and recordings: immutable, cached as long as the origin
  says (a year), keyed by URI. A replay (``replay.m3u8``, ``rec/…``, ``recording.m4a``)
  is only ever answered 200 once its recording is finished, the same bytes from every
  node (they come from the durable store); before that the origin answers 409 or 503
  ``not_ready`` (cached at most a second), so no edge ever holds a partial recording;
- live playlists (``live.m3u8?_HLS_msn=…&_HLS_part=…``) and the state long-poll
  (``state?after=V``): keyed by URI *and* query, so every listener waiting on the same
  version shares one upstream request; ``proxy_cache_lock`` holds the others until it
  answers — with lock timeouts longer than the longest origin wait (blocking reload,
  state long-poll), or nginx would send the waiters upstream after 5 s; and with
  ``proxy_cache_min_uses 0``: nginx counts the requests for an object that is still being
  fetched in a 10-bit field, and every 1,024th of them, seeing the count wrap to 0, is
  sent upstream past the lock (about one extra origin request per 1,024 listeners per
  version); with a minimum of 0 the wrapped count still qualifies;
- ``GET /v1/spaces/{id}``: cached for the second the origin allows;
- stale copies of playlists and state are served while the origin fails or restarts
  (``proxy_cache_use_stale``), so listeners keep playing;
- anything with an ``Authorization`` header, every POST, and the stage WebSocket go
  straight through, never cached;
- ``/edge-status`` (from loopback only): nginx's connection counters, for monitoring;
- passive health checks: an upstream that fails ``max_fails`` times is skipped for
  ``fail_timeout``; idempotent reads are retried on the next upstream. Only a node that
  does not answer (connection refused or reset, timeout, a 502/504 from in between)
  counts as failed: a node's own ``503`` (a dependency such as Redis or PostgreSQL is
  briefly away, or the node sheds load with ``Retry-After``) is passed on to the client,
  or a stale copy served, and never marks the node down — every node would answer the
  same, and marking them all down turns a blip into ``502 no live upstreams`` for the
  ``fail_timeout`` after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LONGEST_ORIGIN_WAIT_S = 16  # state long-poll (state_wait_s ≤ 15 by default) + margin


@dataclass(frozen=True, slots=True)
class EdgeSpec:
    listen: str  # an nginx ``listen`` value: "8080", "127.0.0.1:8080", "[::]:8080"
    upstreams: tuple[str, ...]
    cache_dir: Path = Path("/var/cache/pnyx-edge")
    cache_size: str = "2g"
    max_fails: int = 2
    fail_timeout_s: int = 5
    standalone: bool = True  # a whole nginx.conf (events, http); else an http{} include


def _cached_location(pattern: str, *, lock_s: int, stale: bool, comment: str) -> str:
    stale_line = (
        "            proxy_cache_use_stale error timeout updating invalid_header "
        "http_500 http_502 http_503 http_504;\n"
        if stale
        else ""
    )
    return f"""
        # {comment}
        location ~ {pattern} {{
            limit_except GET HEAD {{ deny all; }}
            proxy_pass http://pnyx_origin;
            proxy_cache pnyx;
            proxy_cache_key $scheme$host$uri$is_args$args;
            proxy_cache_bypass $http_authorization;
            proxy_no_cache $http_authorization;
            proxy_cache_lock on;
            proxy_cache_min_uses 0;
            proxy_cache_lock_timeout {lock_s}s;
            proxy_cache_lock_age {lock_s}s;
            proxy_read_timeout {lock_s + 5}s;
            proxy_next_upstream error timeout http_502 http_504;
            proxy_next_upstream_tries 2;
{stale_line}        }}
"""


def render(spec: EdgeSpec) -> str:
    if not spec.upstreams:
        raise ValueError("at least one --upstream HOST:PORT is needed")
    servers = "\n".join(
        f"        server {u} max_fails={spec.max_fails} fail_timeout={spec.fail_timeout_s}s;"
        for u in spec.upstreams
    )
    locations = "".join(
        [
            _cached_location(
                r"^/media/[^/]+/(init\.mp4|part/|seg/|rec/)",
                lock_s=10,
                stale=False,
                comment="immutable media: parts, segments, init, recordings",
            ),
            _cached_location(
                r"^/media/[^/]+/[a-z]+\.m3u8$",
                lock_s=LONGEST_ORIGIN_WAIT_S,
                stale=True,
                comment="playlists (blocking reload: the same URL for every listener)",
            ),
            _cached_location(
                r"^/v1/spaces/[^/]+/state$",
                lock_s=LONGEST_ORIGIN_WAIT_S,
                stale=True,
                comment="the state long-poll: one upstream request per version per edge",
            ),
            _cached_location(
                r"^/v1/spaces/[^/]+/recording\.m4a$",
                lock_s=LONGEST_ORIGIN_WAIT_S,
                stale=False,
                comment="a finished recording's download (immutable; 503 until finished)",
            ),
            _cached_location(
                r"^/v1/spaces/[^/]+$",
                lock_s=5,
                stale=True,
                comment="a space's public description",
            ),
        ]
    )
    http = f"""
    # Generated by `pnyx edge-config`. Upstreams: {", ".join(spec.upstreams)}
    proxy_cache_path {spec.cache_dir} levels=1:2 keys_zone=pnyx:64m max_size={spec.cache_size}
                     inactive=10m use_temp_path=off;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ""      "";
    }}

    upstream pnyx_origin {{
{servers}
        keepalive 64;
        # Shorter than the nodes' own idle timeout (pnyx serve keeps connections 75 s),
        # so the edge never reuses a connection the node is closing: a 502 for whoever
        # was waiting on that object.
        keepalive_timeout 50s;
    }}

    server {{
        listen {spec.listen};

        proxy_http_version 1.1;
        proxy_set_header Host $http_host;
        proxy_set_header Connection "";
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_buffering on;
        add_header X-Cache-Status $upstream_cache_status always;
{locations}
        # nginx's connection counters (active, reading, writing, waiting) for monitoring
        location = /edge-status {{
            stub_status;
            allow 127.0.0.1;
            allow ::1;
            deny all;
        }}

        # the stage WebSocket: straight through, long-lived
        location ~ ^/v1/spaces/[^/]+/stage$ {{
            proxy_pass http://pnyx_origin;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
        }}

        # everything else (joins, heartbeats, reactions, stage actions, publish): uncached
        location / {{
            proxy_pass http://pnyx_origin;
            proxy_read_timeout 30s;
            client_max_body_size 128k;
        }}
    }}
"""
    if not spec.standalone:
        return http.lstrip("\n")
    return f"""# nginx.conf for a Pnyx edge. Run: nginx -c /path/to/this/file
worker_processes auto;
worker_rlimit_nofile 65536;  # each listener holds ~2 connections (media, state long-poll)
pid {spec.cache_dir}/nginx.pid;
error_log stderr warn;

events {{
    worker_connections 32768;
}}

http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 100000;  # a listener makes ~2-7 requests/s on each connection
    client_body_temp_path {spec.cache_dir}/client_body;
    proxy_temp_path {spec.cache_dir}/proxy_temp;
    fastcgi_temp_path {spec.cache_dir}/fastcgi_temp;
    uwsgi_temp_path {spec.cache_dir}/uwsgi_temp;
    scgi_temp_path {spec.cache_dir}/scgi_temp;
{http}}}
"""
