"""Network jitter without ``sch_netem``: the UDP packets crossing one interface of a
network namespace are queued by netfilter (the NFQUEUE target, ``--queue-bypass``) to a
small program (this module, run inside the namespace) that holds each one for a random
delay and only then tells the kernel to let it through.

The kernel of the machines this project runs on has no ``sch_netem`` (``tc qdisc add ...
netem`` fails: "Specified qdisc kind is unknown") and no ``nft_queue`` either (nft's own
``queue`` statement fails: "No such file or directory"), but it has ``nfnetlink_queue``
and the xtables NFQUEUE target, which ``iptables-nft`` puts in an nftables chain
(``table ip filter``, priority 0):

    rules (inside the namespace, both ways):  -i/-o DEV -p udp -j NFQUEUE
                                              --queue-num N --queue-bypass
    the program: AF_NETLINK / NETLINK_NETFILTER socket, nfnetlink_queue protocol:
        config BIND queue N, copy mode META (the packet's id, none of its bytes),
        fail-open (a full queue lets packets through), then per packet message:
        draw a delay, keep (release time, id) on a heap, and at the release time send
        the NF_ACCEPT verdict for it (every verdict due at once in one datagram).

**The delay** is drawn per packet, independently, uniform in ``[mean - spread, mean +
spread]`` ms (clipped at 0): ``mean_ms=20, spread_ms=20`` is ``tc netem delay 20ms 20ms``
(netem's default distribution is that uniform one). As on netem, a packet drawn a
shorter delay than the one before it overtakes it: the link reorders. ``reorder=False``
keeps the order instead (a packet is never released before the one queued before it,
which stretches the delays a little towards the maximum).

**Bounded**: every packet gets a verdict. On a stop (stdin closed, or SIGTERM) the program
accepts everything it still holds before it exits; ``bypass`` accepts packets while no
program is bound (it died, or has not started), and fail-open while the kernel's queue is
full. (A program killed outright loses what it held, at most the longest delay's worth:
the kernel drops a queue's packets when its socket goes.) Loss composes:
``bench/peers/netns.py``'s loss table drops at priority -10, before the queue rules
(priority 0), so a lost packet is never delayed (netem, too, drops before it delays).

    with jitter("ns-name", "eth0", Delay(mean_ms=20, spread_ms=20, seed=1)) as j:
        ...                       # UDP on eth0 of ns-name is delayed
    j.stats                       # what the program did (packets, delays, its CPU)

Python's standard library only. Its CPU (it runs next to what benches measure) is in
``stats``: ``cpu_s`` over ``packets``.
"""

from __future__ import annotations

import argparse
import errno
import heapq
import json
import os
import random
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

IPTABLES = "iptables-nft"  # see the module doc: nft's own ``queue`` is missing here
QUEUE = 4711  # queue numbers are per network namespace
ROOT = Path(__file__).resolve().parents[2]

# <linux/netlink.h>, <linux/netfilter/nfnetlink.h>, <linux/netfilter/nfnetlink_queue.h>
NETLINK_NETFILTER = 12
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 0x2
NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid (host order)
NFGENMSG = struct.Struct("!BBH")  # family, version, res_id (big-endian: the queue)
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = NFNL_SUBSYS_QUEUE << 8 | 0
NFQNL_MSG_VERDICT = NFNL_SUBSYS_QUEUE << 8 | 1
NFQNL_MSG_CONFIG = NFNL_SUBSYS_QUEUE << 8 | 2
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 4
NFQA_CFG_FLAGS = 5
NFQNL_CFG_CMD_BIND = 1
NFQNL_CFG_CMD_UNBIND = 2
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN = 0x1
NF_ACCEPT = 1
QUEUE_MAXLEN = 8192
RCVBUF = 8 << 20


class JitterUnavailable(RuntimeError):
    """The queue cannot be bound here (no nfnetlink_queue, not root, queue taken)."""


@dataclass(frozen=True)
class Delay:
    """Per packet: uniform in [mean - spread, mean + spread] ms, clipped at 0."""

    mean_ms: float
    spread_ms: float
    reorder: bool = True
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.mean_ms < 0 or self.spread_ms < 0 or self.mean_ms + self.spread_ms > 10_000:
            raise ValueError("mean_ms and spread_ms must be >= 0, their sum at most 10 s")


@dataclass
class Stats:
    packets: int = 0  # queued to the program
    accepted: int = 0  # verdicts given (all of them, by the exit)
    flushed: int = 0  # of those, accepted early because the program was stopped
    delay_sum_s: float = 0.0  # held, from arrival to verdict
    delay_max_s: float = 0.0
    most_held: int = 0
    overruns: int = 0  # ENOBUFS: the socket's buffer overflowed (should stay 0)
    cpu_s: float = 0.0
    wall_s: float = 0.0

    @property
    def mean_delay_ms(self) -> float:
        return self.delay_sum_s / max(self.accepted, 1) * 1000

    def cpu_per_kpps(self) -> float:
        """The program's CPU, % of one core, per 1,000 packets/s it handled."""
        if self.packets == 0 or self.wall_s <= 0:
            return 0.0
        return self.cpu_s / self.wall_s * 100 / (self.packets / self.wall_s / 1000)


