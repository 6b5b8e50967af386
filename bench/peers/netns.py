"""One network namespace for the servers a bench compares, joined to this machine's own
namespace by a veth pair with addresses in a private /30 (as root):

    main namespace  jb<pid>  10.218.K.1/30  <-- veth -->  eth0  10.218.K.2/30  pnyxjb-<pid>

Servers run inside (:meth:`Netns.spawn`, ``ip netns exec``) and bind 10.218.K.2; the
clients stay in the main namespace and reach them over the veth, so their media crosses
a real interface, not the loopback (Janus gathers no ICE candidates on the loopback).
:meth:`Netns.loss` drops a share of the UDP packets crossing that link both ways, with
nftables ``numgen random`` inside the namespace, and :meth:`Netns.jitter` delays each of
them by a random time (``tests/support/jitter.py``: NFQUEUE to a program that accepts each
packet late): this kernel has no ``sch_netem``, so ``tc netem`` is not available. The
two compose: the loss table drops first (priority -10), the survivors are delayed
(priority 0), as netem drops, then delays.

The namespace is named after the process that built it (``pnyxjb-<pid>``); a namespace of
a builder that no longer runs (a killed run) is removed, with whatever still runs in it,
when the next one is built. Leaving :func:`netns` stops what was spawned and deletes the
namespace, which deletes the veth pair.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from tests.support.jitter import Delay, Jitter, jitter
from tests.support.netlab import _alive, list_namespaces, remove_namespaces

PREFIX = "pnyxjb-"
BASE = ipaddress.IPv4Network("10.218.0.0/16")
LOSS_TABLE = "pnyxjb_loss"


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be made here (not root, no ``ip``)."""


