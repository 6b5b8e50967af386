"""The nginx configuration of an edge in front of Pnyx nodes (``pnyx edge-config``).

What we own at the edge is that every listener read is cacheable and collapsible: one
origin request per object per edge, however many listeners wait for it — and that no
client can undo it. The rules:

- media parts, segments, init and recordings: immutable, cached as long as the origin
  says (a year). A replay (``replay.m3u8``, ``rec/…``, ``recording.m4a``) is only ever
  answered 200 once its recording is finished, the same bytes from every node (they come
  from the durable store); before that the origin answers 409 or 503 ``not_ready``
  (cached at most a second), so no edge ever holds a partial recording. Its host may
  delete a recording, so the origin gives replay objects ``s-maxage=replay_edge_ttl_s``
  (10 minutes by default), which nginx (and Varnish, though no replay read goes there)
  takes over ``max-age``: an edge asks again after that, gets the 410 of a deleted
  recording (``no-store``, never kept) and never serves its copy again. Asking again
  is a conditional read (``proxy_cache_revalidate``, the ETag the origin gave): while the
  recording is there the origin answers 304 and no bytes move. Browsers keep the year;
- live playlists (``live.m3u8?_HLS_msn=…&_HLS_part=…``) and the state long-poll
  (``state?after=V``): every listener waiting on the same version shares one upstream
  request; ``proxy_cache_lock`` holds the others until it answers — with lock timeouts
  longer than the longest origin wait (blocking reload, state long-poll), or nginx would
  send the waiters upstream after 5 s; and with ``proxy_cache_min_uses 0``: nginx counts
  the requests for an object that is still being fetched in a 10-bit field, and every
  1,024th of them, seeing the count wrap to 0, is sent upstream past the lock (about one
  extra origin request per 1,024 listeners per version); with a minimum of 0 the wrapped
  count still qualifies;
- ``GET /v1/spaces/{id}``: cached for the second the origin allows;
- a clip's audio (``/v1/clips/{id}/clip.m4a``): immutable, keyed by its path only;
  a read with an ``Authorization`` header (a private space's clip, which the node
  answers ``private``) is never stored or served from the cache;
- **the cache cannot be bypassed.** A listener read's cache key is only what changes the
  answer: the path, and ``_HLS_msn``/``_HLS_part``/``_HLS_skip`` (playlists: a delta
  update, ``YES`` or ``v2``, which the origin answers alike, is keyed and sent as
  ``_HLS_skip=YES``) or ``after`` (state) — never the
  ``Host`` header, the scheme, or any other query argument. The request sent
  to the node is rebuilt from the same parts (``proxy_pass`` with the path and the known
  arguments only, and a fixed ``Host``: ``--server-name``, else the first upstream), so
  ``live.m3u8?junk=N``, ``state?after=V&x=N`` or a foreign ``Host`` are the same object
  and never reach a node. A known argument is normalised (leading zeros dropped, as the
  origin reads them; an empty one is taken as absent, where the origin would refuse it;
  of a repeated one, the first counts); one that is not a number (``_HLS_skip``: not
  exactly ``YES`` or ``v2``) is answered 400 by the edge, so no value makes a new key.
  Paths are checked as strictly as the node checks them: a name under ``/media/{id}/``
  that the node could not serve is a 404 from the edge;
- **private spaces** (ids beginning ``p-``) are checked by the edge itself. A listener
  reads one through a signed link, the normal path behind ``/p/{exp}/{sig}``, where
  ``sig`` is the base64url (unpadded) MD5 of ``"{exp}{space_id} {secret}"``
  (nginx's ``secure_link``); relative URIs in playlists stay signed. An unsigned read of
  a private id is a 403, with or without an ``Authorization`` header (an account reads
  through the links ``GET /v1/spaces/{id}/links`` hands it, as the web client does); a
  bad signature a 403, an expired one a 410 — none reaches a node. A valid one is
  cached like the public read, keyed without the ``/p/{exp}/{sig}`` part (listeners
  with different links share one origin request per object) but apart from public keys
  (``p:``), and is proxied with the whole signed URI (the node checks the signature
  again). The secret, shared with the nodes, comes from ``--link-secret-file``; without
  it the edge refuses every ``/p/`` URL (403). Anything else under ``/p/`` is a 404;
- stale copies of playlists and state are served while the origin fails or restarts
  (``proxy_cache_use_stale``), so listeners keep playing; while a copy is being
  refreshed, only within the answer's ``stale-while-revalidate`` (a second), so a crowd
  after a lull is not handed a copy of long ago;
- every POST and the stage WebSocket go straight through, never cached; so do reads with
  an ``Authorization`` header where an account changes the answer: the state (a stage
  member's view) and a private space's signed reads. A public space's media and page are
  the same for everyone: with or without the header, they come from the cache;
- ``/edge-status`` (from loopback only): nginx's connection counters, for monitoring;
- passive health checks: an upstream that fails ``max_fails`` times is skipped for
  ``fail_timeout``; idempotent reads are retried on the next upstream. Only a node that
  does not answer (connection refused or reset, timeout, a 502/504 from in between)
  counts as failed: a node's own ``503`` (a dependency such as Redis or PostgreSQL is
  briefly away, or the node sheds load with ``Retry-After``) is passed on to the client,
  or a stale copy served, and never marks the node down — every node would answer the
  same, and marking them all down turns a blip into ``502 no live upstreams`` for the
  ``fail_timeout`` after it;
- TLS (``--tls-cert``/``--tls-key``): HTTPS with HTTP/2 on ``--tls-listen``, TLS 1.2 and
  1.3, a shared session cache and session tickets (a join storm resumes sessions rather
  than paying a full handshake each); the plain ``--listen`` port then only redirects
  (308) to HTTPS, except ``/edge-status``. HTTP/2 is switched on with ``listen … http2``
  (nginx before 1.25.1; later versions warn but accept it);
- files: the cache lives in ``--cache-dir``; the pid file and nginx's temp folders in
  ``--state-dir`` (default ``/var/lib/pnyx-edge``, on disk so that it outlives a reboot),
  never inside the cache, whose loader would remove them. ``--output FILE`` writes the
  config and creates both folders; printed to stdout, the ``install -d`` commands that
  make them go to stderr;
- **live blocking reads collapse in Varnish** (``--varnish``, the default; the rules and
  the VCL are in :mod:`pnyx.edge_varnish`): playlists with ``_HLS_msn`` and parts are
  passed, after every check above, to a Varnish beside nginx whose waiting list wakes
  every waiter the moment the object arrives (nginx's lock re-checks every 500 ms);
- ``nginx -s reload`` with a changed upstream list is safe during an event: the cache and
  its locks are in shared memory, so the new workers join the old ones' pending fetches;
  old workers finish their requests (at most ``worker_shutdown_timeout``, longer than
  the longest origin wait) and exit.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from pnyx import edge_frontrow, edge_reads, edge_varnish
from pnyx.edge_frontrow import FrontRow
from pnyx.edge_reads import LINKS_FOR_READS, LONGEST_ORIGIN_WAIT_S, NO_MEDIA
from pnyx.edge_varnish import Collapse

SHUTDOWN_S = LONGEST_ORIGIN_WAIT_S + 14  # old workers after a reload: then close the rest

# What a link secret may contain: it goes into the nginx config as text, and base64 or
# hex (e.g. `openssl rand -base64 32`) are what operators generate.
_SECRET = re.compile(r"[A-Za-z0-9+/=._~-]{16,256}")

# TLS 1.2 suites with forward secrecy and AEAD (TLS 1.3 has its own, all good)
TLS12_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
)


@dataclass(frozen=True, slots=True)
class Tls:
    cert: Path  # PEM certificate chain
    key: Path  # PEM private key
    listen: str = "443"  # an nginx ``listen`` value for HTTPS


@dataclass(frozen=True, slots=True)
class EdgeSpec:
    listen: str  # an nginx ``listen`` value: "8080", "127.0.0.1:8080", "[::]:8080"
    upstreams: tuple[str, ...]
    cache_dir: Path = Path("/var/cache/pnyx-edge")
    state_dir: Path = Path("/var/lib/pnyx-edge")  # pid file and nginx's temp folders
    cache_size: str = "2g"
    max_fails: int = 2
    fail_timeout_s: int = 5
    standalone: bool = True  # a whole nginx.conf (events, http); else an http{} include
    server_name: str | None = None  # the site's name: server_name, and Host to the nodes
    tls: Tls | None = None
    link_secret: str | None = None  # shared with the nodes; None: every /p/ URL is a 403
    varnish: Collapse | None = None  # live blocking reads through Varnish; None: nginx alone
    frontrow: FrontRow | None = None  # the push tier (nchan): src/pnyx/edge_frontrow.py

    @property
    def upstream_host(self) -> str:
        """The ``Host`` every request to a node carries, whatever the client sent."""
        return self.server_name or self.upstreams[0]

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "nginx.pid"


def read_link_secret(path: Path) -> str:
    """The link secret in ``path`` (surrounding whitespace stripped). ValueError if it
    cannot go into an nginx config as it is."""
    secret = path.read_text().strip()
    if not _SECRET.fullmatch(secret):
        raise ValueError(
            f"the link secret in {path} must be 16-256 characters of A-Z a-z 0-9 + / = . _ ~ -"
            " (e.g. the output of `openssl rand -base64 32`)"
        )
    return secret


def folders(spec: EdgeSpec) -> list[Path]:
    """The folders the config names that must exist before nginx starts."""
    return [spec.cache_dir, spec.state_dir] if spec.standalone else [spec.cache_dir]


def create_folders(spec: EdgeSpec) -> list[Path]:
    """Create :func:`folders` (and their parents), readable and searchable by nginx's
    unprivileged workers; nginx itself creates and hands them the folders inside."""
    made = []
    for folder in folders(spec):
        if not folder.is_dir():
            folder.mkdir(mode=0o755, parents=True)
            made.append(folder)
        os.chmod(folder, 0o755)
    return made


def install_commands(spec: EdgeSpec) -> str:
    return "".join(f"install -d -m 0755 {f}\n" for f in folders(spec))


def _port(listen: str) -> int:
    found = re.search(r"(?:^|:)(\d+)(?:\s|$)", listen)
    return int(found.group(1)) if found else 443


_EDGE_STATUS = """
        # nginx's connection counters (active, reading, writing, waiting) for monitoring
        location = /edge-status {
            stub_status;
            allow 127.0.0.1;
            allow ::1;
            deny all;
        }
