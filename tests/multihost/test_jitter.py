"""The jitter emulator (``tests/support/jitter.py``): UDP crossing a veth between two
network namespaces is delayed per packet as asked (uniform in mean ± spread, both ways,
reordered unless told not to), every packet arrives, and nothing stays behind: not the
rules, not the program, not a packet when the program is killed.

Two namespaces ``pnyxjt-<pid>-a`` and ``-b`` joined by a veth (10.9.9.1 - 10.9.9.2), none
of it in the machine's own namespace; the jitter is on b's end. A sends timestamped
datagrams to b at a steady rate; b echoes each at once. B's arrival time gives the delay
in (b's input), a's arrival of the echo the delay out (b's output) added to it.
"""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from tests.multihost.conftest import require_lab_tools, unavailable
from tests.support import netlab
from tests.support.jitter import IPTABLES, Delay, jitter
from tests.support.poll import wait_until
from tests.support.procs import require_binary

pytestmark = pytest.mark.multihost

PREFIX = "pnyxjt-"
A, B = "10.9.9.1", "10.9.9.2"
PORT = 5000
COUNT = 1000  # datagrams per probe
RATE = 500  # per second: the probe takes 2 s
QUIET = 0.5  # s: the longest delay asked for is 40 ms


@dataclass(frozen=True)
class Pair:
    a: str
    b: str


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, check=False, timeout=30)
    if done.returncode != 0:
        unavailable(f"ip {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")


@contextmanager
def namespace_pair() -> Iterator[Pair]:
    require_lab_tools()
    require_binary(IPTABLES, "/usr/sbin", "/sbin")
    if os.geteuid() != 0:
        unavailable("network namespaces need root")
    stale = [
        ns
        for ns in netlab.list_namespaces(PREFIX)
        if (m := re.match(rf"{PREFIX}(\d+)-", ns)) is None or not netlab.running(int(m[1]))
    ]
    netlab.remove_namespaces(stale)
    pair = Pair(f"{PREFIX}{os.getpid()}-a", f"{PREFIX}{os.getpid()}-b")
    try:
        for ns in (pair.a, pair.b):
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", pair.a, "link", "add", "eth0", "type", "veth", "peer", "eth0", "netns", pair.b)
        yield pair
    finally:
        netlab.remove_namespaces([pair.a, pair.b])


@pytest.fixture
def pair() -> Iterator[Pair]:
    with namespace_pair() as built:
        yield built


@dataclass
class Probe:
    """Per datagram (by sequence number): the delay in and the delay out, in ms, and the
    order they arrived in at b."""

    inbound: dict[int, float] = field(default_factory=dict)
    outbound: dict[int, float] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)

    def inversions(self) -> int:
        return sum(1 for x, y in zip(self.order, self.order[1:], strict=False) if y < x)


def _socket_in(ns: str, addr: str) -> socket.socket:
    made: list[socket.socket] = []

    def make() -> None:
        netlab.enter_netns(ns)  # this thread only; the socket keeps the namespace
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind((addr, PORT))
        made.append(s)

    t = threading.Thread(target=make)
    t.start()
    t.join(10)
    return made[0]


def probe(a: socket.socket, b: socket.socket, count: int = COUNT) -> Probe:
    """``count`` datagrams a -> b at RATE/s, each echoed b -> a. The receivers stop once
    all have come, or nothing has for QUIET s after the last was sent; at the latest
    ``count / RATE + 10`` s after the start."""
    out = Probe()
    deadline = time.monotonic() + count / RATE + 10
    sent = threading.Event()

    def receive(sock: socket.socket, got: dict[int, float], on: Callable[[bytes], None]) -> None:
        sock.settimeout(QUIET)
        while len(got) < count and time.monotonic() < deadline:
            try:
                on(sock.recv(64))
            except TimeoutError:
                if sent.is_set():
                    return

    def at_b(data: bytes) -> None:
        now = time.monotonic_ns()
        seq, sent_ns = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:12], "big")
        out.inbound[seq] = (now - sent_ns) / 1e6
        out.order.append(seq)
        b.sendto(data + now.to_bytes(8, "big"), (A, PORT))

    def at_a(data: bytes) -> None:
        seq, echoed = int.from_bytes(data[:4], "big"), int.from_bytes(data[12:20], "big")
        out.outbound[seq] = (time.monotonic_ns() - echoed) / 1e6

    threads = [
        threading.Thread(target=receive, args=(b, out.inbound, at_b)),
        threading.Thread(target=receive, args=(a, out.outbound, at_a)),
    ]
    for t in threads:
        t.start()
    start = time.monotonic()
    for seq in range(count):  # paced: one datagram each 1/RATE s
        time.sleep(max(0.0, start + seq / RATE - time.monotonic()))
        a.sendto(seq.to_bytes(4, "big") + time.monotonic_ns().to_bytes(8, "big"), (B, PORT))
    sent.set()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + QUIET + 1)
    return out


