"""Liveness and readiness, with the Open Inference Protocol aliases."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.http.dependencies import ServiceDep
from service.http.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health/live", summary="Liveness", response_model=Health)
@router.get("/v2/health/live", response_model=Health, include_in_schema=False)
async def live() -> Health:
    """The process is up and answering."""
    return Health(status="live")


@router.get(
    "/health/ready",
    summary="Readiness: the models are loaded and warmed up",
    response_model=Health,
    responses={503: {"model": Health}},
)
@router.get("/v2/health/ready", response_model=Health, include_in_schema=False)
async def ready(service: ServiceDep) -> Health | JSONResponse:
    """200 once the default models are loaded and warmed up; 503 before that and while draining."""
    registry = service.registry
    if service.draining:
        return JSONResponse({"status": "draining"}, status_code=503)
    if not registry.ready:
        detail = {"loading": registry.loading, "errors": registry.errors}
        return JSONResponse({"status": "not_ready", "detail": detail}, status_code=503)
    loaded = {name: sorted(versions) for name, versions in registry.models.items()}
    return Health(status="ready", detail={"models": loaded})