@dataclass
class Netns:
    name: str
    host_dev: str  # the veth end in the main namespace
    host_addr: str  # its address: the clients' side
    addr: str  # the address inside: the servers bind it
    spawned: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
        kw.setdefault("capture_output", True)
        kw.setdefault("timeout", 30)
        done: subprocess.CompletedProcess[bytes] = subprocess.run(self.argv(argv), **kw)
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace") if done.stderr else ""
            raise RuntimeError(f"in {self.name}: {' '.join(argv)} exited {done.returncode}: {err}")
        return done

    def spawn(self, argv: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside, in its own process group; stopped on leaving. ``ip netns
        exec`` execs the command, so the process's pid is the server's own."""
        popen.setdefault("stdin", subprocess.DEVNULL)
        popen.setdefault("start_new_session", True)
        proc: subprocess.Popen[bytes] = subprocess.Popen(self.argv(argv), **popen)
        self.spawned.append(proc)
        return proc

    def loss(self, percent: int) -> None:
        """Drop ``percent`` % of the UDP packets entering and (separately) leaving the
        namespace on its veth, at random; 0 removes the rule. TCP (signalling) is spared.
        Dropped before :meth:`jitter` delays: a lost packet costs the delaying program
        nothing, and the two compose as on netem."""
        subprocess.run(
            self.argv(["nft", "delete", "table", "ip", LOSS_TABLE]),
            capture_output=True,
            check=False,
            timeout=30,
        )
        if percent <= 0:
            return
        if not 0 < percent < 100:
            raise ValueError("percent must be in [0, 100)")
        chance = f"numgen random mod 100 < {percent}"
        rules = f"""table ip {LOSS_TABLE} {{
    chain input {{
        type filter hook input priority -10; policy accept;
        iifname "eth0" meta l4proto udp counter comment "udp_in"
        iifname "eth0" meta l4proto udp {chance} counter drop comment "dropped_in"
    }}
    chain output {{
        type filter hook output priority -10; policy accept;
        oifname "eth0" meta l4proto udp counter comment "udp_out"
        oifname "eth0" meta l4proto udp {chance} counter drop comment "dropped_out"
    }}
}}
"""
        self.run(["nft", "-f", "-"], input=rules.encode())

    def jitter(
        self, mean_ms: float, spread_ms: float, *, seed: int | None = None, reorder: bool = True
    ) -> AbstractContextManager[Jitter]:
        """While in the block, delay each UDP packet entering or leaving the namespace on
        its veth by a time uniform in ``mean_ms ± spread_ms`` (``tc netem delay MEAN
        SPREAD``), independently, so the link reorders (``reorder=False``: it does not).
        With :meth:`loss` on, only the packets it lets through are delayed. The program's
        figures (packets, delays, its own CPU) are on the yielded value's ``stats`` after
        the block."""
        return jitter(self.name, "eth0", Delay(mean_ms, spread_ms, reorder, seed))

    @contextmanager
    def impaired(
        self, loss_pct: int, jitter_ms: float, seed: int | None = None
    ) -> Iterator[Jitter | None]:
        """:meth:`loss` of ``loss_pct`` % and :meth:`jitter` of ``jitter_ms ± jitter_ms``
        (netem's ``loss P% delay J J``; either 0: not applied) while in the block."""
        self.loss(loss_pct)
        try:
            if jitter_ms > 0:
                with self.jitter(jitter_ms, jitter_ms, seed=seed) as j:
                    yield j
            else:
                yield None
        finally:
            self.loss(0)

    def loss_counters(self) -> dict[str, int]:
        """Packets counted by the loss table's rules, by comment (empty without it)."""
        done = subprocess.run(
            self.argv(["nft", "list", "table", "ip", LOSS_TABLE]),
            capture_output=True,
            check=False,
            timeout=30,
        )
        out: dict[str, int] = {}
        for line in done.stdout.decode().splitlines():
            m = re.search(r"counter packets (\d+) .* comment \"([^\"]+)\"", line)
            if m:
                out[m.group(2)] = int(m.group(1))
        return out


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, check=False, timeout=30)
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()
        raise NetnsUnavailable(f"ip {' '.join(args)}: {err}")


def remove_stale() -> list[str]:
    """Remove the namespaces of builders that no longer run; their names."""
    stale = []
    for ns in list_namespaces(PREFIX):
        m = re.fullmatch(rf"{re.escape(PREFIX)}(\d+)", ns)
        if m is None or not _alive(int(m.group(1))):
            stale.append(ns)
    if stale:
        remove_namespaces(stale)
    return stale


def _free_subnet(pid: int) -> ipaddress.IPv4Network:
    """A /30 under BASE that no address of the main namespace overlaps (one per pid)."""
    done = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, check=True, timeout=30)
    taken = [
        ipaddress.IPv4Interface(x.split()[3]).network for x in done.stdout.decode().splitlines()
    ]
    for k in range(256):
        index = (pid + k) % (2**14)  # /30s in a /16
        net = ipaddress.IPv4Network((int(BASE.network_address) + 4 * index, 30))
        if not any(net.overlaps(t) for t in taken):
            return net
    raise NetnsUnavailable(f"no free /30 in {BASE}")


def build() -> Netns:
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root")
    remove_stale()
    pid = os.getpid()
    net = _free_subnet(pid)
    hosts = list(net.hosts())
    ns = Netns(f"{PREFIX}{pid}", f"jb{pid}", str(hosts[0]), str(hosts[1]))
    try:
        _ip("netns", "add", ns.name)
        _ip("-n", ns.name, "link", "set", "lo", "up")
        _ip("link", "add", ns.host_dev, "type", "veth", "peer", "name", "eth0", "netns", ns.name)
        _ip("addr", "add", f"{ns.host_addr}/30", "dev", ns.host_dev)
        _ip("link", "set", ns.host_dev, "up")
        _ip("-n", ns.name, "addr", "add", f"{ns.addr}/30", "dev", "eth0")
        _ip("-n", ns.name, "link", "set", "eth0", "up")
    except BaseException:
        teardown(ns)
        raise
    return ns


def teardown(ns: Netns) -> None:
    for proc in ns.spawned:
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in ns.spawned:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    remove_namespaces([ns.name])  # anything left inside, then the namespace and the veth
    subprocess.run(["ip", "link", "del", ns.host_dev], capture_output=True, check=False, timeout=30)


@contextmanager
def netns() -> Iterator[Netns]:
    built = build()
    try:
        yield built
    finally:
        teardown(built)
