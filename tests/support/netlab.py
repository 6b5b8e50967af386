"""A multi-host rehearsal network on one machine: network namespaces, veth links, a router
and a NAT (the issue "Off the loopback").

Every host is a network namespace named ``pnyxlab-<pid>-<host>`` (``pid``: the process
that built it), with ``lo`` up and one veth link ``eth0`` to the router::

    edge      10.213.1.2    nginx edge (pnyx edge-config)
    node-a    10.213.10.2   pnyx serve
    node-b    10.213.11.2   pnyx serve
    db        10.213.21.2   Redis, PostgreSQL
    turn      10.213.31.2   coturn
    listener  10.213.41.2   listeners (and a speaker that reaches the nodes directly)
    nat       10.213.50.2   the speaker's NAT (masquerade), 10.213.100.1 on its LAN side
    speaker   10.213.100.2  behind the NAT

The lab is IPv4 only (IPv6 is disabled in its namespaces). The router
(``pnyxlab-<pid>-router``) holds 10.213.N.1 on each host's link and forwards
between them (``net.ipv4.ip_forward=1`` in the router and the NAT only). It has no route
to the speaker's LAN: the speaker is reached only through the NAT's masquerade, like a
home network. The NAT (nftables, table ``pnyxlab``) drops UDP from the speaker's LAN to
the node hosts (10.213.10.0/23): WebRTC media can only go through TURN. Everything else
passes (UDP and TCP to the TURN host, TCP to the edge and the nodes), masqueraded.
:meth:`Lab.speaker_udp` switches the NAT to dropping **all** UDP from the speaker's LAN
(TURN's too, a network that lets only TCP out): then only TURN over TCP carries media.

No link leads out of the namespaces this module makes: every veth is created inside the
router's or the NAT's namespace, so nothing of the lab is ever in the machine's own
namespace, and deleting the namespaces deletes them.

Use :func:`lab` (a context manager) in tests, or ``python scripts/netlab.py up|down|status``.
Processes run in a host with :meth:`Lab.spawn` / :meth:`Lab.run` (``ip netns exec``);
Python code runs in a host on a thread that joined its namespace (:meth:`Lab.call`,
:meth:`Lab.worker`: sockets made there, and processes started from there, are in that
host). Teardown kills what was spawned and anything else left in the namespaces, then
deletes them. A lab whose builder died (SIGKILL) is found by the prefix and removed when
the next one is built, or by ``netlab.py down``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

PREFIX = "pnyxlab-"
NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
DEFAULT_BASE = "10.213.0.0/16"
NAT_TABLE = "pnyxlab"
UDP_TO_NODES = "to_nodes"  # the NAT drops the speaker's UDP to the node hosts (default)
UDP_NONE = "none"  # the NAT drops all of the speaker's UDP, to TURN included


class LabCommandFailed(RuntimeError):
    """A command run in a lab host failed (its stderr is in the message)."""


class LabUnavailable(RuntimeError):
    """Network namespaces cannot be made here (not root, no ``ip``, a sandbox)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The lab's addresses: host name → subnet index under ``base`` (a /16)."""

    base: str = DEFAULT_BASE
    hosts: tuple[tuple[str, int], ...] = (
        ("edge", 1),
        ("node-a", 10),
        ("node-b", 11),
        ("db", 21),
        ("turn", 31),
        ("listener", 41),
    )
    nat_wan: int = 50  # the NAT's link to the router
    speaker_lan: int = 100  # the speaker's private subnet, behind the NAT
    nodes_supernet: tuple[int, int] = (10, 23)  # 10.213.10.0/23: node-a and node-b

    def __post_init__(self) -> None:
        try:
            net = ipaddress.IPv4Network(self.base)
        except ValueError as exc:
            raise LabUnavailable(f"base {self.base!r} is not an IPv4 network: {exc}") from None
        if net.prefixlen != 16:
            raise LabUnavailable(f"base {self.base!r} must be a /16 (e.g. 10.213.0.0/16)")

    def subnet(self, index: int, prefix: int = 24) -> ipaddress.IPv4Network:
        net = ipaddress.IPv4Network(self.base)
        return ipaddress.IPv4Network((int(net.network_address) + (index << 8), prefix))

    def addr(self, index: int, host: int) -> str:
        return str(self.subnet(index).network_address + host)


