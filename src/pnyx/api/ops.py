"""Operations: health and Prometheus metrics."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from pnyx.api.deps import ServicesDep

router = APIRouter(tags=["operations"])


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    node: str
    checks: dict[str, bool]  # backend name -> it answered


_HEALTH = {"application/json": {"schema": {"$ref": "#/components/schemas/HealthOut"}}}


@router.get(
    "/healthz",
    response_model=HealthOut,
    responses={503: {"description": "Degraded: a check failed.", "content": _HEALTH}},
)
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


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
