"""POST /classify: one image, early-exit inference, the decision."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from service.dependencies import ServiceState, get_service
from service.early_exit import Outcome
from service.admission import refuse_while_draining, run_admitted
from service.answers import build_answer, observe_decision
from service.image_input import OPENAPI_REQUEST_BODY, read_image_bytes
from service.preprocessing import preprocess
from service.registry import LoadedModel
from service.schemas import Classification, ErrorBody
from training.store.manifest import NAME_REGEX

router = APIRouter(tags=["inference"])
ENDPOINT = "/classify"
ERRORS = {status: {"model": ErrorBody} for status in (400, 404, 408, 413, 415, 503, 504)}


@router.post("/classify", summary="Classify one image at its first output spike",
             response_model=Classification, responses=ERRORS, openapi_extra=OPENAPI_REQUEST_BODY)
async def classify_image(
    request: Request,
    model: str | None = Query(None, pattern=NAME_REGEX, description="model name (default: the first loaded image model)"),
    version: int | None = Query(None, ge=1, description="model version (default: the highest loaded)"),
    early_exit: bool = Query(True, description="stop at the first output spike; false runs all T timesteps"),
    service: ServiceState = Depends(get_service),
) -> Classification:
    """Classify one image. The network runs one timestep at a time and stops at its first output
    spike; the answer says when (``decision_timestep``) and what it cost."""
    loaded = service.registry.resolve(model, version, kind="image")
    request.state.model, request.state.version = loaded.name, loaded.version
    refuse_while_draining(service, loaded, ENDPOINT)
    data = await read_image_bytes(request)
    received = time.perf_counter()
    outcome = await run_admitted(service, loaded, ENDPOINT,
                                 _infer(loaded, data, service.settings.max_image_pixels, early_exit))
    seconds = time.perf_counter() - received
    response = build_answer(request.state.request_id, loaded, outcome, seconds)
    observe_decision(service.metrics, loaded, response, ENDPOINT, seconds)
    request.state.log = {"model": loaded.name, "version": loaded.version, "class_index": outcome.class_index,
                         "decision_timestep": outcome.decision_timestep, "exit_reason": outcome.exit_reason}
    return response


async def _infer(loaded: LoadedModel, data: bytes, max_pixels: int, early_exit: bool) -> Outcome:
    if loaded.batcher is not None:
        image = await run_in_threadpool(preprocess, data, loaded.input_spec, max_pixels)
        return await loaded.batcher.submit(image, early_exit)
    # one hop to the thread pool for decoding and inference together
    return await run_in_threadpool(_run_alone, loaded, data, max_pixels, early_exit)


def _run_alone(loaded: LoadedModel, data: bytes, max_pixels: int, early_exit: bool) -> Outcome:
    return loaded.classify_alone(preprocess(data, loaded.input_spec, max_pixels), early_exit)
