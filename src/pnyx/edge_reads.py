"""An edge's listener reads (:mod:`pnyx.edge`): the maps that key them and decide who may
read, and one nginx ``location`` per kind of read. The rules are in :mod:`pnyx.edge`'s
docstring; this module writes them. Private reads are checked here (signed links), and
live blocking reads are passed to the Varnish of :mod:`pnyx.edge_varnish` when there is one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pnyx import edge_frontrow, edge_varnish

if TYPE_CHECKING:
    from pnyx.edge import EdgeSpec

LONGEST_ORIGIN_WAIT_S = 16  # state long-poll (state_wait_s ≤ 15 by default) + margin

SPACE = r"(?<pnyx_space>[A-Za-z0-9_-]{1,64})"  # as the node's valid_space
LINK = r"(?<pnyx_link>/p/(?<pnyx_exp>[^/]*)/(?<pnyx_sig>[^/]*))?"
N12 = r"(?:0|[1-9][0-9]{0,11})"  # the node's numbers in media names: no leading zeros

NO_MEDIA = (
    "no such media object: init.mp4, part/<msn>.<i>.m4s, seg/<msn>.m4s, vtt/<msn>.<h>.vtt, "
    "live.m3u8, plain.m3u8, main.m3u8, captions.m3u8, replay.m3u8 or rec/..."
)
LINKS_FOR_READS = "signed links (/p/<exp>/<sig>/...) are for listener reads only"
UNSIGNED = "this space is private: listen through a signed link (/p/<exp>/<sig>/...)"
BAD_LINK = "this link is not valid (bad signature, or not for this space)"
NO_LINKS = "this edge checks no signed links (it was configured without a link secret)"
EXPIRED = "this link has expired: ask for a new one"


def gates(spec: EdgeSpec) -> str:
    """Who may read: the maps that decide, per listener read, between passing it on,
    ``unsigned`` (403), ``bad_link`` (403) and ``expired`` (410)."""
    check = '"s$secure_link"' if spec.link_secret else '"s"'
    return f"""
    # -- listener reads: what decides the cache key and who may read --------------------
    # (the variables pnyx_link, pnyx_space, … come from the listener locations' paths)
    map $pnyx_link $pnyx_ns {{
        ""      "";
        default "p:";  # signed reads of private spaces: a namespace of their own
    }}
    map $pnyx_space $pnyx_private {{
        "~^p-"  1;
        default 0;
    }}
    map $http_authorization $pnyx_authz {{
        ""      0;
        default 1;
    }}
    # An account changes the answer of a private space's reads (the node checks it) and
    # of the state (a stage member's view), never of a public space's media or page:
    # there a made-up Authorization header must not send a listener past the cache.
    map "$pnyx_private$pnyx_authz" $pnyx_account_read {{
        "11"    1;
        default "";
    }}
    # "none" for an unsigned read; else "s" and secure_link's verdict: "1" good, "0"
    # expired, "" no or a bad signature
    map $pnyx_link $pnyx_link_check {{
        ""      "none";
        default {check};
    }}
    map "$pnyx_link_check:$pnyx_private$pnyx_authz" $pnyx_gate {{
        "~^none:1" unsigned;  # a private space, no signature (token or not): refused here
        "~^none:" pass;      # public, or with an account (the node checks it)
        "~^s1:"   pass;
        "~^s0:"   expired;
        default   bad_link;
    }}
    # The arguments a node is sent (and the cache keyed on): only the known ones, as
    # numbers without leading zeros, a delta update as _HLS_skip=YES (v2 is the same
    # answer); empty is absent; anything else is refused (400).
    map $arg__HLS_skip $pnyx_hls_skip {{
        ""            "";
        "~^(YES|v2)$" "_HLS_skip=YES";
        default       "!";
    }}
    map "$arg__HLS_msn:$arg__HLS_part:$pnyx_hls_skip" $pnyx_hls_args {{
        "::"                                                   "";
        "~^::(_HLS_skip=YES)$"                                 "?$1";
        "~^0*([0-9]{{1,12}})::$"                                 "?_HLS_msn=$1";
        "~^0*([0-9]{{1,12}})::(_HLS_skip=YES)$"                  "?_HLS_msn=$1&$2";
        "~^0*([0-9]{{1,12}}):0*([0-9]{{1,6}}):$"                  "?_HLS_msn=$1&_HLS_part=$2";
        "~^0*([0-9]{{1,12}}):0*([0-9]{{1,6}}):(_HLS_skip=YES)$"   "?_HLS_msn=$1&_HLS_part=$2&$3";
        default                                                "!";
    }}
    map $arg_after $pnyx_after_args {{
        ""                     "";
        "~^0*([0-9]{{1,18}})$"  "?after=$1";
        default                "!";
    }}
