"""What is loaded: names, versions, manifests; and the admin reload."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from starlette.concurrency import run_in_threadpool

from service.http.auth import require_admin
from service.http.dependencies import ServiceDep
from service.http.errors import error_responses
from service.http.schemas import ModelDetail, ModelList, ModelSummary, ReloadAnswer
from service.inference.errors import ModelNotFound
from service.inference.registry import LoadedModel
from training.contract.manifest import NAME_REGEX

router = APIRouter(tags=["models"])
ModelName = Annotated[str, Path(pattern=NAME_REGEX)]


def _summary(name: str, versions: dict[int, LoadedModel]) -> ModelSummary:
    default = versions[max(versions)]
    return ModelSummary(
        name=name,
        versions=sorted(versions),
        default_version=default.version,
        kind=default.kind,
        timesteps=default.runtime.timesteps,
        labels=list(default.manifest.labels),
        runtime=default.runtime.name,
        runtimes={str(version): model.runtime.name for version, model in sorted(versions.items())},
    )


@router.get(
    "/models",
    summary="Loaded models, their versions and runtimes; refused versions and why",
    response_model=ModelList,
)
async def list_models(service: ServiceDep) -> ModelList:
    registry = service.registry
    return ModelList(
        models=[_summary(name, versions) for name, versions in sorted(registry.models.items())],
        errors=registry.errors,
        ready=registry.ready,
    )


@router.get(
    "/models/{name}",
    summary="One model: versions, runtimes and manifests",
    response_model=ModelDetail,
    responses=error_responses(400, 404),
)
async def get_model(name: ModelName, service: ServiceDep) -> ModelDetail:
    versions = service.registry.models.get(name)
    if not versions:
        raise ModelNotFound(f"model {name!r} is not loaded")
    return ModelDetail(
        **_summary(name, versions).model_dump(),
        manifests={str(version): model.manifest.as_stored() for version, model in sorted(versions.items())},
    )


@router.post(
    "/models/{name}/reload",
    summary="Admin: bring a model in line with the store",
    dependencies=[Depends(require_admin)],
    response_model=ReloadAnswer,
    responses=error_responses(400, 401, 403, 404, 422),
)
async def reload_model(name: ModelName, service: ServiceDep) -> ReloadAnswer:
    """Admin: load new or changed versions of ``name`` from the model store (verified and warmed
    up first), drop removed ones, then switch atomically. A version that fails verification
    refuses the whole reload (422) and the serving versions stay."""
    reloaded = await run_in_threadpool(service.registry.reload, name)
    for model in reloaded.retired:  # requests already on a retired version finish on it
        model.retire()
    return ReloadAnswer(
        model=reloaded.model,
        versions=reloaded.versions,
        default_version=reloaded.default_version,
        loaded=reloaded.loaded,
        unloaded=reloaded.unloaded,
    )
