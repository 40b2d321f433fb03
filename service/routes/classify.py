"""POST /classify: one image, early-exit inference, the decision."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from service.dependencies import ServiceState, get_service
from service.early_exit import Outcome, classify
from service.energy import request_energy
from service.errors import ApiError
from service.image_input import OPENAPI_REQUEST_BODY, read_image_bytes
from service.preprocessing import preprocess
from service.registry import LoadedModel
from service.schemas import Classification, ErrorBody, ModelRef, Spikes

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
    decided = time.perf_counter()
    response = _response(request, loaded, outcome, decided - received)
    _observe(service, loaded, outcome, response, decided - received)
    request.state.log = {"model": loaded.name, "version": loaded.version, "class_index": outcome.class_index,
                         "decision_timestep": outcome.decision_timestep, "exit_reason": outcome.exit_reason}
    return response


def _run_alone(loaded: LoadedModel, data: bytes, max_pixels: int, early_exit: bool) -> Outcome:
    image = preprocess(data, loaded.input_spec, max_pixels)
    return classify(loaded.runtime, image[None], loaded.widths, early_exit=early_exit, decoding=loaded.decoding,
                    on_step=loaded.on_step)[0]


def _response(request: Request, loaded: LoadedModel, outcome: Outcome, seconds: float) -> Classification:
    per_layer = [int(round(v)) for v in outcome.layer_spikes]
    return Classification(
        request_id=request.state.request_id,
        model=ModelRef(name=loaded.name, version=loaded.version),
        class_index=outcome.class_index,
        label=loaded.manifest["labels"][outcome.class_index],
        decision_timestep=outcome.decision_timestep,
        max_timesteps=loaded.runtime.timesteps,
        timesteps_run=outcome.timesteps_run,
        exit_reason=outcome.exit_reason,
        spikes=Spikes(total=sum(per_layer) + sum(outcome.output_spikes), per_layer=per_layer,
                      output=outcome.output_spikes),
        energy=request_energy(loaded.manifest, outcome),
        scores=outcome.scores,
        latency_ms=seconds * 1000,
    )


def _observe(service: ServiceState, loaded: LoadedModel, outcome: Outcome, response: Classification,
             seconds: float) -> None:
    metrics = service.metrics
    labels = (loaded.name, str(loaded.version), ENDPOINT)
    metrics.decision_timestep.labels(*labels).observe(outcome.decision_timestep)
    metrics.decision_latency.labels(*labels).observe(seconds)
    metrics.exits.labels(*labels, outcome.exit_reason).inc()
    metrics.spikes.labels(*labels).observe(response.spikes.total)
    metrics.synaptic_ops.labels(*labels).observe(response.energy.synaptic_ops)
    metrics.energy.labels(*labels).observe(response.energy.joules)
