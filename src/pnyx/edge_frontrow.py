"""The front row at the edge: nchan (the nginx module ``ngx_nchan_module``; Debian's
``libnginx-mod-nchan``) fans each space's program out to its listeners' WebSockets from
nginx's own C workers, with no Python per listener (``pnyx edge-config --frontrow``).

- ``POST /frontrow/pub/{space}``: a stage node publishes one message (a few 20 ms Opus
  frames, :mod:`pnyx.protocol.frontrow`) per request, pipelined on a kept-alive
  connection (src/pnyx/services/frontrow.py); ``Content-Type: application/octet-stream``,
  so nchan sends it on as a *binary* WebSocket frame. (nchan's WebSocket publisher is
  not offered: it lost messages in some runs, docs/benchmarks.md.) Only from the
  addresses in ``publishers`` (the nodes; loopback by default): anyone else gets a 403.
  nchan keeps the last ``buffer_messages`` of each channel for ``message_timeout_s``, in shared
  memory, so every worker serves every channel.
- ``GET /frontrow/{space}`` with a WebSocket upgrade: a listener subscribes and gets each
  message as it is published (``nchan_subscriber_first_message newest``: from the next
  one, the lowest delay). A space nobody publishes (unknown, over, or not pushed) is a
  403 (``nchan_subscribe_existing_channels_only``); a private space's (``p-…``) is a 403
  with a body saying to use a signed link. Any other path under ``/frontrow/`` is a 404.
  With ``listeners=False`` (draining an edge) every subscription is a 503 and players
  use LL-HLS.
- ``GET /p/{exp}/{sig}/frontrow/{space}``: the same subscription through a signed link,
  the only way into a private space's front row (its listeners get the URL from their
  join). The edge checks it exactly as it checks the signed media reads (nginx
  ``secure_link_md5`` with the same secret, ``Links``): a bad signature is a 403 and an
  expired link a 410, with the media reads' bodies; a valid one subscribes to the same
  channel as ``/frontrow/{space}``. An open socket is not cut when its link expires.
- one stream per space per edge: the node posts each message once to every edge listed in
  its ``frontrow_publish_urls``; the listeners never reach a node.

nchan's module must be loaded in the main context (``load_module``): a standalone config
(the default) has the line; an ``http{}`` include needs it in the including nginx.conf.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

NCHAN_MODULE = "/usr/lib/nginx/modules/ngx_nchan_module.so"
PUBLISH_PREFIX = "/frontrow/pub/"
SUBSCRIBE_PREFIX = "/frontrow/"
_SPACE = r"(?<pnyx_fr_space>[A-Za-z0-9_-]{1,64})"  # as the node's valid_space
# a signed link before the subscriber's path (services/links.py; edge.py's LINK)
_LINK = r"(?<pnyx_fr_link>/p/(?<pnyx_fr_exp>[^/]*)/(?<pnyx_fr_sig>[^/]*))?"
PRIVATE = (
    "this space is private: subscribe through the signed link its join answered with"
    " (/p/<exp>/<sig>/frontrow/<space id>)"
)
NO_SUCH = "no such front-row path: /frontrow/<space id> (a WebSocket)"
PUBLISHERS_ONLY = "only stage nodes publish to the front row"
DRAINED = "the front row is closed on this edge for now: listen through LL-HLS"


@dataclass(frozen=True, slots=True)
class FrontRow:
    """The front row's part of an edge config."""

    publishers: tuple[str, ...] = ("127.0.0.1", "::1")  # addresses or CIDRs of the nodes
    buffer_messages: int = 8  # per space: the newest kept for subscribers that reconnect
    message_timeout_s: int = 10
    ping_s: int = 20  # WebSocket pings keep idle middleboxes from closing the socket
    # False: drain the front row — listeners are refused (503) and fall back to LL-HLS,
    # nodes may still publish (a reload closes the open sockets: nchan ends them with 1001)
    listeners: bool = True
    module: str = NCHAN_MODULE

    def __post_init__(self) -> None:
        for who in self.publishers:
            ipaddress.ip_network(who, strict=False)  # ValueError for anything else
        if not 1 <= self.buffer_messages <= 1000:
            raise ValueError("buffer_messages must be 1 to 1000")