"""


def _tls_lines(tls: Tls) -> str:
    return f"""
        ssl_certificate {tls.cert};
        ssl_certificate_key {tls.key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers {":".join(TLS12_CIPHERS)};
        ssl_prefer_server_ciphers off;
        # Resumption for a join storm: ~4,000 sessions per MB, kept a day; tickets too
        # (their keys are made at start and on every reload).
        ssl_session_cache shared:pnyx_tls:64m;
        ssl_session_timeout 1d;
        ssl_session_tickets on;
        ssl_buffer_size 4k;  # small records: a part's first bytes leave at once
"""


def _redirect_server(spec: EdgeSpec, tls: Tls, default: str) -> str:
    port = _port(tls.listen)
    host = spec.server_name or "$host"
    target = f"https://{host}{'' if port == 443 else f':{port}'}$request_uri"
    return f"""
    # plain HTTP: only a redirect to HTTPS (and the status page)
    server {{
        listen {spec.listen}{default};
        server_name {spec.server_name or "_"};
{_EDGE_STATUS}
        location / {{
            return 308 {target};
        }}
    }}
"""


def render_vcl(spec: EdgeSpec) -> str:
    """The VCL of the Varnish of ``spec`` (:func:`pnyx.edge_varnish.render_vcl`)."""
    if spec.varnish is None:
        raise ValueError("this edge has no Varnish")
    return edge_varnish.render_vcl(spec.varnish, wait_s=LONGEST_ORIGIN_WAIT_S + 5)


def varnishd_command(spec: EdgeSpec, vcl: Path) -> list[str]:
    """How to run the Varnish of ``spec`` in the foreground with the VCL at ``vcl``."""
    if spec.varnish is None:
        raise ValueError("this edge has no Varnish")
    return edge_varnish.varnishd_command(spec.varnish, vcl)


def render(spec: EdgeSpec) -> str:
    if not spec.upstreams:
        raise ValueError("at least one --upstream HOST:PORT is needed")
    servers = "\n".join(
        f"        server {u} max_fails={spec.max_fails} fail_timeout={spec.fail_timeout_s}s;"
        for u in spec.upstreams
    )
    default = " default_server" if spec.standalone else ""
    if spec.tls is None:
        listen = f"        listen {spec.listen}{default};\n"
        redirect = ""
    else:
        listen = f"        listen {spec.tls.listen} ssl http2{default};\n" + _tls_lines(spec.tls)
        redirect = _redirect_server(spec, spec.tls, default)
    secure_link = (
        f"""        secure_link $pnyx_sig,$pnyx_exp;
        secure_link_md5 "$pnyx_exp$pnyx_space {spec.link_secret}";
"""
        if spec.link_secret
        else ""
    )
    status = "$upstream_cache_status"
    collapse = inner = hide = ""
    if spec.varnish is not None:
        hide = "        proxy_hide_header X-Pnyx-Cache;\n"
        status = "$pnyx_cache_status"
        collapse = edge_varnish.http_block(spec.varnish)
        inner = edge_varnish.inner_server(
            spec.varnish, upstream_host=spec.upstream_host, wait_s=LONGEST_ORIGIN_WAIT_S + 5
        )
    http = f"""
    # Generated by `pnyx edge-config`. Upstreams: {", ".join(spec.upstreams)}
    proxy_cache_path {spec.cache_dir} levels=1:2 keys_zone=pnyx:64m max_size={spec.cache_size}
                     inactive=10m use_temp_path=off;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ""      "";
    }}
{edge_reads.gates(spec)}{edge_frontrow.maps(spec.frontrow, edge_reads.frontrow_links(spec))}
    upstream pnyx_origin {{
{servers}
        keepalive 64;
        # Shorter than the nodes' own idle timeout (pnyx serve keeps connections 75 s),
        # so the edge never reuses a connection the node is closing: a 502 for whoever
        # was waiting on that object.
        keepalive_timeout 50s;
    }}
{collapse}{redirect}{inner}
    server {{
{listen}        server_name {spec.server_name or "_"};
        default_type text/plain;

        proxy_http_version 1.1;
        # Whatever Host the client sent: the nodes see one name, the cache keys none.
        proxy_set_header Host {spec.upstream_host};
        proxy_set_header Connection "";
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        # Playlists come gzipped (the node zips them, about 8x smaller): one copy cached,
        # unzipped here for the rare client that does not take gzip.
        proxy_set_header Accept-Encoding gzip;
        gunzip on;
        proxy_buffering on;
        add_header X-Cache-Status {status} always;
{hide}{secure_link}{edge_reads.listener_locations(spec)}
        # a clip's audio (immutable). With a token (a private space's clip) it is never
        # stored or shared, and the node answers those `private` anyway; errors are no-store.
        location ~ "^/v1/clips/[A-Za-z0-9_-]{{1,32}}/clip\\.m4a$" {{
            limit_except GET HEAD {{ deny all; }}
            proxy_pass http://pnyx_origin$uri;
            proxy_cache pnyx;
            proxy_cache_key clip:$uri;
            proxy_cache_bypass $pnyx_authz;
            proxy_no_cache $pnyx_authz;
            proxy_ignore_headers Vary;
            proxy_cache_lock on;
            proxy_cache_min_uses 0;
            proxy_cache_lock_timeout 10s;
            proxy_cache_lock_age 10s;
            proxy_read_timeout 15s;
            proxy_next_upstream error timeout http_502 http_504;
            proxy_next_upstream_tries 2;
        }}
        # other paths under /media/ and /p/: nothing a node would serve
        location /media/ {{
            return 404 "{NO_MEDIA}\\n";
        }}
        location /p/ {{
            return 404 "{LINKS_FOR_READS}\\n";
        }}
{_EDGE_STATUS}{edge_frontrow.locations(spec.frontrow, edge_reads.frontrow_links(spec))}
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
    state = spec.state_dir
    return f"""# nginx.conf for a Pnyx edge. Run: nginx -c /path/to/this/file
{edge_frontrow.load_module(spec.frontrow)}worker_processes auto;
worker_rlimit_nofile 65536;  # each listener holds ~2 connections (media, state long-poll)
# Outside the cache folder: nginx's cache loader would delete it there, and then
# `nginx -s reload|quit` no longer finds the master.
pid {spec.pid_file};
error_log stderr warn;
# After a reload, old workers finish what they hold (a long-poll lasts at most
# {LONGEST_ORIGIN_WAIT_S} s), then close what is left (stage WebSockets reconnect).
worker_shutdown_timeout {SHUTDOWN_S}s;

events {{
    worker_connections 32768;
}}

http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 100000;  # a listener makes ~2-7 requests/s on each connection
    client_body_temp_path {state}/client_body;
    proxy_temp_path {state}/proxy_temp;
    fastcgi_temp_path {state}/fastcgi_temp;
    uwsgi_temp_path {state}/uwsgi_temp;
    scgi_temp_path {state}/scgi_temp;
{http}}}
"""