# -- the netlink side ------------------------------------------------------------------


def _attr(kind: int, data: bytes) -> bytes:
    size = 4 + len(data)
    return struct.pack("=HH", size, kind) + data + b"\0" * (-size % 4)


class NfQueue:
    """One bound nfnetlink_queue in the calling process's network namespace."""

    def __init__(self, num: int) -> None:
        self.num = num
        self.seq = 0
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        except OSError as exc:
            raise JitterUnavailable(f"no netfilter netlink socket: {exc}") from exc
        try:
            with suppress(OSError):  # as root: past rmem_max
                self.sock.setsockopt(socket.SOL_SOCKET, 33, RCVBUF)  # SO_RCVBUFFORCE
            self.sock.bind((0, 0))
            self._config(_attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0)))
            params = struct.pack("!IB", 0, NFQNL_COPY_META)
            flags = struct.pack("!I", NFQA_CFG_F_FAIL_OPEN)
            self._config(
                _attr(NFQA_CFG_PARAMS, params)
                + _attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", QUEUE_MAXLEN))
                + _attr(NFQA_CFG_MASK, flags)
                + _attr(NFQA_CFG_FLAGS, flags)
            )
        except BaseException:
            self.sock.close()
            raise
        self.sock.setblocking(False)
        self.buf = bytearray(65536)

    def _message(self, kind: int, body: bytes, flags: int = NLM_F_REQUEST) -> bytes:
        self.seq += 1
        payload = NFGENMSG.pack(socket.AF_UNSPEC, 0, self.num) + body
        return NLMSG_HDR.pack(NLMSG_HDR.size + len(payload), kind, flags, self.seq, 0) + payload

    def _config(self, body: bytes) -> None:
        """Send a config message and wait for the kernel's acknowledgement."""
        self.sock.send(self._message(NFQNL_MSG_CONFIG, body, NLM_F_REQUEST | NLM_F_ACK))
        self.sock.settimeout(5)
        reply = self.sock.recv(65536)
        _, kind, _, _, _ = NLMSG_HDR.unpack_from(reply)
        if kind == NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", reply, NLMSG_HDR.size)
            if code < 0:
                raise JitterUnavailable(f"nfnetlink_queue {self.num}: {os.strerror(-code)}")

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self, into: list[int]) -> int:
        """Append the ids of the packets waiting on the socket (without blocking);
        the count of overruns (ENOBUFS) met."""
        overruns = 0
        view = memoryview(self.buf)
        while True:
            try:
                n = self.sock.recv_into(self.buf)
            except BlockingIOError:
                return overruns
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                overruns += 1
                continue
            at = 0
            while at + NLMSG_HDR.size <= n:
                length, kind, _, _, _ = NLMSG_HDR.unpack_from(view, at)
                if length < NLMSG_HDR.size:
                    break
                if kind == NFQNL_MSG_PACKET:
                    a, end = at + NLMSG_HDR.size + NFGENMSG.size, at + length
                    while a + 4 <= end:
                        size, atype = struct.unpack_from("=HH", view, a)
                        if size < 4:
                            break
                        if atype & 0x7FFF == NFQA_PACKET_HDR:
                            into.append(struct.unpack_from("!I", view, a + 4)[0])
                            break
                        a += (size + 3) & ~3
                at += (length + 3) & ~3

    def accept(self, ids: list[int]) -> None:
        """NF_ACCEPT each of ``ids``, in one datagram (several when many)."""
        for i in range(0, len(ids), 256):
            chunk = b"".join(
                self._message(
                    NFQNL_MSG_VERDICT, _attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, pid))
                )
                for pid in ids[i : i + 256]
            )
            while True:
                try:
                    self.sock.send(chunk)
                    break
                except BlockingIOError:
                    select.select([], [self.sock], [], 0.01)

    def close(self) -> None:
        with suppress(OSError):
            self.sock.setblocking(True)
            self._config(_attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_UNBIND, 0)))
        self.sock.close()


# -- the program ------------------------------------------------------------------------


