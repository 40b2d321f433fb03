"""POST /classify: one image, early-exit inference, the decision."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from service.dependencies import ServiceState, get_service
from service.early_exit import Outcome, classify
from service.answers import build_answer, observe_decision
from service.batching import QueueFull
from service.errors import ApiError
from service.image_input import OPENAPI_REQUEST_BODY, read_image_bytes
from service.preprocessing import preprocess
from service.registry import LoadedModel
from service.schemas import Classification, ErrorBody
from training.store.manifest import NAME_REGEX

router = APIRouter(tags=["inference"])
ENDPOINT = "/classify"
ERRORS = {status: {"model": ErrorBody} for status in (400, 404, 408, 413, 415, 503, 504)}


@router.post("/classify", response_model=Classification, responses=ERRORS, openapi_extra=OPENAPI_REQUEST_BODY)
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
    rejected = service.metrics.rejections
    if service.draining:  # checked on arrival: a request already uploading when SIGTERM came finishes
        rejected.labels(loaded.name, str(loaded.version), ENDPOINT, "draining").inc()
        raise ApiError(503, "draining", "the server is shutting down; retry on another instance", {"Retry-After": "1"})
    data = await read_image_bytes(request)
    received = time.perf_counter()
    if service.inflight >= service.settings.max_concurrency:
        rejected.labels(loaded.name, str(loaded.version), ENDPOINT, "overloaded").inc()
        raise ApiError(503, "overloaded", "too many requests in progress; retry shortly", {"Retry-After": "1"})
    service.inflight += 1
    gauge = service.metrics.inflight.labels(ENDPOINT)
    gauge.inc()
    max_pixels = service.settings.max_image_pixels
    try:
        outcome = await asyncio.wait_for(_infer(loaded, data, max_pixels, early_exit),
                                         service.settings.request_timeout_s)
    except QueueFull:
        rejected.labels(loaded.name, str(loaded.version), ENDPOINT, "queue_full").inc()
        raise ApiError(503, "overloaded", f"the queue of {loaded.name}/{loaded.version} is full; retry shortly",
                       {"Retry-After": "1"}) from None
    except asyncio.TimeoutError:
        rejected.labels(loaded.name, str(loaded.version), ENDPOINT, "timeout").inc()
        raise ApiError(504, "timeout", f"no decision within {service.settings.request_timeout_s:g} s") from None
    finally:
        service.inflight -= 1
        gauge.dec()
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
    image = preprocess(data, loaded.input_spec, max_pixels)
    return classify(loaded.runtime, image[None], loaded.widths, early_exit=early_exit, decoding=loaded.decoding,
                    on_step=loaded.on_step)[0]