@dataclass
class Lab:
    """A built lab. ``addr[host]`` is each host's address (``speaker``'s is private:
    others see its traffic from ``addr["nat"]``)."""

    tag: str  # "pnyxlab-<pid>"
    plan: Plan
    workdir: Path
    addr: dict[str, str] = field(default_factory=dict)
    spawned: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _workers: list[Worker] = field(default_factory=list)
    _cleanups: list[Callable[[], None]] = field(default_factory=list)

    def on_teardown(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` at teardown, before anything is killed (last registered first)."""
        self._cleanups.append(fn)

    # -- names ---------------------------------------------------------------------
    def ns(self, host: str) -> str:
        return f"{self.tag}-{host}"

    @property
    def hosts(self) -> list[str]:
        return [h for h, _ in self.plan.hosts] + ["speaker"]

    @property
    def namespaces(self) -> list[str]:
        return [self.ns(h) for h in [*self.hosts, "nat", "router"]]

    @property
    def nodes_net(self) -> str:
        index, prefix = self.plan.nodes_supernet
        return str(self.plan.subnet(index, prefix))

    # -- running things in a host ---------------------------------------------------
    def argv(self, host: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns(host), *argv]

    def run(self, host: str, argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[Any]:
        """Run ``argv`` in ``host`` to its end (``subprocess.run``; ``check=True`` and
        captured output unless given)."""
        check = kw.pop("check", True)
        kw.setdefault("capture_output", True)
        kw.setdefault("timeout", 60)
        done: subprocess.CompletedProcess[Any] = subprocess.run(self.argv(host, argv), **kw)
        if check and done.returncode != 0:
            err = (
                done.stderr.decode(errors="replace")
                if isinstance(done.stderr, bytes)
                else done.stderr
            )
            raise LabCommandFailed(f"in {host}: {' '.join(argv)} exited {done.returncode}: {err}")
        return done

    def spawn(self, host: str, argv: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` in ``host`` in its own process group; killed at teardown."""
        popen.setdefault("stdin", subprocess.DEVNULL)
        popen.setdefault("start_new_session", True)
        proc: subprocess.Popen[bytes] = subprocess.Popen(self.argv(host, argv), **popen)
        self.spawned.append(proc)
        return proc

    def call(self, host: str, fn: Callable[..., T], *args: Any, timeout: float = 300) -> T:
        """Run ``fn(*args)`` on a fresh thread inside ``host``'s namespace; its result."""
        with concurrent.futures.ThreadPoolExecutor(
            1, initializer=enter_netns, initargs=(self.ns(host),)
        ) as pool:
            return pool.submit(fn, *args).result(timeout=timeout)

    def socket(self, host: str, kind: int = socket.SOCK_DGRAM) -> socket.socket:
        """An IPv4 socket that lives in ``host`` (a socket keeps the namespace it was made
        in: use it from any thread)."""
        return self.call(host, lambda: socket.socket(socket.AF_INET, kind))

    def worker(self, host: str) -> Worker:
        """A thread with its own event loop inside ``host``: ``await w.run(coro)`` runs a
        coroutine there from any loop. Closed at teardown (or by ``w.close()``)."""
        w = Worker(self.ns(host))
        self._workers.append(w)
        return w

    # -- impairments ------------------------------------------------------------------
    def drop(self, host: str, loss_pct: float) -> str:
        """Random loss of ``loss_pct`` % of the packets ``host``'s link forwards, both ways
        (nftables ``numgen random`` at the link's far end, the router or the NAT: works
        without netem); 0 removes it. Returns the lab host holding the table (its
        counters: ``lab.counters(that, loss_table(host))``, "from_HOST", "to_HOST")."""
        far, dev = self._link_ends(host)[1]
        table = loss_table(host)
        self.run(far, ["nft", "delete", "table", "ip", table], check=False)
        if loss_pct <= 0:
            return far
        cut = min(100, round(loss_pct))
        chance = "" if cut >= 100 else f"numgen random mod 100 < {cut} "
        rules = f"""table ip {table} {{
    chain forward {{
        type filter hook forward priority -10; policy accept;
        iifname "{dev}" {chance}counter drop comment "from_{host}"
        oifname "{dev}" {chance}counter drop comment "to_{host}"
    }}
}}
"""
        self.run(far, ["nft", "-f", "-"], input=rules.encode())
        return far

    def _link_ends(self, host: str) -> list[tuple[str, str]]:
        if host == "speaker":
            return [("speaker", "eth0"), ("nat", "lan0")]
        if host == "nat":
            return [("nat", "eth0"), ("router", "r-nat")]
        return [(host, "eth0"), ("router", f"r-{host}")]

    def speaker_udp(self, blocked: str) -> None:
        """What the NAT drops of the speaker LAN's UDP: ``UDP_TO_NODES`` (what the lab is
        built with: direct UDP to the node hosts) or ``UDP_NONE`` (every datagram, the
        TURN host's included: only TCP leaves, as on networks that block UDP). Replaces
        the NAT's table in one nft transaction (its counters start again from 0;
        established flows keep their masquerade, which conntrack holds)."""
        rules = _nat_rules(self, blocked)
        self.run("nat", ["nft", "-f", "-"], input=f"delete table ip {NAT_TABLE}\n{rules}".encode())

    # -- facts -----------------------------------------------------------------------
    def counters(self, host: str = "nat", table: str = NAT_TABLE) -> dict[str, int]:
        """Packets each commented nftables rule of ``table`` in ``host`` matched, by
        comment (the NAT's: ``to_turn``, ``udp_to_nodes_dropped``, ``masqueraded``; with
        ``UDP_NONE``: ``udp_dropped``)."""
        out = self.run(host, ["nft", "list", "table", "ip", table]).stdout.decode()
        counters: dict[str, int] = {}
        for line in out.splitlines():
            m = re.search(r"counter packets (\d+) .* comment \"([^\"]+)\"", line)
            if m:
                counters[m.group(2)] = int(m.group(1))
        return counters

    def pids(self) -> dict[str, list[int]]:
        """Processes in each of the lab's namespaces."""
        return {ns: namespace_pids(ns) for ns in self.namespaces}


def loss_table(host: str) -> str:
    """The router's nftables table for :meth:`Lab.drop` on ``host``."""
    return f"loss_{host.replace('-', '_')}"


class Worker:
    """A thread inside a namespace running its own event loop."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=f"netns-{ns}", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._failed is not None:
            raise self._failed
        if self.loop is None:
            raise RuntimeError(f"the worker in {ns} did not start")

    def _main(self) -> None:
        try:
            enter_netns(self.ns)
            loop = asyncio.new_event_loop()
        except BaseException as exc:
            self._failed = exc
            self._ready.set()
            return
        asyncio.set_event_loop(loop)
        self.loop = loop
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            with suppress(Exception):
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` in the namespace; await it from the caller's loop."""
        return await asyncio.wrap_future(self.submit(coro))

    def call(self, fn: Callable[[], Awaitable[T]], timeout: float = 300) -> T:
        """Blocking: run ``fn()`` in the namespace and wait for its result."""
        return self.submit(_awaited(fn)).result(timeout)

    def close(self) -> None:
        if self.loop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)