@dataclass(frozen=True, slots=True)
class Links:
    """How the edge checks signed links (edge.py's secret and answers, so the front row
    refuses a link exactly as the media reads do)."""

    secret: str | None  # None: the edge checks no links, every signed one is refused
    bad_link: str  # the 403's body: a bad signature (or no secret to check it with)
    expired: str  # the 410's body


def maps(front: FrontRow | None, links: Links) -> str:
    """The http-level maps that decide a subscription: ``pass``, ``unsigned`` (a private
    space without a link: 403), ``bad_link`` (403) or ``expired`` (410)."""
    if front is None:
        return ""
    check = '"s$secure_link"' if links.secret else '"s"'
    return f"""
    # -- the front row's subscribers (src/pnyx/edge_frontrow.py): "none" unsigned, else
    # "s" and secure_link's verdict ("1" good, "0" expired, "" none or a bad signature)
    map $pnyx_fr_link $pnyx_fr_check {{
        ""      "none";
        default {check};
    }}
    map "$pnyx_fr_check:$pnyx_fr_space" $pnyx_fr_gate {{
        "~^none:p-" unsigned;  # a private space: only through a signed link
        "~^none:"   pass;
        "~^s1:"     pass;
        "~^s0:"     expired;
        default     bad_link;
    }}
"""


def _link_checks(links: Links) -> str:
    """The subscriber location's own ``secure_link`` (its captures are the front row's)
    and the answers to what the gate refuses."""
    secure = (
        f"""            secure_link $pnyx_fr_sig,$pnyx_fr_exp;
            secure_link_md5 "$pnyx_fr_exp$pnyx_fr_space {links.secret}";
"""
        if links.secret
        else ""
    )
    return f"""{secure}            if ($pnyx_fr_gate = unsigned) {{ return 403 "{PRIVATE}\\n"; }}
            if ($pnyx_fr_gate = bad_link) {{ return 403 "{links.bad_link}\\n"; }}
            if ($pnyx_fr_gate = expired) {{ return 410 "{links.expired}\\n"; }}"""


def load_module(front: FrontRow | None) -> str:
    """The main-context line that loads nchan (empty without a front row)."""
    return "" if front is None else f"load_module {front.module};\n"


def locations(front: FrontRow | None, links: Links) -> str:
    """The server-level locations: the nodes' publisher, the listeners' WebSocket (with
    or without a signed link before it)."""
    if front is None:
        return ""
    allow = "".join(f"            allow {who};\n" for who in front.publishers)
    drain = "" if front.listeners else f'            return 503 "{DRAINED}\\n";\n'
    return f"""
        # -- the front row (src/pnyx/edge_frontrow.py): nchan fans the program out ---------
        location ~ "^{PUBLISH_PREFIX}{_SPACE}$" {{
{allow}            deny all;
            error_page 403 = @pnyx_fr_publishers_only;
            nchan_publisher http;
            nchan_channel_id $pnyx_fr_space;
            nchan_message_buffer_length {front.buffer_messages};
            nchan_message_timeout {front.message_timeout_s}s;
            client_max_body_size 64k;
        }}
        location @pnyx_fr_publishers_only {{
            return 403 "{PUBLISHERS_ONLY}\\n";
        }}
        location ~ "^{_LINK}{SUBSCRIBE_PREFIX}{_SPACE}$" {{
{_link_checks(links)}
{drain}            nchan_subscriber websocket;
            nchan_channel_id $pnyx_fr_space;
            nchan_subscribe_existing_channels_only on;
            nchan_subscriber_first_message newest;
            nchan_websocket_ping_interval {front.ping_s};
        }}
        location {SUBSCRIBE_PREFIX} {{
            return 404 "{NO_SUCH}\\n";
        }}
"""
