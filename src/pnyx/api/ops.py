"""Operations: health and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pnyx.api.deps import ServicesDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz(services: ServicesDep) -> JSONResponse:
    health = await services.health.check()
    return JSONResponse(
        {
            "status": "ok" if health.ok else "degraded",
            "node": health.node_id,
            "checks": dict(health.checks),
        },
        status_code=200 if health.ok else 503,
        headers={"Cache-Control": "no-store"},
    )


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
