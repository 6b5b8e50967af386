"""Human summaries of the loadtest reports (pure: report dict in, text out)."""

from __future__ import annotations

from typing import Any


def _ms(row: dict[str, Any]) -> str:
    def f(v: Any) -> str:
        return "-" if v is None else f"{v:.1f}"

    return (
        f"n={row['count']:<8} p50={f(row['p50_ms']):>8} p95={f(row['p95_ms']):>8} "
        f"p99={f(row['p99_ms']):>8} max={f(row['max_ms']):>8} ms"
    )


def connections_text(c: dict[str, Any]) -> str:
    line = f"  connections: {c['made']} made; connect {_ms(c['connect_ms'])}"
    if c["tls_full"] or c["tls_resumed"]:
        line += (
            f"\n  TLS handshakes: {c['tls_full']} full, {c['tls_resumed']} resumed; "
            f"full p50 {_p50(c['connect_full_ms'])}, resumed p50 "
            f"{_p50(c['connect_resumed_ms'])} (connect included)"
        )
    return line


def _p50(row: dict[str, Any]) -> str:
    return "-" if row["p50_ms"] is None else f"{row['p50_ms']:.1f} ms"


def listeners_text(r: dict[str, Any]) -> str:
    c, lst, j, st, cnt, rate, cpu = (
        r["config"],
        r["listeners"],
        r["joins"],
        r["stalls"],
        r["count"],
        r["rate"],
        r["cpu"],
    )
    err = cnt["rel_error"]
    lines = [
        f"pnyx loadtest listeners: {c['listeners']} listeners on space {c['space']} via "
        f"{c['url']} for {r['elapsed_s']} s (latency {c['latency']}, {c['procs']} proc)",
        f"  listeners: started {lst['started']}, joined {lst['joined']}, active "
        f"{lst['active']}, heartbeating {lst['heartbeating']}, playing {lst['playing']} "
        f"(low {lst['mode_low']}, standard {lst['mode_standard']})",
        f"  joins: {j['accepted']} accepted, {j['refused']} refusals, {j['failed']} failed, "
        f"{j['given_up']} gave up; heartbeats refused {r['heartbeats']['refused']}",
        f"  stalls: {st['total']} in {st['listeners_stalled']} listeners, "
        f"{st['stalled_s']} s stalled ({st['stalled_at_end']} stalled at the end, "
        f"{st['skips']} gaps skipped)",
        f"  count: state says {cnt['seen']}, truth {cnt['truth']}"
        + ("" if err is None else f" ({err:+.1%})"),
        f"  behind live edge: p50 {r['behind_live_s']['p50']} s, p95 {r['behind_live_s']['p95']} s",
        f"  traffic: {rate['requests']} requests, {rate['requests_per_s']:,.0f} req/s, "
        f"{rate['bytes_per_s'] / 1e6:.2f} MB/s received",
        f"  client CPU: {cpu['client_cpu_s']} s, {cpu['cpu_per_request_us']} µs/request, "
        f"{cpu['cores_used']} cores",
        connections_text(r["connections"]),
        "  requests:",
    ]
    for kind, row in r["requests"].items():
        lines.append(f"    {kind:<10} {_ms(row)} errors={row['errors']}")
    if r["http_errors"]:
        lines.append(f"  http errors: {r['http_errors']}")
    return "\n".join(lines) + "\n"


def joinstorm_text(r: dict[str, Any]) -> str:
    c, stage = r["config"], r["stage"]
    lines = [
        f"pnyx loadtest joinstorm: space {c['space']}, {c['rate']:g} joins/s after "
        f"{c['ramp_s']:g} s ramp, {r['elapsed_s']} s",
        f"  offered {r['offered']}, not sent {r['not_sent']}"
        + ("  (INVALID RUN: pool exhausted)" if r["not_sent"] else ""),
        f"  accepted {r['accepted']} (peak {r['peak_accepted_per_s']}/s), refused "
        f"{r['refused']} (all with Retry-After: {r['all_refusals_had_retry_after']}), "
        f"errors {r['errors']}, timeouts {r['timeouts']}",
        f"  join       {_ms(r['join_ms'])}",
        f"  refusal    {_ms(r['refusal_ms'])}",
        f"  stage: {stage['actions']} actions, {stage['failures']} failures; {_ms(stage)}",
        f"  connections: {r['connections']['opened']} opened, peak busy "
        f"{r['connections']['peak_busy']}; client CPU {r['cpu']['client_cpu_s']} s "
        f"({r['cpu']['cpu_per_request_us']} µs/request)",
        connections_text(r["connections"]),
    ]
    if stage["errors"]:
        lines.append(f"  stage errors: {stage['errors']}")
    if r["http_errors"]:
        lines.append(f"  http errors: {r['http_errors']}")
    return "\n".join(lines) + "\n"
