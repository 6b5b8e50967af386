"""Operations: health and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pnyx.api.deps import NodeDep
from pnyx.errors import PnyxError

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz(node: NodeDep) -> JSONResponse:
    checks: dict[str, bool] = {}
    for name, probe in (("store", node.store.ping), ("live", node.live.ping)):
        try:
            checks[name] = await probe()
        except PnyxError:
            checks[name] = False
    ok = all(checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "degraded", "node": node.node_id, "checks": checks},
        status_code=200 if ok else 503,
        headers={"Cache-Control": "no-store"},
    )


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
