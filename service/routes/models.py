"""What is loaded: names, versions, manifests."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from service.auth import require_admin

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


@router.post("/models/{name}/reload", dependencies=[Depends(require_admin)])
async def reload_model(name: str, service: ServiceState = Depends(get_service)) -> dict:
    """Admin: load new or changed versions of ``name`` from the model store (verified and warmed
    up first), drop removed ones, then switch atomically. A version that fails verification
    refuses the whole reload (422) and the serving versions stay."""
    if not is_valid_name(name):
        raise ApiError(400, "invalid_model_name", f"invalid model name {name!r}")
    result = await run_in_threadpool(service.registry.reload, name)
    retired = result.pop("retired")
    for model in retired:  # let requests already on a retired version finish on it
        if model.batcher is not None:
            asyncio.get_running_loop().create_task(model.batcher.close(drain_seconds=60))
    return result
