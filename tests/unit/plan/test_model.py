"""The capacity model: linear where it should be, flat where the edges collapse requests,
instance counts rounded up, the join storm's refusal load."""

from __future__ import annotations

import pytest

from pnyx.plan import figures as figs
from pnyx.plan.model import Inputs, Latency, plan, up
from tests.unit.plan.support import with_values

LOW, STANDARD, AUTO = Latency.LOW, Latency.STANDARD, Latency.AUTO


def run(
    listeners: int,
    joins: float = 0.0,
    *,
    figures: figs.Figures | None = None,
    **kw: object,
) -> dict[str, float]:
    inputs = Inputs(listeners=listeners, joins_per_s=joins, **kw)  # type: ignore[arg-type]
    return plan(figures or figs.load(), inputs).predictions()


@pytest.mark.parametrize("mode", [LOW, STANDARD])
def test_double_the_listeners_doubles_the_per_listener_load(mode: Latency) -> None:
    one, two = run(100_000, latency=mode), run(200_000, latency=mode)
    for key in (
        "edge.reads_per_s",
        "edge.requests_per_s",
        "edge.cores",
        "edge.connections",
        "edge.egress_bytes_per_s",
        "heartbeats_per_s",
    ):
        assert two[key] == pytest.approx(2 * one[key]), key


def test_edge_requests_are_reads_heartbeats_and_joins() -> None:
    f = figs.load()
    p = run(30_000, 500, latency=LOW)
    reads = 30_000 * f.by_key["listener.reads_per_s.low"].value
    heartbeats = 30_000 / (15.0 * 0.95)
    assert p["heartbeats_per_s"] == pytest.approx(heartbeats)
    assert p["edge.requests_per_s"] == pytest.approx(reads + heartbeats + 500)


@pytest.mark.parametrize("mode", [LOW, STANDARD])
def test_origin_reads_are_flat_in_listeners(mode: Latency) -> None:
    small = run(50_000, latency=mode, edges=4)
    large = run(5_000_000, latency=mode, edges=4)
    assert large["origin.reads_per_s"] == pytest.approx(small["origin.reads_per_s"])
    assert large["origin.egress_bytes_per_s"] == pytest.approx(small["origin.egress_bytes_per_s"])
    per_edge = figs.load().by_key[f"origin.reads_per_edge_per_space_s.{mode}"].value
    assert large["origin.reads_per_s"] == pytest.approx(4 * per_edge)


def test_origin_reads_grow_with_edges_and_spaces() -> None:
    base = run(1_000_000, latency=LOW, edges=2, spaces=1)
    assert run(1_000_000, latency=LOW, edges=4, spaces=1)["origin.reads_per_s"] == pytest.approx(
        2 * base["origin.reads_per_s"]
    )
    assert run(1_000_000, latency=LOW, edges=2, spaces=3)["origin.reads_per_s"] == pytest.approx(
        3 * base["origin.reads_per_s"]
    )


def test_an_edge_with_few_listeners_sends_no_more_than_they_ask() -> None:
    p = run(1, latency=LOW, edges=1)
    assert p["origin.reads_per_s"] == pytest.approx(p["edge.reads_per_s"])


def test_origin_cpu_is_linear_in_the_request_costs() -> None:
    base = run(100_000, 1000, latency=LOW, edges=2)
    dearer = run(
        100_000,
        1000,
        latency=LOW,
        edges=2,
        figures=with_values(
            origin__core_ms__join=figs.load().by_key["origin.core_ms.join"].value + 1
        ),
    )
    assert dearer["origin.cores"] - base["origin.cores"] == pytest.approx(1000 * 1 / 1000)


def test_redis_ops_add_up() -> None:
    f = figs.load().by_key
    p = run(100_000, 1000, latency=STANDARD, edges=3, spaces=2)
    expected = (
        p["heartbeats_per_s"] * f["redis.ops_per_heartbeat"].value
        + 1000 * f["redis.ops_per_join"].value
        + p["origin.reads_per_s"] * f["redis.ops_per_origin_read"].value
        + 2 * f["redis.ops_per_space_s"].value
    )
    assert p["redis.ops_per_s"] == pytest.approx(expected)
    assert p["redis.space_ops_per_s"] == pytest.approx(expected / 2)


