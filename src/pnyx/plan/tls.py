"""The TLS part of a plan: edge CPU for handshakes and for encrypting what the edge sends.

Listeners reach the edge over HTTPS (``Inputs.tls``, the default). Two costs are added to
the edge's HTTP work, each from ``bench/tls.py`` figures:

- handshakes: every joining listener opens ``listener.connections.https`` new
  connections (HTTP/2); a share ``edge.tls.full_handshake_share`` are full handshakes, the rest
  resume a session (cheaper: no certificate signature);
- encryption: everything the edge sends, at ``edge.tls.cores_per_gbps`` (the CPU TLS
  adds per Gbit/s over plain HTTP with ``sendfile``).
"""

from __future__ import annotations

from pnyx.plan.lines import Book

HANDSHAKE_FIGURES = (
    "edge.tls.full_handshake_share",
    "edge.tls.full_handshakes_per_core_s",
    "edge.tls.resumed_handshakes_per_core_s",
)
HANDSHAKE_HOW = (
    "(edge.tls.full_handshake_share ÷ edge.tls.full_handshakes_per_core_s + the rest ÷ "
    "edge.tls.resumed_handshakes_per_core_s)"
)


def core_s_per_connection(b: Book) -> float:
    """Edge CPU seconds per new TLS connection: full handshakes and resumed ones mixed."""
    share = b.f("edge.tls.full_handshake_share")
    return share / b.f("edge.tls.full_handshakes_per_core_s") + (1.0 - share) / b.f(
        "edge.tls.resumed_handshakes_per_core_s"
    )


def add_edge_tls(b: Book, joins_per_s: float) -> float:
    """The TLS lines of the edge; returns the edge's TLS cores. Needs the edge's egress."""
    conns_k = "listener.connections.https"  # HTTP/2: the same in either tier
    b.add(
        "edge.tls.connections_per_s",
        joins_per_s * b.f(conns_k),
        "connections/s",
        f"joins/s × {conns_k} (the new connections of joining listeners)",
        figures=[conns_k],
    )
    b.add(
        "edge.tls.handshake_cores",
        b["edge.tls.connections_per_s"] * core_s_per_connection(b),
        "cores",
        f"new TLS connections/s × {HANDSHAKE_HOW}",
        figures=HANDSHAKE_FIGURES,
        lines=["edge.tls.connections_per_s"],
    )
    b.add(
        "edge.tls.bulk_cores",
        b["edge.egress_bits_per_s"] / 1e9 * b.f("edge.tls.cores_per_gbps"),
        "cores",
        "edge egress Gbit/s × edge.tls.cores_per_gbps",
        figures=["edge.tls.cores_per_gbps"],
        lines=["edge.egress_bits_per_s"],
    )
    return b.add(
        "edge.tls.cores",
        b["edge.tls.handshake_cores"] + b["edge.tls.bulk_cores"],
        "cores",
        "TLS handshake cores + TLS encryption (bulk) cores",
        lines=["edge.tls.handshake_cores", "edge.tls.bulk_cores"],
    )


def add_storm_tls(b: Book, storm_x: float) -> float:
    """The edge's TLS cores in a join storm; returns them."""
    b.add(
        "storm.edge.tls.connections_per_s",
        storm_x * b["edge.tls.connections_per_s"],
        "connections/s",
        f"{storm_x:g} × new TLS connections/s (every offered join counted as a new "
        "listener's connections: retries on a kept-alive connection need none, so this "
        "is an upper bound)",
        lines=["edge.tls.connections_per_s"],
    )
    return b.add(
        "storm.edge.tls.cores",
        b["storm.edge.tls.connections_per_s"] * core_s_per_connection(b) + b["edge.tls.bulk_cores"],
        "cores",
        f"storm TLS connections/s × {HANDSHAKE_HOW} + TLS bulk cores",
        figures=HANDSHAKE_FIGURES,
        lines=["storm.edge.tls.connections_per_s", "edge.tls.bulk_cores"],
    )
