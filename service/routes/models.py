"""What is loaded: names, versions, manifests."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service.dependencies import ServiceState, get_service
from service.errors import ApiError
from training.store.manifest import is_valid_name

router = APIRouter(tags=["models"])


def _summary(name: str, versions: dict) -> dict:
    latest = versions[max(versions)].manifest
    return {
        "name": name,
        "versions": sorted(versions),
        "default_version": max(versions),
        "kind": latest["kind"],
        "timesteps": latest["timesteps"],
        "labels": latest["labels"],
        "runtime": versions[max(versions)].runtime.name,
    }


@router.get("/models")
async def list_models(service: ServiceState = Depends(get_service)) -> dict:
    registry = service.registry
    return {
        "models": [_summary(name, versions) for name, versions in sorted(registry.models.items())],
        "errors": registry.errors,
        "ready": registry.ready,
    }


@router.get("/models/{name}")
async def get_model(name: str, service: ServiceState = Depends(get_service)) -> dict:
    if not is_valid_name(name):
        raise ApiError(400, "invalid_model_name", f"invalid model name {name!r}")
    versions = service.registry.models.get(name)
    if not versions:
        raise ApiError(404, "unknown_model", f"model {name!r} is not loaded")
    return {**_summary(name, versions),
            "manifests": {str(version): model.manifest for version, model in sorted(versions.items())}}
