"""The Varnish beside an edge's nginx that collapses live blocking reads (``pnyx
edge-config``, on by default; ``--no-varnish`` for nginx alone). :mod:`pnyx.edge` checks
and keys every read; this module writes the parts of its nginx config that pass those
reads here, the VCL, and the ``varnishd`` command line.

Why: nginx's cache lock makes each waiter re-check a locked entry on a fixed 500 ms
timer, so a blocking playlist reload or the preload-hinted part reached a listener up
to half a second after the origin answered. Those reads (playlists with ``_HLS_msn``,
and parts) are passed, after every check :mod:`pnyx.edge` makes, uncached by nginx, to
a Varnish beside it (:func:`render_vcl`; :func:`varnishd_command`), whose waiting list
wakes every waiter the moment the object's headers arrive and streams it to all of
them: still one origin request per object per edge. Varnish keys on the key nginx
built (``X-Pnyx-Key``: path and known arguments, ``p:`` for signed reads), passes what
nginx would bypass (``X-Pnyx-Pass``), caches only what the origin allows, and asks the
origin through an internal nginx server (``--varnish-backend``, loopback only) that
holds the upstream list, so health checks, retries and reloads stay nginx's.
``X-Cache-Status`` is Varnish's verdict for those reads. Everything else (segments,
init, playlists without arguments, state, pages) stays in nginx's cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Collapse:
    """Where the Varnish that collapses live blocking reads listens, and the internal nginx
    server it asks (both loopback addresses, ``HOST:PORT``)."""

    listen: str = "127.0.0.1:6081"
    backend: str = "127.0.0.1:6082"
    workdir: Path = Path("/var/lib/pnyx-edge/varnish")  # varnishd -n
    memory: str = "256m"  # varnishd -s malloc,SIZE: live objects live seconds


def headers(upstream_host: str, query: str) -> str:
    """What a read sent to Varnish carries: the headers every proxied read has (a location
    that sets one loses the server's), the cache key nginx built, and whether to pass."""
    return f"""            proxy_set_header Host {upstream_host};
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Accept-Encoding gzip;
            proxy_set_header X-Pnyx-Key $pnyx_ns$pnyx_path{query};
            proxy_set_header X-Pnyx-Pass $pnyx_account_read;
"""


def http_block(varnish: Collapse) -> str:
    """The http{} part: the Varnish upstream and the maps that send blocking reads there."""
    return f"""
    # -- live blocking reads: checked here, collapsed by Varnish ({varnish.listen}) ---
    upstream pnyx_collapse {{
        server {varnish.listen};
        # Every waiting listener holds one of these until its part arrives, then all
        # are idle at once: with fewer kept (it was 256), 2,000 waiters reopened most
        # of their connections every part (~16 % more requests per edge core-second
        # with 4,096; docs/benchmarks.md).
        keepalive 4096;
        keepalive_timeout 50s;
    }}
    # blocking reloads (with _HLS_msn, delta or not) go to Varnish; the rest stay here
    map $pnyx_hls_args $pnyx_blocking {{
        "~^[?]_HLS_msn=" 1;
        default        "";
    }}
    map $pnyx_hls_args $pnyx_live_upstream {{
        "~^[?]_HLS_msn=" pnyx_collapse;
        default        pnyx_origin;
    }}
    # Varnish's verdict (HIT, MISS, BYPASS) for what it serves, else nginx's
    map $upstream_http_x_pnyx_cache $pnyx_cache_status {{
        ""      $upstream_cache_status;
        default $upstream_http_x_pnyx_cache;
    }}
"""


def inner_server(varnish: Collapse, *, upstream_host: str, wait_s: int) -> str:
    """The server Varnish asks: the nodes, with nginx's health checks and retries."""
    return f"""
    # Varnish's backend (loopback only): the nodes, through the upstream above
    server {{
        listen {varnish.backend};
        server_name _;
        location / {{
            allow 127.0.0.1;
            allow ::1;
            deny all;
            proxy_pass http://pnyx_origin;
            proxy_http_version 1.1;
            proxy_set_header Host {upstream_host};
            proxy_set_header Connection "";
            proxy_pass_request_headers on;
            proxy_buffering off;  # Varnish streams to its waiters as the bytes come
            proxy_read_timeout {wait_s}s;
            proxy_next_upstream error timeout http_502 http_504;
            proxy_next_upstream_tries 2;
        }}
    }}
"""


def render_vcl(varnish: Collapse, *, wait_s: int) -> str:
    """The VCL of the Varnish that collapses live blocking reads (see the module's rules);
    ``wait_s``: how long the origin may take to answer a blocking read."""
    host, port = varnish.backend.rsplit(":", 1)
    wait = wait_s
    return f"""vcl 4.1;
# Generated by `pnyx edge-config`: collapses live blocking reads (LL-HLS playlists with
# _HLS_msn, parts) that nginx ({varnish.backend}) checked and keyed. Waiters on an
# object being fetched are woken the moment its headers arrive, and stream it.

backend pnyx_edge {{
    .host = "{host.strip("[]")}";
    .port = "{port}";
    .connect_timeout = 2s;
    .first_byte_timeout = {wait}s;  # the origin holds a blocking read up to hls_block_s
    .between_bytes_timeout = {wait}s;
}}

acl pnyx_front {{
    "127.0.0.1";
    "::1";
}}

sub vcl_recv {{
    if (client.ip !~ pnyx_front || !req.http.X-Pnyx-Key) {{
        return (synth(403, "only the edge's nginx reads here"));
    }}
    if (req.method != "GET" && req.method != "HEAD") {{
        return (synth(405));
    }}
    if (req.http.X-Pnyx-Pass == "1") {{
        return (pass);  # an account changes the answer (a private space's read)
    }}
    return (hash);  # never the built-in rules: a made-up Authorization changes nothing
}}

sub vcl_hash {{
    hash_data(req.http.X-Pnyx-Key);  # path and known arguments, as nginx rebuilt them
    return (lookup);
}}

sub vcl_backend_fetch {{
    unset bereq.http.X-Pnyx-Key;
    unset bereq.http.X-Pnyx-Pass;
}}

sub vcl_backend_response {{
    if (!beresp.http.Cache-Control || beresp.http.Cache-Control ~ "no-store|no-cache|private"
        || beresp.status >= 500) {{
        # errors (no-store) and private answers: never shared; waiters ask for themselves
        set beresp.ttl = 1s;
        set beresp.grace = 0s;
        set beresp.uncacheable = true;
        return (deliver);
    }}
    # one answer for every listener, whatever they send (nginx's proxy_ignore_headers Vary)
    if (beresp.http.Vary) {{
        set beresp.http.X-Pnyx-Vary = beresp.http.Vary;
        unset beresp.http.Vary;
    }}
    set beresp.grace = 2s;
    return (deliver);  # the origin's max-age is the TTL
}}

sub vcl_deliver {{
    if (resp.http.X-Pnyx-Vary) {{
        set resp.http.Vary = resp.http.X-Pnyx-Vary;
        unset resp.http.X-Pnyx-Vary;
    }}
    if (req.http.X-Pnyx-Pass == "1") {{
        set resp.http.X-Pnyx-Cache = "BYPASS";
    }} elsif (obj.hits > 0) {{
        set resp.http.X-Pnyx-Cache = "HIT";
    }} else {{
        set resp.http.X-Pnyx-Cache = "MISS";
    }}
    unset resp.http.Via;
    unset resp.http.X-Varnish;
}}
"""


def varnishd_command(varnish: Collapse, vcl: Path) -> list[str]:
    """How to run ``varnish`` in the foreground with the VCL at ``vcl``."""
    v = varnish
    return [
        "varnishd",
        "-F",
        "-a",
        v.listen,
        "-T",
        "none",
        "-f",
        str(vcl),
        "-n",
        str(v.workdir),
        "-s",
        f"malloc,{v.memory}",
        # a waiter woken with an object needs a worker thread to stream it
        "-p",
        "thread_pool_min=200",
        "-p",
        "thread_pool_max=5000",
        # nginx keeps idle connections 50 s (keepalive_timeout in pnyx_collapse)
        "-p",
        "timeout_idle=60",
    ]
