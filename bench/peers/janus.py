"""Janus (Debian's ``janus`` package) with its AudioBridge plugin, for the benches: a
config folder written here (nothing system-wide is read or changed), the server started
in a bench's network namespace (``netns.py``), and an aiortc participant speaking Janus's
HTTP API.

The API, as Janus documents it: ``POST /janus`` ``{"janus": "create"}`` makes a session;
``POST /janus/<session>`` ``{"janus": "attach", "plugin": "janus.plugin.audiobridge"}`` a
handle; ``POST /janus/<session>/<handle>`` ``{"janus": "message", "body": …}`` talks to the
plugin (``create`` a room answers at once; ``join`` with a JSEP offer is acknowledged, and
the answer comes as an event); ``GET /janus/<session>?maxev=N`` long-polls for events (at
most 30 s); a session that hears nothing for ``session_timeout`` (60 s) is dropped, so a
participant sends ``{"janus": "keepalive"}`` every 20 s.

AudioBridge mixes every participant's Opus into a mix-minus for each, like Pnyx's stage
node. ``default_prebuffering`` (room) and ``prebuffer`` (participant) are how many packets
it queues from a participant before mixing them (default 6, i.e. 120 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from latency_support import poll, webrtc
from peers.netns import Netns

PLUGIN = "janus.plugin.audiobridge"
HTTP_PORT = 8088
KEEPALIVE_S = 20.0  # Janus drops a silent session after 60 s
INSTALL_HINT = "apt-get install -y janus"


class JanusMissing(RuntimeError):
    pass


class JanusError(RuntimeError):
    """Janus or the plugin answered with an error."""


def janus_lib() -> Path:
    """Janus's plugin and transport folders (Debian: /usr/lib/<triplet>/janus)."""
    binary = shutil.which("janus")
    if binary is None:
        raise JanusMissing(f"janus is not installed: run `{INSTALL_HINT}` (as root) and retry")
    for folder in [*sorted(Path("/usr/lib").glob("*/janus")), Path("/usr/lib/janus")]:
        if (folder / "plugins" / "libjanus_audiobridge.so").exists():
            return folder
    raise JanusMissing("janus is installed but its AudioBridge plugin was not found")


def janus_version() -> str:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "janus"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return done.stdout.strip() or "unknown"