def test_instance_counts_round_up() -> None:
    # One edge instance plans 8 cores × 0.5 = 4 cores of cache hits: 40,000 reads/s.
    figures = with_values(
        edge__reads_per_core_s=10_000,
        edge__proxied_per_core_s=1e15,
        edge__cores_per_instance=8,
        edge__headroom=0.5,
        edge__connections_per_instance=10**9,
        edge__egress_bps_per_instance=1e15,
        listener__reads_per_s__low=1,
        heartbeat__interval_s=1e9,  # no heartbeats to speak of
    )
    # Plain HTTP: the edge's cores are its reads alone (TLS has its own tests).
    exactly = run(40_000 * 3, latency=LOW, figures=figures, tls=False)
    assert exactly["edge.instances.by_cores"] == 3  # no float-noise fourth
    just_over = run(40_000 * 3 + 100, latency=LOW, figures=figures, tls=False)
    assert just_over["edge.instances.by_cores"] == 4
    assert just_over["edge.instances"] == 4


def test_the_largest_edge_bound_wins() -> None:
    figures = with_values(edge__connections_per_instance=1000, edge__headroom=1)
    p = run(10_000, latency=STANDARD, figures=figures, tls=False)
    per_listener = figs.load().by_key["listener.connections.standard"].value
    assert p["edge.instances.by_connections"] == up(10_000 * per_listener / 1000)
    https = run(10_000, latency=STANDARD, figures=figures)  # HTTP/2: its own figure
    per_listener = figs.load().by_key["listener.connections.https"].value
    assert https["edge.instances.by_connections"] == up(10_000 * per_listener / 1000)
    assert p["edge.instances"] == max(
        p["edge.instances.by_cores"],
        p["edge.instances.by_connections"],
        p["edge.instances.by_egress"],
    )


def test_origin_processes_cover_cpu_and_join_rate() -> None:
    # Join rate: 10,000 / 800 = 12.5 → 13 processes even when CPU needs fewer.
    cheap = with_values(
        origin__core_ms__join=0.001,
        origin__core_ms__heartbeat=0.001,
        origin__core_ms__read=0.001,
        origin__join_rate_per_process=800,
    )
    assert run(1000, 10_000, figures=cheap)["origin.processes"] == 13
    # CPU: 10,000 joins/s × 1 ms = 10 cores at 0.5 → 20.
    dear = with_values(
        origin__core_ms__join=1,
        origin__core_ms__heartbeat=0,
        origin__core_ms__read=0,
        origin__headroom=0.5,
        origin__join_rate_per_process=10**6,
    )
    assert run(1000, 10_000, figures=dear)["origin.processes"] == 20
    assert run(0, 0)["origin.processes"] == 1


def test_auto_latency_follows_the_server_switch() -> None:
    f = figs.load()
    limit = int(f.by_key["latency.low_max_listeners"].value)
    assert plan(f, Inputs(limit, 0, latency=AUTO)).mode is LOW
    assert plan(f, Inputs(limit + 1, 0, latency=AUTO)).mode is STANDARD
    # The switch is per space: the same audience over enough spaces stays low.
    assert plan(f, Inputs(limit * 10, 0, spaces=10, latency=AUTO)).mode is LOW
    assert plan(f, Inputs(limit + 1, 0, latency=LOW)).mode is LOW
    auto = run(600_000, latency=AUTO)
    assert auto == run(600_000, latency=STANDARD)


def test_join_storm_refusals() -> None:
    f = figs.load().by_key
    p = run(600_000, 10_000)
    assert p["storm.offered_joins_per_s"] == 100_000
    assert p["storm.refused_per_s"] == pytest.approx(100_000 - p["storm.admitted_joins_per_s"])
    assert p["storm.admitted_joins_per_s"] >= 10_000
    refusal_ms = f["origin.core_ms.refusal"].value
    assert p["storm.refusal_cores"] == pytest.approx(p["storm.refused_per_s"] * refusal_ms / 1000)
    # Heartbeats are shed during the storm.
    assert p["storm.heartbeats_per_s"] == pytest.approx(
        p["heartbeats_per_s"] / f["heartbeat.shedding_x"].value
    )
    # The edge passes every offered join; refusals cost Redis nothing.
    assert p["storm.edge.requests_per_s"] == pytest.approx(
        p["edge.reads_per_s"] + p["storm.heartbeats_per_s"] + 100_000
    )
    assert p["storm.redis.ops_per_s"] == pytest.approx(
        p["storm.heartbeats_per_s"] * f["redis.ops_per_heartbeat"].value
        + p["storm.admitted_joins_per_s"] * f["redis.ops_per_join"].value
        + p["origin.reads_per_s"] * f["redis.ops_per_origin_read"].value
        + f["redis.ops_per_space_s"].value
    )


def test_storm_admissions_are_capped_by_the_planned_join_rate() -> None:
    figures = with_values(
        origin__core_ms__join=0.001,
        origin__core_ms__heartbeat=0.001,
        origin__core_ms__read=0.001,
        origin__core_ms__refusal=0.001,
        origin__join_rate_per_process=1000,
    )
    p = run(1000, 5000, figures=figures, storm_x=4)
    assert p["origin.processes"] == 5
    assert p["storm.admitted_joins_per_s"] == pytest.approx(5000)
    assert p["storm.refused_per_s"] == pytest.approx(15_000)


