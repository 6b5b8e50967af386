"""The rehearsal network itself (``tests/support/netlab.py``): it builds and goes away
without a trace, a lab left by a killed run is removed by the next one, nothing in it
reaches the machine's own network, and the speaker's NAT blocks direct UDP to the node
hosts while UDP and TCP to the TURN host and TCP to the edge pass, masqueraded.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
from aioice.turn import create_turn_endpoint

from tests.multihost.conftest import built_lab, require_lab_tools, unavailable
from tests.support import netlab
from tests.support.netlab_servers import TURN_PORT, LabTurn, start_turn, stun_mapped_address
from tests.support.poll import Seen, eventually, wait_until

pytestmark = pytest.mark.multihost

PROBE_PORT = 40000
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "netlab.py"


def root_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, check=True).stdout.decode()
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def test_the_lab_builds_and_goes_away_without_a_trace(tmp_path: Path) -> None:
    before = root_links()
    with built_lab(tmp_path / "lab") as lab:
        names = netlab.list_namespaces(lab.tag + "-")
        assert sorted(names) == sorted(lab.namespaces) and len(names) == 9
        # Each host: lo up, one address on eth0 in its own subnet, a default route.
        for host in lab.hosts:
            out = lab.run(host, ["ip", "-o", "-4", "addr"]).stdout.decode()
            assert "lo    inet 127.0.0.1/8" in out, out
            assert f"eth0    inet {lab.addr[host]}/24" in out, out
        sleepers = [lab.spawn(h, ["sleep", "600"]) for h in ("edge", "db", "speaker")]
        assert all(p.poll() is None for p in sleepers)
        assert lab.pids()[lab.ns("db")] == [sleepers[1].pid]
        # Forwarding happens only inside the lab, never in the machine's namespace.
        assert lab.run("router", ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == b"1"
        assert lab.run("edge", ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == b"0"
        # The lab's links are all inside its namespaces.
        assert root_links() == before
    assert netlab.list_namespaces(lab.tag + "-") == []
    assert not any(netlab.running(p.pid) for p in sleepers)
    assert root_links() == before


def test_nothing_in_the_lab_reaches_the_machine_s_network(lab: netlab.Lab) -> None:
    out = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, check=True)
    ours = [line.split()[3].split("/")[0] for line in out.stdout.decode().splitlines()]
    outside = [a for a in ours if not a.startswith("127.")] or ["192.0.2.1"]
    for host in ("listener", "speaker", "edge"):
        for addr in outside:
            s = lab.socket(host, socket.SOCK_STREAM)
            with s:
                s.settimeout(2)
                code = s.connect_ex((addr, 80))
            assert code in (errno.ENETUNREACH, errno.EHOSTUNREACH), (host, addr, code)


STALE_BUILDER = """
import pathlib, sys, time
from tests.support import netlab
lab = netlab.build(pathlib.Path(sys.argv[1]))
sleeper = lab.spawn("db", ["sleep", "600"])
(lab.workdir / "sleeper.tmp").write_text(str(sleeper.pid))
(lab.workdir / "sleeper.tmp").rename(lab.workdir / "sleeper.pid")
time.sleep(600)
"""


def killed_run(folder: Path) -> tuple[str, int]:
    """A lab built by another process, SIGKILLed with a process running in its db host;
    (its tag, that process)."""
    require_lab_tools()
    builder = subprocess.Popen(
        [sys.executable, "-c", STALE_BUILDER, str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    tag = f"{netlab.PREFIX}{builder.pid}"
    pid_file = folder / "sleeper.pid"
    try:

        def up() -> Seen:
            if builder.poll() is not None:
                err = builder.stderr.read().decode() if builder.stderr else ""
                if "LabUnavailable" in err:
                    unavailable(err.strip().splitlines()[-1])
                raise AssertionError(f"the builder exited: {err}")
            # Not just any process in db: while the lab is being built, its own short
            # `ip -n` commands pass through the namespace too.
            names = netlab.list_namespaces(tag + "-")
            pids = netlab.namespace_pids(f"{tag}-db")
            told = pid_file.read_text() if pid_file.exists() else ""
            seen = told.isdigit() and int(told) in pids
            return Seen(seen, f"namespaces {names}, processes in db {pids}, sleeper {told!r}")

        wait_until(up, 30, "the first run's lab, with a process in it")
    finally:
        builder.kill()
        builder.wait(timeout=10)
        if builder.stderr:
            builder.stderr.close()
    sleeper = int(pid_file.read_text())
    assert netlab.namespace_pids(f"{tag}-db") == [sleeper]
    assert len(netlab.list_namespaces(tag + "-")) == 9  # the killed run left it all behind
    return tag, sleeper


def test_a_lab_left_by_a_killed_run_is_removed_by_the_next(tmp_path: Path) -> None:
    tag, sleeper = killed_run(tmp_path / "stale")
    with built_lab(tmp_path / "next") as lab:
        assert lab.tag != tag
        assert netlab.list_namespaces(tag + "-") == []
        assert not netlab.running(sleeper)


def netlab_cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, check=True, timeout=120
    )
    return done.stdout.decode()


def test_the_operator_s_status_and_down(tmp_path: Path) -> None:
    tag, sleeper = killed_run(tmp_path / "stale")
    status = netlab_cli("status")
    assert f"{tag}-db" in status and "gone (stale)" in status, status
    down = netlab_cli("down")  # also any other stale lab on the machine
    assert down.startswith("removed ") and f"{tag}-db" in down, down
    assert netlab.list_namespaces(tag + "-") == []
    assert not netlab.running(sleeper)


def udp_receiver(lab: netlab.Lab, host: str, port: int = PROBE_PORT) -> socket.socket:
    s = lab.socket(host)
    s.bind((lab.addr[host], port))
    s.setblocking(False)
    return s


def received(s: socket.socket) -> list[tuple[bytes, str]]:
    got: list[tuple[bytes, str]] = []
    while True:
        try:
            data, (addr, _) = s.recvfrom(2048)
        except BlockingIOError:
            return got
        got.append((data, addr))


def send_udp(lab: netlab.Lab, host: str, to: tuple[str, int], count: int) -> None:
    with lab.socket(host) as s:
        for i in range(count):
            s.sendto(f"probe {i}".encode(), to)


def tcp_peer(lab: netlab.Lab, client: str, server: str, port: int) -> str:
    """Connect from ``client`` to a listener on ``server``; the address the server saw."""
    with (
        lab.socket(server, socket.SOCK_STREAM) as srv,
        lab.socket(client, socket.SOCK_STREAM) as cli,
    ):
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((lab.addr[server], port))
        srv.listen(1)
        srv.settimeout(5)
        cli.settimeout(5)
        cli.connect((lab.addr[server], port))
        conn, (peer, _) = srv.accept()
        conn.close()
        return str(peer)


def dropped_since(lab: netlab.Lab, before: int, count: int) -> Seen:
    n = lab.counters()["udp_to_nodes_dropped"] - before
    return Seen(n >= count, f"{n} dropped")


def test_the_nat_blocks_the_speaker_s_direct_udp_to_the_nodes_and_passes_turn_and_tcp(
    lab: netlab.Lab,
) -> None:
    nat = lab.addr["nat"]
    for node in ("node-a", "node-b"):
        with udp_receiver(lab, node) as rx:
            # From the listener host (no NAT) UDP to a node arrives, from its own address...
            send_udp(lab, "listener", (lab.addr[node], PROBE_PORT), 5)
            got = wait_until(partial(received, rx), 5, f"UDP from the listener at {node}")
            assert {a for _, a in got} == {lab.addr["listener"]}
            # ...from the speaker behind the NAT, nothing: the NAT drops every datagram.
            before = lab.counters()["udp_to_nodes_dropped"]
            send_udp(lab, "speaker", (lab.addr[node], PROBE_PORT), 20)
            wait_until(
                partial(dropped_since, lab, before, 20),
                5,
                "the NAT to drop the speaker's 20 datagrams",
            )
            assert received(rx) == []
        # TCP from the speaker to the node passes, seen from the NAT's address.
        assert tcp_peer(lab, "speaker", node, PROBE_PORT + 1) == nat
    # TCP to the edge passes, masqueraded.
    assert tcp_peer(lab, "speaker", "edge", 80) == nat
    # UDP to the TURN host passes, masqueraded.
    with udp_receiver(lab, "turn", PROBE_PORT) as rx:
        send_udp(lab, "speaker", (lab.addr["turn"], PROBE_PORT), 5)
        got = wait_until(lambda: received(rx), 5, "the speaker's UDP at the TURN host")
        assert {a for _, a in got} == {nat}
    counters = lab.counters()
    assert counters["to_turn"] >= 5 and counters["masqueraded"] >= 1
    # coturn on the TURN host answers the speaker over UDP and sees it as the NAT.
    turn = start_turn(lab)
    mapped, port = lab.call("speaker", lambda: stun_mapped_address(turn.addr, TURN_PORT))
    assert mapped == nat and port > 0
    assert tcp_reachable(lab, "speaker", turn.addr, TURN_PORT)


def tcp_reachable(lab: netlab.Lab, host: str, addr: str, port: int) -> bool:
    with lab.socket(host, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        return s.connect_ex((addr, port)) == 0


def test_random_loss_on_a_host_s_link(lab: netlab.Lab) -> None:
    with udp_receiver(lab, "node-a") as rx:
        far = lab.drop("listener", 100)
        table = netlab.loss_table("listener")
        send_udp(lab, "listener", (lab.addr["node-a"], PROBE_PORT), 10)
        wait_until(
            lambda: lab.counters(far, table).get("from_listener", 0) >= 10,
            5,
            "10 datagrams dropped",
        )
        assert received(rx) == []
        lab.drop("listener", 0)
        send_udp(lab, "listener", (lab.addr["node-a"], PROBE_PORT), 10)
        got: list[tuple[bytes, str]] = []

        def all_ten() -> Seen:
            got.extend(received(rx))
            return Seen(len(got) == 10, f"{len(got)} datagrams")

        wait_until(all_ten, 5, "all 10 datagrams once the loss is removed")


async def relay_one(turn: LabTurn, to: tuple[str, int], transport: str) -> tuple[str, int]:
    """Allocate on the TURN server as a TURN REST user, send one datagram to ``to``
    through the relay; the relayed address."""
    username, password = turn.credentials("speaker")
    relay, _ = await create_turn_endpoint(
        asyncio.DatagramProtocol, (turn.addr, turn.port), username, password, transport=transport
    )
    try:
        relay.sendto(f"via turn/{transport}".encode(), to)
        addr, port = relay.get_extra_info("sockname")
        await asyncio.sleep(0)  # the send is queued on the loop
        return str(addr), int(port)
    finally:
        relay.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_the_speaker_reaches_a_node_through_turn(lab: netlab.Lab, transport: str) -> None:
    turn = await asyncio.to_thread(start_turn, lab)
    speaker = lab.worker("speaker")
    with udp_receiver(lab, "node-a") as rx:
        to = (lab.addr["node-a"], PROBE_PORT)
        relayed = await speaker.run(relay_one(turn, to, transport))
        assert relayed[0] == turn.addr
        got = await eventually(lambda: received(rx), 5, "the relayed datagram at node-a")
        assert got == [(f"via turn/{transport}".encode(), turn.addr)]
    assert lab.counters()["udp_to_nodes_dropped"] == 0  # nothing went around the relay
