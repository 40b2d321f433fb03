"""POST /classify: one image, early-exit inference, the decision."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from service.dependencies import ServiceState, get_service
from service.early_exit import Outcome, classify
from service.answers import build_answer, observe_decision
from service.errors import ApiError
from service.image_input import OPENAPI_REQUEST_BODY, read_image_bytes
from service.preprocessing import preprocess
from service.registry import LoadedModel
from service.schemas import Classification, ErrorBody

router = APIRouter(tags=["inference"])
ENDPOINT = "/classify"
ERRORS = {status: {"model": ErrorBody} for status in (400, 404, 413, 415, 503)}


@router.post("/classify", response_model=Classification, responses=ERRORS, openapi_extra=OPENAPI_REQUEST_BODY)
async def classify_image(
    request: Request,
    model: str | None = Query(None, description="model name (default: the first loaded image model)"),
    version: int | None = Query(None, ge=1, description="model version (default: the highest loaded)"),
    early_exit: bool = Query(True, description="stop at the first output spike; false runs all T timesteps"),
    service: ServiceState = Depends(get_service),
) -> Classification:
    """Classify one image. The network runs one timestep at a time and stops at its first output
    spike; the answer says when (``decision_timestep``) and what it cost."""
    loaded = service.registry.resolve(model, version, kind="image")
    request.state.model, request.state.version = loaded.name, loaded.version
    data = await read_image_bytes(request)
    received = time.perf_counter()
    if service.inflight >= service.settings.max_concurrency:
        raise ApiError(503, "overloaded", "too many requests in progress; retry shortly", {"Retry-After": "1"})
    service.inflight += 1
    gauge = service.metrics.inflight.labels(ENDPOINT)
    gauge.inc()
    max_pixels = service.settings.max_image_pixels
    try:
        if loaded.batcher is not None:
            image = await run_in_threadpool(preprocess, data, loaded.input_spec, max_pixels)
            outcome = await loaded.batcher.submit(image, early_exit)
        else:  # one hop to the thread pool for decoding and inference together
            outcome = await run_in_threadpool(_run_alone, loaded, data, max_pixels, early_exit)
    finally:
        service.inflight -= 1
        gauge.dec()
    seconds = time.perf_counter() - received
    response = build_answer(request.state.request_id, loaded, outcome, seconds)
    observe_decision(service.metrics, loaded, response, ENDPOINT, seconds)
    request.state.log = {"model": loaded.name, "version": loaded.version, "class_index": outcome.class_index,
                         "decision_timestep": outcome.decision_timestep, "exit_reason": outcome.exit_reason}
    return response


def _run_alone(loaded: LoadedModel, data: bytes, max_pixels: int, early_exit: bool) -> Outcome:
    image = preprocess(data, loaded.input_spec, max_pixels)
    return classify(loaded.runtime, image[None], loaded.widths, early_exit=early_exit, decoding=loaded.decoding,
                    on_step=loaded.on_step)[0]