def test_a_storm_whose_refusals_eat_the_cpu_is_flagged() -> None:
    figures = with_values(
        origin__core_ms__join=1,
        origin__core_ms__refusal=0.5,
        origin__core_ms__heartbeat=0,
        origin__core_ms__read=0,
        origin__headroom=1,
        origin__join_rate_per_process=10**6,
    )
    result = plan(figures, Inputs(1000, 1000, storm_x=10))
    # 1 process, 1000 ms of CPU per second: refusing 10,000 joins/s would take 5 s of it.
    assert result["origin.processes"] == 1
    assert result["storm.admitted_joins_per_s"] == 0
    assert result["storm.refusal_cores"] == pytest.approx(5)
    assert any("admit only 0 joins/s" in w for w in result.warnings)
    assert any("refusing alone" in w for w in result.warnings)


def test_storm_admissions_fill_the_cpu_left() -> None:
    figures = with_values(
        origin__core_ms__join=1,
        origin__core_ms__refusal=0.1,
        origin__core_ms__heartbeat=0,
        origin__core_ms__read=0,
        origin__headroom=0.5,
        origin__join_rate_per_process=10**6,
    )
    result = plan(figures, Inputs(0, 1000, storm_x=5))
    # 2 processes (1 core of joins at 50%); flat out: 2000 ms = 0.1 × 5000 + 0.9 × admitted.
    assert result["origin.processes"] == 2
    assert result["storm.admitted_joins_per_s"] == pytest.approx(1500 / 0.9)
    assert result["storm.origin.cores"] == pytest.approx(2)
    assert result.warnings == ()


def test_warnings_for_redis_beyond_one_instance() -> None:
    busy = with_values(**{"redis.ops_per_heartbeat": 3.0})
    result = plan(busy, Inputs(1_200_000, 10_000))
    assert result["redis.instances"] > 1
    assert any("one Redis URL" in w for w in result.warnings)
    assert any("one space alone" in w for w in result.warnings)
    assert plan(busy, Inputs(1000, 10)).warnings == ()


def test_pinned_edges_below_the_need_are_flagged() -> None:
    result = plan(figs.load(), Inputs(1_000_000, 0, edges=1))
    assert result["edge.instances"] == 1
    assert any("--edges 1" in w for w in result.warnings)


def test_stage_nodes() -> None:
    assert run(1000, spaces=1)["stage.nodes"] == 2  # 0.36 of a core > half: 1 space/node + 1 spare
    two_per_node = with_values(
        stage__cores_per_space=0.2,
        captions__cores_per_space=0.0,
        stage__headroom=0.5,
        stage__spare_nodes=0,
    )
    assert run(1000, spaces=5, figures=two_per_node)["stage.nodes"] == 3
    # Captions count against the same headroom: 0.2 + 0.07 leaves room for one space.
    captioned = with_values(
        stage__cores_per_space=0.2,
        captions__cores_per_space=0.07,
        stage__headroom=0.5,
        stage__spare_nodes=0,
    )
    assert run(1000, spaces=5, figures=captioned)["stage.nodes"] == 5


def test_lines_name_known_figures_and_carry_their_inputs_figures() -> None:
    result = plan(figs.load(), Inputs(600_000, 10_000))
    for line in result.lines:
        assert set(line.figures) <= set(figs.SPECS), line.key
        assert set(line.figures) <= set(line.sources)
        for via in line.via:
            assert set(result.line(via).sources) <= set(line.sources)
    # The origin's reads rest on the edge count, and so on the edges' figures.
    assert "edge.connections_per_instance" in result.line("origin.reads_per_s").sources