async def _awaited(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


# -- namespaces ------------------------------------------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)


def enter_netns(ns: str) -> None:
    """Move the calling thread (only it) into the network namespace ``ns``. Threads and
    processes it starts afterwards are in it too."""
    fd = os.open(NETNS_DIR / ns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {ns}: {os.strerror(err)}")
    finally:
        os.close(fd)


def list_namespaces(prefix: str = PREFIX) -> list[str]:
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, check=False, timeout=30)
    names = [line.split()[0] for line in done.stdout.decode().splitlines() if line.strip()]
    return sorted(n for n in names if n.startswith(prefix))


def namespace_pids(ns: str) -> list[int]:
    done = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, check=False, timeout=30)
    return [int(p) for p in done.stdout.split()]


def owner_of(ns: str) -> int | None:
    """The pid in a lab namespace's name (``pnyxlab-<pid>-host``)."""
    m = re.match(rf"{re.escape(PREFIX)}(\d+)-", ns)
    return int(m.group(1)) if m else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(pid: int) -> bool:
    """Whether ``pid`` is a process that still runs (a zombie does not: in a container
    whose init does not reap, a daemon's exit leaves one behind)."""
    return _alive(pid) and not _zombie(pid)


def remove_namespaces(names: Sequence[str]) -> None:
    """Kill every process in each namespace (TERM, then KILL), then delete it."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        pids = {pid for ns in names for pid in namespace_pids(ns)} - {os.getpid()}
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            pids = {p for p in pids if running(p)}
            time.sleep(0.05)
        if not pids:
            break
    for ns in names:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False, timeout=30)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True


def remove_stale(prefix: str = PREFIX) -> list[str]:
    """Remove the labs whose builder is no longer running; the names removed."""
    stale = [ns for ns in list_namespaces(prefix) if (o := owner_of(ns)) is None or not _alive(o)]
    if stale:
        remove_namespaces(stale)
    return stale


# -- building ----------------------------------------------------------------------
def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, check=False, timeout=30)
    if done.returncode != 0:
        raise LabUnavailable(f"ip {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")


def _sysctl(ns: str, key: str, value: str) -> None:
    _ip("netns", "exec", ns, "sysctl", "-q", "-w", f"{key}={value}")


def check_no_overlap(base: str) -> None:
    """The lab's range must not overlap any address of this machine's own interfaces."""
    ours = ipaddress.IPv4Network(base)
    done = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, check=True, timeout=30)
    for line in done.stdout.decode().splitlines():
        iface = ipaddress.IPv4Interface(line.split()[3])
        if iface.network.overlaps(ours):
            raise LabUnavailable(f"{base} overlaps {iface} on {line.split()[1]}: pick another base")


def _link(
    lab: Lab, outer: str, outer_dev: str, inner: str, index: int, inner_dev: str = "eth0"
) -> None:
    """A veth between ``outer`` (gets .1) and ``inner`` (gets .2, default route via .1)."""
    plan = lab.plan
    prefix = plan.subnet(index).prefixlen
    ons, ins = lab.ns(outer), lab.ns(inner)
    _ip(
        "-n", ons, "link", "add", outer_dev, "type", "veth", "peer", "name", inner_dev, "netns", ins
    )
    _ip("-n", ons, "addr", "add", f"{plan.addr(index, 1)}/{prefix}", "dev", outer_dev)
    _ip("-n", ons, "link", "set", outer_dev, "up")
    _ip("-n", ins, "addr", "add", f"{plan.addr(index, 2)}/{prefix}", "dev", inner_dev)
    _ip("-n", ins, "link", "set", inner_dev, "up")
    _ip("-n", ins, "route", "add", "default", "via", plan.addr(index, 1))


def _nat_rules(lab: Lab, blocked: str = UDP_TO_NODES) -> str:
    if blocked not in (UDP_TO_NODES, UDP_NONE):
        raise ValueError(f"blocked must be {UDP_TO_NODES!r} or {UDP_NONE!r}, not {blocked!r}")
    turn = lab.addr["turn"]
    lan = lab.plan.subnet(lab.plan.speaker_lan)
    every_udp = (
        f'iifname "lan0" ip saddr {lan} meta l4proto udp counter drop comment "udp_dropped"'
        if blocked == UDP_NONE
        else ""
    )
    return f"""table ip {NAT_TABLE} {{
    chain forward {{
        type filter hook forward priority 0; policy accept;
        {every_udp}
        iifname "lan0" ip daddr {turn} counter accept comment "to_turn"
        iifname "lan0" ip saddr {lan} ip daddr {lab.nodes_net} meta l4proto udp counter drop \\
            comment "udp_to_nodes_dropped"
    }}
    chain postrouting {{
        type nat hook postrouting priority 100; policy accept;
        oifname "eth0" counter masquerade comment "masqueraded"
    }}
}}
"""


def build(workdir: Path, plan: Plan | None = None, *, tag: str | None = None) -> Lab:
    """Build a lab (removing stale ones first). Raises :class:`LabUnavailable`."""
    plan = plan or Plan()
    if os.geteuid() != 0:
        raise LabUnavailable("network namespaces need root")
    remove_stale()
    check_no_overlap(plan.base)
    workdir.mkdir(parents=True, exist_ok=True)
    lab = Lab(tag or f"{PREFIX}{os.getpid()}", plan, workdir)
    try:
        for ns in lab.namespaces:
            _ip("netns", "add", ns)
            # IPv4 only: no link-local IPv6 path around the NAT's rules.
            for scope in ("all", "default"):
                _sysctl(ns, f"net.ipv6.conf.{scope}.disable_ipv6", "1")
            _ip("-n", ns, "link", "set", "lo", "up")
        _sysctl(lab.ns("router"), "net.ipv4.ip_forward", "1")
        for host, index in plan.hosts:
            _link(lab, "router", f"r-{host}", host, index)
            lab.addr[host] = plan.addr(index, 2)
        _link(lab, "router", "r-nat", "nat", plan.nat_wan)
        lab.addr["nat"] = plan.addr(plan.nat_wan, 2)
        _link(lab, "nat", "lan0", "speaker", plan.speaker_lan)
        lab.addr["speaker"] = plan.addr(plan.speaker_lan, 2)
        _sysctl(lab.ns("nat"), "net.ipv4.ip_forward", "1")
        lab.run("nat", ["nft", "-f", "-"], input=_nat_rules(lab).encode())
    except BaseException:
        remove_namespaces(list_namespaces(lab.tag + "-"))
        raise
    return lab


def teardown(lab: Lab) -> None:
    """Stop the workers and what was spawned, then everything left in the namespaces,
    and delete them."""
    for fn in reversed(lab._cleanups):
        try:
            fn()
        except Exception as exc:  # the rest of the teardown must still run
            print(f"netlab teardown: {fn!r} failed: {exc!r}", file=sys.stderr)
    for w in lab._workers:
        w.close()
    for proc in lab.spawned:
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in lab.spawned:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    remove_namespaces(list_namespaces(lab.tag + "-"))


@contextmanager
def lab(workdir: Path, plan: Plan | None = None) -> Iterator[Lab]:
    """A lab for the block; torn down after it, whatever happens."""
    workdir.mkdir(parents=True, exist_ok=True)
    built = build(workdir, plan)
    try:
        yield built
    finally:
        teardown(built)