"""


def _gate_checks(spec: EdgeSpec) -> str:
    bad = BAD_LINK if spec.link_secret else NO_LINKS
    return f"""            if ($pnyx_gate = unsigned) {{ return 403 "{UNSIGNED}\\n"; }}
            if ($pnyx_gate = bad_link) {{ return 403 "{bad}\\n"; }}
            if ($pnyx_gate = expired) {{ return 410 "{EXPIRED}\\n"; }}
"""


def frontrow_links(spec: EdgeSpec) -> edge_frontrow.Links:
    """The front row's subscribers are refused as the signed reads are (_gate_checks)."""
    bad = BAD_LINK if spec.link_secret else NO_LINKS
    return edge_frontrow.Links(spec.link_secret, bad_link=bad, expired=EXPIRED)


def _listener_location(
    spec: EdgeSpec,
    path: str,
    *,
    args: str | None,
    lock_s: int,
    bypass: str = "$pnyx_account_read",
    stale: bool,
    comment: str,
    collapse: bool = False,
    revalidate: bool = False,
    updating: bool = True,
) -> str:
    """A cached listener read: ``path`` (a regex with the space captured) with or without
    a signed link before it; ``args`` the map variable with its rebuilt query string.
    ``collapse``: with a Varnish, its blocking reads (those with arguments) go there.
    ``revalidate``: an expired copy with an ETag is checked with ``If-None-Match``.
    ``stale``: a copy is served past its age while the origin fails; with ``updating``
    also while another request refreshes it, however old. Without ``updating`` that
    is only as long as the answer's ``stale-while-revalidate`` says (a live playlist's
    second: a crowd after a lull must not start from a copy of long ago)."""
    when = "error timeout updating" if updating else "error timeout"
    stale_line = (
        f"            proxy_cache_use_stale {when} invalid_header "
        "http_500 http_502 http_503 http_504;\n"
        if stale
        else ""
    )
    revalidate_line = "            proxy_cache_revalidate on;\n" if revalidate else ""
    query = ""
    bad_args = ""
    if args is not None:
        query = args
        bad_args = f'            if ({args} = "!") {{ return 400 "{_ARGS_HELP[args]}\\n"; }}\n'
    upstream, headers, blocking = "pnyx_origin", "", ""
    if collapse and spec.varnish is not None and args is not None:
        upstream = "$pnyx_live_upstream"  # Varnish when there are arguments, else the nodes
        headers = edge_varnish.headers(spec.upstream_host, query)
        blocking = " $pnyx_blocking"
    return f"""
        # {comment}
        location ~ "^{LINK}(?<pnyx_path>{path})$" {{
            limit_except GET HEAD {{ deny all; }}
{_gate_checks(spec)}{bad_args}            proxy_pass http://{upstream}$pnyx_link$pnyx_path{query};
{headers}            proxy_cache pnyx;
            proxy_cache_key $pnyx_ns$pnyx_path{query};
            proxy_cache_bypass {bypass}{blocking};
            proxy_no_cache {bypass}{blocking};
            proxy_ignore_headers Vary;  # one answer for every listener, whatever they send
            proxy_cache_lock on;
            proxy_cache_min_uses 0;
            proxy_cache_lock_timeout {lock_s}s;
            proxy_cache_lock_age {lock_s}s;
            proxy_read_timeout {lock_s + 5}s;
            proxy_next_upstream error timeout http_502 http_504;
            proxy_next_upstream_tries 2;
{stale_line}{revalidate_line}        }}
"""