@pytest.mark.parametrize(
    "kw",
    [
        {"listeners": -1, "joins_per_s": 0},
        {"listeners": 1, "joins_per_s": -1},
        {"listeners": 1, "joins_per_s": 0, "spaces": 0},
        {"listeners": 1, "joins_per_s": 0, "edges": 0},
        {"listeners": 1, "joins_per_s": 0, "storm_x": 0.5},
    ],
)
def test_bad_inputs(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (each message is checked by the CLI test)
        Inputs(**kw)  # type: ignore[arg-type]


def test_up() -> None:
    assert up(0) == 0
    assert up(2.0000000001) == 2
    assert up(2.01) == 3


# -- TLS at the edge ----------------------------------------------------------------------


def _tls_cost(f: dict[str, figs.Figure]) -> float:
    """Edge core-seconds per new TLS connection, from the figures."""
    share = f["edge.tls.full_handshake_share"].value
    full = f["edge.tls.full_handshakes_per_core_s"].value
    resumed = f["edge.tls.resumed_handshakes_per_core_s"].value
    return share / full + (1 - share) / resumed


@pytest.mark.parametrize("mode", [LOW, STANDARD])
def test_tls_handshakes_follow_the_joins(mode: Latency) -> None:
    f = figs.load().by_key
    p = run(100_000, 2_000, latency=mode)
    conns = 2_000 * f["listener.connections.https"].value  # HTTP/2, either tier
    assert p["edge.tls.connections_per_s"] == pytest.approx(conns)
    assert p["edge.tls.handshake_cores"] == pytest.approx(conns * _tls_cost(f))
    # No joins, no handshakes: listeners keep their connections.
    assert run(100_000, 0, latency=mode)["edge.tls.handshake_cores"] == 0


def test_tls_encryption_follows_the_egress() -> None:
    f = figs.load().by_key
    p = run(600_000, 10_000)
    gbps = p["edge.egress_bits_per_s"] / 1e9
    assert p["edge.tls.bulk_cores"] == pytest.approx(gbps * f["edge.tls.cores_per_gbps"].value)
    assert p["edge.tls.cores"] == pytest.approx(
        p["edge.tls.handshake_cores"] + p["edge.tls.bulk_cores"]
    )
    # Encryption is per byte: twice the listeners, twice the bulk cores.
    assert run(1_200_000, 10_000)["edge.tls.bulk_cores"] == pytest.approx(
        2 * p["edge.tls.bulk_cores"]
    )


def test_tls_adds_to_the_edge_cores_and_can_be_left_out() -> None:
    with_tls = run(600_000, 10_000)
    plain = run(600_000, 10_000, tls=False)
    assert with_tls["edge.http_cores"] == pytest.approx(plain["edge.cores"])
    assert with_tls["edge.cores"] == pytest.approx(plain["edge.cores"] + with_tls["edge.tls.cores"])
    assert not any(k.startswith(("edge.tls.", "storm.edge.tls.")) for k in plain)
    # Enough TLS work on the edge's cores makes cores the binding edge bound.
    dear = with_values(
        edge__tls__cores_per_gbps=10.0,
        edge__connections_per_instance=10**9,
        edge__egress_bps_per_instance=1e15,
    )
    p = run(600_000, 10_000, figures=dear)
    assert p["edge.instances"] == p["edge.instances.by_cores"]
    cores_per_edge = figs.load().by_key["edge.cores_per_instance"].value * 0.7
    assert p["edge.instances"] == up(p["edge.cores"] / cores_per_edge)


def test_cheaper_resumption_and_fewer_full_handshakes_cost_less() -> None:
    base = run(600_000, 10_000)["edge.tls.handshake_cores"]
    all_full = run(600_000, 10_000, figures=with_values(edge__tls__full_handshake_share=1.0))
    half = run(600_000, 10_000, figures=with_values(edge__tls__full_handshake_share=0.5))
    assert half["edge.tls.handshake_cores"] < all_full["edge.tls.handshake_cores"]
    f = figs.load().by_key
    assert all_full["edge.tls.handshake_cores"] == pytest.approx(
        10_000
        * f["listener.connections.https"].value
        / f["edge.tls.full_handshakes_per_core_s"].value
    )
    twice = with_values(
        edge__tls__full_handshakes_per_core_s=2 * f["edge.tls.full_handshakes_per_core_s"].value,
        edge__tls__resumed_handshakes_per_core_s=2
        * f["edge.tls.resumed_handshakes_per_core_s"].value,
    )
    assert run(600_000, 10_000, figures=twice)["edge.tls.handshake_cores"] == pytest.approx(
        base / 2
    )


def test_a_join_storm_is_a_wave_of_handshakes() -> None:
    f = figs.load().by_key
    p = run(600_000, 10_000, storm_x=10)
    conns = 100_000 * f["listener.connections.https"].value
    assert p["storm.edge.tls.connections_per_s"] == pytest.approx(conns)
    assert p["storm.edge.tls.cores"] == pytest.approx(
        conns * _tls_cost(f) + p["edge.tls.bulk_cores"]
    )
    plain = run(600_000, 10_000, storm_x=10, tls=False)
    assert p["storm.edge.cores"] == pytest.approx(
        plain["storm.edge.cores"] + p["storm.edge.tls.cores"]
    )
    # A handshake cost the planned edges cannot carry in the storm is flagged.
    dear = with_values(
        edge__tls__full_handshakes_per_core_s=50, edge__tls__resumed_handshakes_per_core_s=50
    )
    result = plan(dear, Inputs(600_000, 10_000))
    assert any("join storm needs" in w and "edge cores" in w for w in result.warnings)
