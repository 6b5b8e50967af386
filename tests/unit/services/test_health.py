"""Health: every backend probed; one that fails is down, and so is the node."""

from __future__ import annotations

from pnyx.errors import ErrorKind, PnyxError
from pnyx.services.health import HealthService


async def _up() -> bool:
    return True


async def _down() -> bool:
    raise PnyxError(ErrorKind.UNAVAILABLE, "no answer")


async def test_all_probes_answer() -> None:
    health = await HealthService("n1", {"store": _up, "live": _up}).check()
    assert health.ok and health.node_id == "n1"
    assert list(health.checks.items()) == [("store", True), ("live", True)]


async def test_a_failing_probe_makes_the_node_degraded() -> None:
    health = await HealthService("n1", {"store": _up, "live": _down}).check()
    assert not health.ok
    assert dict(health.checks) == {"store": True, "live": False}