def _collapsed_location(spec: EdgeSpec, path: str, *, comment: str) -> str:
    """A listener read nginx checks and Varnish collapses (nginx caches none of it)."""
    headers = edge_varnish.headers(spec.upstream_host, "")
    return f"""
        # {comment}
        location ~ "^{LINK}(?<pnyx_path>{path})$" {{
            limit_except GET HEAD {{ deny all; }}
{_gate_checks(spec)}            proxy_pass http://pnyx_collapse$pnyx_link$pnyx_path;
{headers}            proxy_read_timeout {LONGEST_ORIGIN_WAIT_S + 5}s;
            proxy_next_upstream error timeout;
        }}
"""


_ARGS_HELP = {
    "$pnyx_hls_args": "_HLS_msn and _HLS_part must be non-negative integers; "
    "_HLS_part needs _HLS_msn; _HLS_skip (a delta update) is YES or v2",
    "$pnyx_after_args": "after must be a non-negative integer (a state version)",
}


def listener_locations(spec: EdgeSpec) -> str:
    media = f"/media/{SPACE}/"
    parts = []
    if spec.varnish is not None:
        parts.append(
            _collapsed_location(
                spec,
                media + rf"part/{N12}\.(?:0|[1-9][0-9]{{0,5}})\.m4s",
                comment="parts (the hinted next one is held at the origin until it exists): "
                "Varnish wakes every waiter at once",
            )
        )
    return "".join(
        [
            *parts,
            _listener_location(
                spec,
                media + rf"(?:init\.mp4|part/{N12}\.(?:0|[1-9][0-9]{{0,5}})\.m4s|seg/{N12}\.m4s"
                rf"|vtt/{N12}\.[0-9]\.vtt|rec/(?:init\.mp4|{N12}\.m4s)|replay\.m3u8)",
                args=None,
                lock_s=10,
                stale=False,
                comment="immutable media: parts, segments, captions, init, recordings, the replay"
                " (replay objects expire after the origin's s-maxage: revalidated, 304)",
                revalidate=True,
            ),
            _listener_location(
                spec,
                media + r"(?:live|plain|main|captions)\.m3u8",
                args="$pnyx_hls_args",
                lock_s=LONGEST_ORIGIN_WAIT_S,
                stale=True,
                updating=False,  # the origin's stale-while-revalidate=1 bounds it
                comment="live playlists (blocking reload: the same URL for every listener)",
                collapse=True,
            ),
            _listener_location(
                spec,
                f"/v1/spaces/{SPACE}/state",
                args="$pnyx_after_args",
                lock_s=LONGEST_ORIGIN_WAIT_S,
                bypass="$http_authorization",
                stale=True,
                updating=False,  # the origin's stale-while-revalidate=1 bounds it
                comment="the state long-poll: one upstream request per version per edge",
            ),
            _listener_location(
                spec,
                rf"/v1/spaces/{SPACE}/recording\.m4a",
                args=None,
                lock_s=LONGEST_ORIGIN_WAIT_S,
                stale=False,
                comment="a finished recording's download (immutable; 503 until finished; "
                "revalidated after the origin's s-maxage)",
                revalidate=True,
            ),
            _listener_location(
                spec,
                rf"/v1/spaces/{SPACE}/transcript(?:\.vtt|\.txt)?",
                args=None,
                lock_s=5,
                stale=True,
                comment="a captioned space's transcript (growing while live, then complete)",
            ),
            _listener_location(
                spec,
                f"/v1/spaces/{SPACE}",
                args=None,
                lock_s=5,
                stale=True,
                comment="a space's public description",
            ),
        ]
    )
