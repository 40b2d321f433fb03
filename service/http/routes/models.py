"""What is loaded: names, versions, manifests."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path
from starlette.concurrency import run_in_threadpool

from service.http.auth import require_admin

from service.http.dependencies import ServiceState, get_service
from service.http.errors import ApiError
from service.http.schemas import ErrorBody
from training.contract.manifest import NAME_REGEX

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
        "runtime": versions[max(versions)].runtime.name,  # the default version's
        # Each version's own: under runtime auto, versions of one model may differ.
        "runtimes": {str(version): model.runtime.name for version, model in sorted(versions.items())},
    }


@router.get("/models", summary="Loaded models, their versions and runtimes; refused versions and why")
async def list_models(service: ServiceState = Depends(get_service)) -> dict:
    registry = service.inference.registry
    return {
        "models": [_summary(name, versions) for name, versions in sorted(registry.models.items())],
        "errors": registry.errors,
        "ready": registry.ready,
    }


def _errors(*statuses: int) -> dict:
    return {status: {"model": ErrorBody} for status in statuses}


@router.get("/models/{name}", summary="One model: versions, runtimes and manifests", responses=_errors(400, 404))
async def get_model(name: str = Path(pattern=NAME_REGEX), service: ServiceState = Depends(get_service)) -> dict:
    versions = service.inference.registry.models.get(name)
    if not versions:
        raise ApiError(404, "unknown_model", f"model {name!r} is not loaded")
    return {**_summary(name, versions),
            "manifests": {str(version): model.manifest for version, model in sorted(versions.items())}}


@router.post("/models/{name}/reload", summary="Admin: bring a model in line with the store",
             dependencies=[Depends(require_admin)], responses=_errors(400, 401, 403, 404, 422))
async def reload_model(name: str = Path(pattern=NAME_REGEX), service: ServiceState = Depends(get_service)) -> dict:
    """Admin: load new or changed versions of ``name`` from the model store (verified and warmed
    up first), drop removed ones, then switch atomically. A version that fails verification
    refuses the whole reload (422) and the serving versions stay."""
    result = await run_in_threadpool(service.inference.registry.reload, name)
    for model in result.pop("retired"):  # requests already on a retired version finish on it
        model.retire()
    return result