@contextmanager
def wired(pair: Pair) -> Iterator[tuple[socket.socket, socket.socket]]:
    for ns, addr in ((pair.a, A), (pair.b, B)):
        _ip("-n", ns, "addr", "add", f"{addr}/30", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
    a, b = _socket_in(pair.a, A), _socket_in(pair.b, B)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def queue_rules(ns: str) -> list[str]:
    done = subprocess.run(
        ["ip", "netns", "exec", ns, IPTABLES, "-w", "-S"], capture_output=True, check=True
    )
    return [line for line in done.stdout.decode().splitlines() if "NFQUEUE" in line]


def uniform_sd(spread_ms: float) -> float:
    return 2 * spread_ms / 12**0.5


def test_each_packet_is_delayed_by_mean_plus_or_minus_spread_both_ways(pair: Pair) -> None:
    with wired(pair) as (a, b):
        before = probe(a, b, 200)
        assert len(before.inbound) == len(before.outbound) == 200
        assert statistics.median(before.inbound.values()) < 2, before.inbound

        with jitter(pair.b, "eth0", Delay(mean_ms=20, spread_ms=20, seed=7)) as j:
            got = probe(a, b)
            counted = j.counters()
        # Every packet arrives (no loss asked for), each way.
        assert len(got.inbound) == COUNT, f"{COUNT - len(got.inbound)} lost on the way in"
        assert len(got.outbound) == COUNT, f"{COUNT - len(got.outbound)} lost on the way out"
        assert counted == {"queued_in": COUNT, "queued_out": COUNT}, counted
        stats = j.stats
        assert stats.packets == stats.accepted == 2 * COUNT, stats
        assert stats.overruns == 0, stats
        for way, delays in (("in", list(got.inbound.values())), ("out", got.outbound.values())):
            ms = sorted(delays)
            mean, sd = statistics.fmean(ms), statistics.pstdev(ms)
            low, high = ms[len(ms) // 20], ms[-len(ms) // 20]
            print(
                f"{way}: mean {mean:.1f} ms, sd {sd:.1f}, p5 {low:.1f}, p95 {high:.1f}, "
                f"min {ms[0]:.1f}, max {ms[-1]:.1f}"
            )
            # Uniform in 0-40 ms: mean 20, sd 11.5, p5 2, p95 38 (plus the machine's
            # scheduling, a fraction of a ms when it is not loaded).
            assert 19 <= mean <= 24, (way, mean)
            assert uniform_sd(20) - 2 <= sd <= uniform_sd(20) + 2, (way, sd)
            assert low < 6 and high > 34, (way, low, high)
            assert ms[-1] < 40 + 15, (way, ms[-1])
        # Like netem's delay with jitter, the link reorders.
        assert got.inversions() > COUNT // 10, got.inversions()
        print(
            f"the program: {stats.cpu_s * 1000:.0f} ms CPU for {stats.packets} packets in "
            f"{stats.wall_s:.1f} s: {stats.cpu_per_kpps():.1f} % of one core per 1,000 "
            f"packets/s; at most {stats.most_held} held"
        )

        # Gone without a trace: no rule, no program, no delay.
        assert queue_rules(pair.b) == []
        assert j.proc.poll() is not None
        after = probe(a, b, 200)
        assert len(after.inbound) == 200
        assert statistics.median(after.inbound.values()) < 2


def test_without_reordering_the_order_is_kept(pair: Pair) -> None:
    with wired(pair) as (a, b):
        with jitter(pair.b, "eth0", Delay(20, 20, reorder=False, seed=3)) as j:
            got = probe(a, b, 500)
        assert len(got.inbound) == 500 and got.inversions() == 0
        assert statistics.fmean(got.inbound.values()) >= 19
        assert j.stats.accepted == j.stats.packets == 1000


def test_a_killed_program_holds_nothing_up(pair: Pair) -> None:
    """``--queue-bypass``: with the program gone the packets pass, undelayed."""
    with wired(pair) as (a, b), jitter(pair.b, "eth0", Delay(20, 20, seed=5)) as j:
        assert len(probe(a, b, 100).inbound) == 100
        j.proc.kill()
        wait_until(lambda: j.proc.poll() is not None, 10, "the jitter program to die")
        got = probe(a, b, 200)
        assert len(got.inbound) == len(got.outbound) == 200
        assert statistics.median(got.inbound.values()) < 2
        assert len(queue_rules(pair.b)) == 2  # the rules are still there: bypassed
    assert queue_rules(pair.b) == []


def test_loss_first_then_jitter_every_survivor_arrives(pair: Pair) -> None:
    """The bench's order (``bench/peers/netns.py``): an nftables table drops at priority
    -10, the queue rules (priority 0) delay what is left. A dropped packet is never
    queued, and every queued one arrives."""
    loss = """table ip pnyxjt_loss {
    chain input {
        type filter hook input priority -10; policy accept;
        iifname "eth0" meta l4proto udp numgen random mod 100 < 10 counter drop
    }
}
"""
    with wired(pair) as (a, b):
        subprocess.run(
            ["ip", "netns", "exec", pair.b, "nft", "-f", "-"], input=loss.encode(), check=True
        )
        with jitter(pair.b, "eth0", Delay(20, 20, seed=11)) as j:
            got = probe(a, b, 500)
            queued = j.counters()
        assert 400 <= len(got.inbound) <= 490, len(got.inbound)  # 10 % lost: 450 ± 5 sd
        assert queued["queued_in"] == len(got.inbound), (queued, len(got.inbound))
        assert queued["queued_out"] == len(got.outbound) == len(got.inbound)
        assert 17 <= statistics.fmean(got.inbound.values()) <= 25
