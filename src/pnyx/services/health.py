"""Whether a node's backends answer (for ``GET /healthz``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from pnyx.errors import PnyxError

Probe = Callable[[], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Health:
    node_id: str
    checks: Mapping[str, bool]  # backend name -> it answered

    @property
    def ok(self) -> bool:
        return all(self.checks.values())


class HealthService:
    def __init__(self, node_id: str, probes: Mapping[str, Probe]) -> None:
        self._node_id = node_id
        self._probes = dict(probes)

    async def check(self) -> Health:
        """Probe every backend in turn; one that fails with a PnyxError is down."""
        checks: dict[str, bool] = {}
        for name, probe in self._probes.items():
            try:
                checks[name] = await probe()
            except PnyxError:
                checks[name] = False
        return Health(self._node_id, checks)