def write_config(folder: Path, lib: Path, port: int = HTTP_PORT) -> None:
    """janus.jcfg plus the AudioBridge and HTTP transport configs, in ``folder``. Every
    other plugin, transport, event handler and logger is disabled."""
    folder.mkdir(parents=True, exist_ok=True)

    def others(kind: str, keep: str | None) -> str:
        names = sorted(p.name for p in (lib / kind).glob("libjanus_*.so"))
        return ",".join(n for n in names if n != keep)

    (folder / "janus.jcfg").write_text(
        f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{lib / "plugins"}"
    transports_folder = "{lib / "transports"}"
    events_folder = "{lib / "events"}"
    loggers_folder = "{lib / "loggers"}"
    debug_level = 4
    session_timeout = 60
    server_name = "pnyx-bench"
}}
certificates: {{
}}
media: {{
    rtp_port_range = "20000-40000"
}}
nat: {{
    ice_enforce_list = "eth0"
}}
plugins: {{
    disable = "{others("plugins", "libjanus_audiobridge.so")}"
}}
transports: {{
    disable = "{others("transports", "libjanus_http.so")}"
}}
loggers: {{
    disable = "{others("loggers", None)}"
}}
events: {{
    broadcast = false
}}
"""
    )
    (folder / "janus.transport.http.jcfg").write_text(
        f"""general: {{
    json = "plain"
    base_path = "/janus"
    http = true
    port = {port}
    https = false
}}
admin: {{
    admin_http = false
    admin_https = false
}}
"""
    )
    # No rooms from the file: the bench creates them over the API.
    (folder / f"{PLUGIN}.jcfg").write_text("general: {\n}\n")


@dataclass(frozen=True)
class JanusProcess:
    proc: subprocess.Popen[bytes]
    url: str  # http://ADDR:PORT/janus
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextmanager
def janus_server(ns: Netns, folder: Path, port: int = HTTP_PORT) -> Iterator[JanusProcess]:
    """Janus in ``ns``, its HTTP API on ``ns.addr:port``; ready when this yields."""
    lib = janus_lib()
    write_config(folder, lib, port)
    log = folder / "janus.log"
    with log.open("wb") as out:
        proc = ns.spawn(
            ["janus", "-C", str(folder / "janus.jcfg"), "-F", str(folder), "-o"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = JanusProcess(proc, f"http://{ns.addr}:{port}/janus", log)

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"janus exited ({proc.returncode}):\n{server.tail()}")
        try:
            r = httpx.get(f"{server.url}/info", timeout=1.0)
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and PLUGIN in r.json().get("plugins", {})

    try:
        poll.wait_until(up, 30, "janus to answer /janus/info with the AudioBridge")
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _tx() -> str:
    return secrets.token_hex(6)


def _check(answer: dict[str, Any], what: str) -> dict[str, Any]:
    if answer.get("janus") == "error":
        raise JanusError(f"{what}: {answer.get('error')}")
    data = answer.get("plugindata", {}).get("data", {})
    if "error_code" in data:
        raise JanusError(f"{what}: {data.get('error_code')} {data.get('error')}")
    return answer


def create_room(url: str, room: int, prebuffering: int | None) -> None:
    """An AudioBridge room mixing at 48 kHz (blocking; from a short-lived session).
    ``prebuffering``: the room's ``default_prebuffering``; None keeps Janus's default."""
    body: dict[str, Any] = {
        "request": "create",
        "room": room,
        "description": f"bench room {room}",
        "sampling_rate": 48_000,
        "audiolevel_event": False,
        "record": False,
    }
    if prebuffering is not None:
        body["default_prebuffering"] = prebuffering
    with httpx.Client(timeout=10) as c:
        session = _check(
            c.post(url, json={"janus": "create", "transaction": _tx()}).json(), "create"
        )
        sid = session["data"]["id"]
        try:
            attach = {"janus": "attach", "plugin": PLUGIN, "transaction": _tx()}
            handle = _check(c.post(f"{url}/{sid}", json=attach).json(), "attach")["data"]["id"]
            msg = {"janus": "message", "body": body, "transaction": _tx()}
            r = _check(c.post(f"{url}/{sid}/{handle}", json=msg).json(), f"create room {room}")
            if r["plugindata"]["data"].get("audiobridge") != "created":
                raise JanusError(f"create room {room}: {r}")
        finally:
            c.post(f"{url}/{sid}", json={"janus": "destroy", "transaction": _tx()})


class Session:
    """One Janus session with one AudioBridge handle, its events long-polled and kept
    alive until :meth:`close`."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self._http = http
        self._url = url
        self.sid: int | None = None
        self.handle: int | None = None
        self.events: list[dict[str, Any]] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        r = await self._post(self._url, {"janus": "create"}, "create")
        self.sid = r["data"]["id"]
        r = await self._post(
            f"{self._url}/{self.sid}", {"janus": "attach", "plugin": PLUGIN}, "attach"
        )
        self.handle = r["data"]["id"]
        self._tasks = [
            asyncio.ensure_future(self._poll()),
            asyncio.ensure_future(self._keepalive()),
        ]

    async def _post(self, url: str, body: dict[str, Any], what: str) -> dict[str, Any]:
        r = await self._http.post(url, json={**body, "transaction": body.get("transaction", _tx())})
        r.raise_for_status()
        return _check(r.json(), what)

    async def message(self, body: dict[str, Any], jsep: dict[str, str] | None = None) -> str:
        """Send a plugin request; its transaction (the answer comes as an event)."""
        tx = _tx()
        msg: dict[str, Any] = {"janus": "message", "body": body, "transaction": tx}
        if jsep is not None:
            msg["jsep"] = jsep
        await self._post(f"{self._url}/{self.sid}/{self.handle}", msg, body["request"])
        return tx

    async def event(self, tx: str, within: float = 20.0) -> dict[str, Any]:
        """The event answering transaction ``tx`` (waits up to ``within`` seconds)."""

        def found() -> dict[str, Any] | None:
            return next((e for e in self.events if e.get("transaction") == tx), None)

        await poll.eventually(lambda: found() is not None, within, f"janus event for {tx}")
        event = found()
        assert event is not None
        return _check(event, "event")

    async def _poll(self) -> None:
        while True:
            try:
                r = await self._http.get(
                    f"{self._url}/{self.sid}", params={"maxev": 10}, timeout=45
                )
                got = r.json()
            except (httpx.HTTPError, ValueError):
                await asyncio.sleep(0.5)
                continue
            for e in got if isinstance(got, list) else [got]:
                if e.get("janus") == "error":  # no such session: nothing more will come
                    self.events.append(e)
                    return
                if e.get("janus") != "keepalive":
                    self.events.append(e)
            del self.events[:-100]  # bounded: only recent events are ever looked for

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            with contextlib.suppress(httpx.HTTPError, JanusError):
                await self._post(f"{self._url}/{self.sid}", {"janus": "keepalive"}, "keepalive")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.sid is not None:
            with contextlib.suppress(httpx.HTTPError, JanusError):
                await self._post(f"{self._url}/{self.sid}", {"janus": "destroy"}, "destroy")


class Participant(webrtc.Speaker):
    """An aiortc peer in an AudioBridge room: publishes its track and records its
    mix-minus in ``.received``, like the Pnyx speaker it is compared with."""

    session: Session

    async def close(self) -> None:
        if self._closed:
            return
        try:
            await self.session.close()
        finally:
            await super().close()


async def join(
    url: str, room: int, track: webrtc.ToneTrack, *, prebuffer: int | None = None
) -> Participant:
    """Join ``room`` with ``track`` (an offer from aiortc, the answer from the event)."""
    http = httpx.AsyncClient(timeout=20)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    peer = Participant(pc, track, "", http, True)
    peer.session = Session(http, url)
    try:
        await peer.session.open()
        pc.addTrack(track)
        await pc.setLocalDescription(await pc.createOffer())
        body: dict[str, Any] = {"request": "join", "room": room, "muted": False}
        if prebuffer is not None:
            body["prebuffer"] = prebuffer
        offer = {"type": "offer", "sdp": pc.localDescription.sdp}
        event = await peer.session.event(await peer.session.message(body, offer))
        data = event["plugindata"]["data"]
        if data.get("audiobridge") != "joined" or "jsep" not in event:
            raise JanusError(f"join room {room}: {event}")
        await pc.setRemoteDescription(RTCSessionDescription(event["jsep"]["sdp"], "answer"))
    except BaseException:
        await peer.close()
        raise
    return peer