def serve(queue: NfQueue, delay: Delay, stop_fds: list[int]) -> Stats:
    """Delay every packet of ``queue`` until one of ``stop_fds`` is readable (stdin at
    EOF, the signal wake-up pipe); then accept what is still held and return."""
    rng = random.Random(delay.seed)
    low, high = delay.mean_ms - delay.spread_ms, delay.mean_ms + delay.spread_ms
    held: list[tuple[float, int, float]] = []  # (release at, packet id, queued at)
    stats = Stats()
    last = 0.0  # the latest release time given (reorder=False)
    arrived: list[int] = []
    due: list[int] = []
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    waiting = [queue.fileno(), *stop_fds]
    while True:
        timeout = None if not held else max(0.0, held[0][0] - time.monotonic())
        ready, _, _ = select.select(waiting, [], [], timeout)
        if any(fd in ready for fd in stop_fds):
            break
        now = time.monotonic()
        if ready:
            stats.overruns += queue.read(arrived)
            for pid in arrived:
                at = now + max(0.0, rng.uniform(low, high)) / 1000
                if not delay.reorder:
                    at = last = max(at, last)
                heapq.heappush(held, (at, pid, now))
            stats.packets += len(arrived)
            arrived.clear()
            stats.most_held = max(stats.most_held, len(held))
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, pid, queued = heapq.heappop(held)
            due.append(pid)
            stats.delay_sum_s += now - queued
            stats.delay_max_s = max(stats.delay_max_s, now - queued)
        if due:
            queue.accept(due)
            stats.accepted += len(due)
            due.clear()
    # Stopped: nothing stays held.
    now = time.monotonic()
    rest = [pid for _, pid, _ in sorted(held)]
    for _, _, queued in held:
        stats.delay_sum_s += now - queued
    queue.accept(rest)
    stats.accepted += len(rest)
    stats.flushed = len(rest)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    stats.cpu_s = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    stats.wall_s = time.monotonic() - t0
    return stats


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Delay the packets of one nfqueue (see module doc).")
    ap.add_argument("--queue", type=int, default=QUEUE)
    ap.add_argument("--mean-ms", type=float, required=True)
    ap.add_argument("--spread-ms", type=float, required=True)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--no-reorder", action="store_true")
    args = ap.parse_args(argv)
    delay = Delay(args.mean_ms, args.spread_ms, not args.no_reorder, args.seed)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGTERM, lambda *_: None)  # wakes the select through the pipe
    signal.signal(signal.SIGINT, lambda *_: None)
    try:
        queue = NfQueue(args.queue)
    except JitterUnavailable as exc:
        print(f"UNAVAILABLE {exc}", flush=True)
        raise SystemExit(2) from None
    try:
        print("READY", flush=True)
        stats = serve(queue, delay, [sys.stdin.fileno(), wake_r])
    finally:
        queue.close()
    print("STATS " + json.dumps(asdict(stats)), flush=True)


# -- driving it from a test or a bench ------------------------------------------------------


@dataclass
class Jitter:
    ns: str
    dev: str
    delay: Delay
    proc: subprocess.Popen[str]
    stats: Stats = field(default_factory=Stats)

    def counters(self) -> dict[str, int]:
        """Packets the queue rules matched: queued_in, queued_out."""
        out: dict[str, int] = {}
        for chain, name in (("INPUT", "queued_in"), ("OUTPUT", "queued_out")):
            done = _iptables(self.ns, "-nvx", "-L", chain)
            for line in done.stdout.decode().splitlines():
                if "NFQUEUE" in line:
                    out[name] = out.get(name, 0) + int(line.split()[0])
        return out


def rules(dev: str, queue: int) -> list[list[str]]:
    """The two rules (``iptables -A`` / ``-D`` arguments): UDP entering and leaving on
    ``dev``, to ``queue``, bypassed while no program is bound."""
    target = ["-p", "udp", "-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass"]
    return [["INPUT", "-i", dev, *target], ["OUTPUT", "-o", dev, *target]]


def _iptables(ns: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, IPTABLES, "-w", *args],
        capture_output=True,
        check=False,
        timeout=30,
    )


def _unqueue(ns: str, dev: str, queue: int) -> None:
    """Delete the rules (each as often as it is there: a killed run may have left one)."""
    for rule in rules(dev, queue):
        for _ in range(16):
            if _iptables(ns, "-D", *rule).returncode != 0:
                break


def _line(proc: subprocess.Popen[str], within: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], within)
    return proc.stdout.readline().strip() if ready else ""


@contextmanager
def jitter(ns: str, dev: str, delay: Delay, *, queue: int = QUEUE) -> Iterator[Jitter]:
    """Delay the UDP packets entering and leaving network namespace ``ns`` on its
    interface ``dev`` by ``delay`` while in the block (as root). The program's stats are
    on the yielded :class:`Jitter` after the block."""
    argv = [sys.executable, "-m", "tests.support.jitter", "--queue", str(queue)]
    argv += ["--mean-ms", str(delay.mean_ms), "--spread-ms", str(delay.spread_ms)]
    if delay.seed is not None:
        argv += ["--seed", str(delay.seed)]
    if not delay.reorder:
        argv.append("--no-reorder")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    j = Jitter(ns, dev, delay, proc)
    try:
        said = _line(proc, 20)
        if said != "READY":
            raise JitterUnavailable(f"the jitter program in {ns} said {said!r}")
        _unqueue(ns, dev, queue)
        for rule in rules(dev, queue):
            done = _iptables(ns, "-A", *rule)
            if done.returncode != 0:
                err = done.stderr.decode(errors="replace")
                raise JitterUnavailable(f"{IPTABLES} in {ns}: {err}")
        yield j
    finally:
        _unqueue(ns, dev, queue)
        j.stats = _stop(proc)


def _stop(proc: subprocess.Popen[str]) -> Stats:
    """Close the program's stdin (it accepts what it holds and reports its stats); killed
    if it has not exited within 10 s."""
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
    for line in out.splitlines():
        if line.startswith("STATS "):
            known: dict[str, Any] = json.loads(line[len("STATS ") :])
            return Stats(**known)
    return Stats()


if __name__ == "__main__":
    main()
