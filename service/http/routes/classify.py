"""POST /classify: one image, early-exit inference, the decision."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request

from service.http.answers import build_answer, observe_decision
from service.http.dependencies import ServiceDep
from service.http.errors import error_responses
from service.http.image_input import OPENAPI_REQUEST_BODY, read_image_bytes
from service.http.schemas import Classification
from service.inference.admission import admitted, within_deadline
from service.inference.early_exit import Outcome
from service.inference.preprocessing import ImageLimits, preprocess
from service.inference.registry import LoadedModel
from service.inference.state import ServiceState
from service.inference.work import Deadline
from training.contract.manifest import NAME_REGEX

router = APIRouter(tags=["inference"])
ENDPOINT = "/classify"


@router.post(
    "/classify",
    summary="Classify one image at its first output spike",
    response_model=Classification,
    responses=error_responses(400, 404, 408, 413, 415, 503, 504),
    openapi_extra=OPENAPI_REQUEST_BODY,
)
async def classify_image(
    request: Request,
    service: ServiceDep,
    model: Annotated[
        str | None,
        Query(pattern=NAME_REGEX, description="model name (default: the first loaded image model)"),
    ] = None,
    version: Annotated[
        int | None, Query(ge=1, description="model version (default: the highest loaded)")
    ] = None,
    early_exit: Annotated[
        bool, Query(description="stop at the first output spike; false runs all T timesteps")
    ] = True,
) -> Classification:
    """Classify one image. The network runs one timestep at a time and stops at its first output
    spike; the answer says when (``decision_timestep``) and what it cost."""
    with service.registry.lease(model, version, kind="image") as loaded:
        request.state.model, request.state.version = loaded.name, loaded.version
        async with admitted(service, loaded, ENDPOINT):
            data = await read_image_bytes(request, service.settings.max_body_bytes)
            received = time.perf_counter()
            outcome = await within_deadline(
                service,
                loaded,
                ENDPOINT,
                lambda deadline: _infer(service, loaded, data, early_exit, deadline),
            )
    seconds = time.perf_counter() - received
    response = build_answer(request.state.request_id, loaded, outcome, seconds)
    observe_decision(service.metrics, loaded, response, ENDPOINT, seconds)
    request.state.log = {
        "model": loaded.name,
        "version": loaded.version,
        "class_index": outcome.class_index,
        "decision_timestep": outcome.decision_timestep,
        "exit_reason": outcome.exit_reason,
    }
    return response


async def _infer(
    service: ServiceState, loaded: LoadedModel, data: bytes, early_exit: bool, deadline: Deadline
) -> Outcome:
    """Decode on the pool and classify with the batcher, or both in one pool hop without one."""
    limits = service.settings.image_limits
    if loaded.batcher is not None:
        image = await service.pool.run(preprocess, data, loaded.image_spec, limits, deadline)
        return await loaded.batcher.submit(image, early_exit)
    # one hop to the pool for decoding and inference together
    return await service.pool.run(_run_alone, loaded, data, limits, early_exit, deadline)


def _run_alone(
    loaded: LoadedModel, data: bytes, limits: ImageLimits, early_exit: bool, deadline: Deadline
) -> Outcome:
    """Decode and classify one image by itself, on a pool thread."""
    image = preprocess(data, loaded.image_spec, limits, deadline)
    deadline.check()
    return loaded.classify_alone(image, early_exit)
