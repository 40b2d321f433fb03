"""Open Inference Protocol (KServe v2) REST endpoints for image models, beside the native API:
what ``tritonclient``, KServe and Seldon speak. Liveness and readiness are in ``health``.

An infer request of B rows is B /classify requests in one: each row goes through the same
dynamic batcher (or runs alone without one), stops at its own first output spike and gets the
answer it would get alone.
"""

from __future__ import annotations

import asyncio
import re
import time
import zlib
from collections.abc import Coroutine
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.http.answers import build_answer, observe_decision
from service.http.dependencies import ServiceDep
from service.http.errors import ApiError, error_responses
from service.http.image_input import read_body
from service.http.oip.codec import TensorError, output_tensor, read_inputs, response_body, split_body
from service.http.oip.tensors import (
    OUTPUTS,
    InferRows,
    bad_tensor,
    input_metadata,
    model_input,
    output_arrays,
    output_metadata,
    read_rows,
    requested_outputs,
)
from service.http.schemas import OipModelMetadata, OipModelReady, OipServerMetadata
from service.inference.admission import admitted, within_deadline
from service.inference.early_exit import Outcome
from service.inference.errors import Draining, ModelNotFound, WrongModelKind
from service.inference.registry import LoadedModel
from service.inference.state import ServiceState
from service.inference.work import Deadline

router = APIRouter(tags=["open inference protocol"])
ENDPOINT = "/v2/infer"  # one metrics label for both infer paths
HEADER_LENGTH = "Inference-Header-Content-Length"
EXTENSIONS = ("binary_tensor_data",)
VERSION = re.compile(r"[1-9][0-9]{0,17}")
INLINE_PARSE_BYTES = 64 * 1024  # larger bodies are parsed in the thread pool
T = TypeVar("T")


INFER_BODY = {
    "requestBody": {
        "required": True,
        "description": "JSON inference request; with the binary tensor data extension, the JSON header "
        f"({HEADER_LENGTH} bytes long) followed by the inputs' raw bytes",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": {"type": "object"},
                        "inputs": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "required": ["name", "datatype", "shape"],
                                "properties": {
                                    "name": {"type": "string", "enum": ["image", "pixels"]},
                                    "datatype": {"type": "string", "enum": ["BYTES", "UINT8"]},
                                    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                                    "parameters": {"type": "object"},
                                    "data": {},
                                },
                            },
                        },
                        "outputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string", "enum": list(OUTPUTS)},
                                    "parameters": {"type": "object"},
                                },
                            },
                        },
                    },
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
INFER_RESPONSES = {
    200: {
        "description": "JSON inference response, or a JSON header followed by binary outputs",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    **error_responses(400, 404, 413, 415, 503, 504),
}


@router.get("/v2", summary="OIP server metadata", response_model=OipServerMetadata)
async def server_metadata(request: Request) -> OipServerMetadata:
    return OipServerMetadata(name="firstspike", version=request.app.version, extensions=list(EXTENSIONS))


def _resolve(service: ServiceState, name: str, version: str | None) -> LoadedModel:
    """The image model version an OIP path names (event models are refused)."""
    number = None
    if version is not None:
        if not VERSION.fullmatch(version):
            raise ModelNotFound(f"model {name!r} has no version {version!r}", "unknown_version")
        number = int(version)
    try:
        return service.registry.resolve(name, number, kind="image")
    except WrongModelKind:
        raise WrongModelKind(
            f"model {name!r} classifies DVS event streams: it stays on /classify/stream, "
            "not the Open Inference Protocol"
        ) from None


def _lease(service: ServiceState, name: str, version: str | None) -> AbstractContextManager[LoadedModel]:
    """``_resolve``, the version marked in use for the block (``LoadedModel.in_use``)."""
    return _resolve(service, name, version).in_use()


def _metadata(service: ServiceState, name: str, version: str | None) -> OipModelMetadata:
    """The version's OIP metadata."""
    loaded = _resolve(service, name, version)
    versions = service.registry.models.get(loaded.name) or {loaded.version: loaded}
    return OipModelMetadata(
        name=loaded.name,
        versions=[str(v) for v in sorted(versions)],
        platform=f"firstspike_{loaded.runtime.name}",
        inputs=input_metadata(loaded.image_spec),
        outputs=output_metadata(loaded.widths.classes),
    )


@router.get(
    "/v2/models/{name}",
    summary="OIP model metadata (the highest version)",
    response_model=OipModelMetadata,
    responses=error_responses(400, 404, 503),
)
async def model_metadata(name: str, service: ServiceDep) -> OipModelMetadata:
    """Tensor metadata of the model's highest loaded version; -1 marks the batch dimension."""
    return _metadata(service, name, None)


@router.get(
    "/v2/models/{name}/versions/{version}",
    summary="OIP model version metadata",
    response_model=OipModelMetadata,
    responses=error_responses(400, 404, 503),
)
async def model_version_metadata(name: str, version: str, service: ServiceDep) -> OipModelMetadata:
    return _metadata(service, name, version)


def _ready(service: ServiceState, name: str, version: str | None) -> OipModelReady:
    """Ready if the version is loaded and the server is not draining."""
    loaded = _resolve(service, name, version)
    if service.draining:  # a probe, not a refused request: not counted as a rejection
        raise Draining("the server is shutting down")
    return OipModelReady(name=loaded.name, version=str(loaded.version), ready=True)


@router.get(
    "/v2/models/{name}/ready",
    summary="OIP model readiness",
    response_model=OipModelReady,
    responses=error_responses(400, 404, 503),
)
async def model_ready(name: str, service: ServiceDep) -> OipModelReady:
    """200 when the model is loaded and the server ready; otherwise the error body."""
    return _ready(service, name, None)


@router.get(
    "/v2/models/{name}/versions/{version}/ready",
    summary="OIP model version readiness",
    response_model=OipModelReady,
    responses=error_responses(400, 404, 503),
)
async def model_version_ready(name: str, version: str, service: ServiceDep) -> OipModelReady:
    return _ready(service, name, version)


@router.post(
    "/v2/models/{name}/infer",
    summary="OIP inference: a batch of images",
    response_class=Response,
    responses=INFER_RESPONSES,
    openapi_extra=INFER_BODY,
)
async def infer(request: Request, name: str, service: ServiceDep) -> Response:
    """Classify B images, given as ``image`` BYTES [B] (image files) or ``pixels`` UINT8
    [B, C, H, W]; JSON tensors or the binary tensor data extension."""
    return await _infer_request(request, service, name, None)


@router.post(
    "/v2/models/{name}/versions/{version}/infer",
    summary="OIP inference on one version",
    response_class=Response,
    responses=INFER_RESPONSES,
    openapi_extra=INFER_BODY,
)
async def infer_version(request: Request, name: str, version: str, service: ServiceDep) -> Response:
    return await _infer_request(request, service, name, version)


async def _infer_request(request: Request, service: ServiceState, name: str, version: str | None) -> Response:
    """An infer request, from admission to the response."""
    request.state.endpoint = ENDPOINT
    with _lease(service, name, version) as loaded:
        request.state.model, request.state.version = loaded.name, loaded.version
        async with admitted(service, loaded, ENDPOINT):
            decided, inference_id, outputs = await _read_and_infer(request, service, loaded)
    answers = [
        build_answer(request.state.request_id, loaded, outcome, seconds) for outcome, seconds in decided
    ]
    for answer, (_, seconds) in zip(answers, decided):
        observe_decision(service.metrics, loaded, answer, ENDPOINT, seconds)
    request.state.log = {
        "model": loaded.name,
        "version": loaded.version,
        "rows": len(answers),
        "class_index": [a.class_index for a in answers],
        "decision_timestep": [a.decision_timestep for a in answers],
    }
    return _response(loaded, inference_id, outputs, output_arrays(answers))


async def _read_and_infer(
    request: Request, service: ServiceState, loaded: LoadedModel
) -> tuple[list[tuple[Outcome, float]], str | None, list[tuple[str, bool]]]:
    """The body read and parsed, its rows decided: (outcome, seconds) per row, the request's
    ``id`` and the outputs it asks for."""
    settings = service.settings
    body = _decompress(
        await read_body(request), request.headers.get("content-encoding", ""), settings.max_body_bytes
    )
    header_length = request.headers.get(HEADER_LENGTH)
    if len(body) > INLINE_PARSE_BYTES:  # a million JSON numbers or BYTES elements would stall every request
        inference_id, rows, outputs = await service.pool.run(_parse, body, header_length, loaded)
    else:
        inference_id, rows, outputs = _parse(body, header_length, loaded)
    if len(rows) > settings.request_rows:  # one request may take a share of the model's queue, not all of it
        raise ApiError(413, "too_many_rows", f"{len(rows)} rows; at most {settings.request_rows} per request")
    received = time.perf_counter()
    decided = await within_deadline(
        service, loaded, ENDPOINT, lambda deadline: _infer(service, loaded, rows, received, deadline)
    )
    return decided, inference_id, outputs


def _parse(
    body: bytes, header_length: str | None, loaded: LoadedModel
) -> tuple[str | None, InferRows, list[tuple[str, bool]]]:
    """The request's ``id``, its rows and the outputs it asks for; 400 for anything off."""
    try:
        header, binary = split_body(body, header_length)
        inference_id = header.get("id")
        if inference_id is not None and not isinstance(inference_id, str):
            raise TensorError("'id' must be a string")
        return (
            inference_id,
            read_rows(read_inputs(header, binary), loaded.image_spec),
            requested_outputs(header),
        )
    except TensorError as error:
        raise bad_tensor(error) from None


def _response(
    loaded: LoadedModel,
    inference_id: str | None,
    outputs: list[tuple[str, bool]],
    arrays: dict[str, np.ndarray],
) -> Response:
    """The infer response: JSON, or a JSON header followed by the binary outputs."""
    header: dict[str, Any] = {"model_name": loaded.name, "model_version": str(loaded.version)}
    if inference_id is not None:
        header["id"] = inference_id
    metas: list[dict[str, Any]] = []
    raws: list[bytes] = []
    header["outputs"] = metas
    for name, binary in outputs:
        meta, raw = output_tensor(name, OUTPUTS[name][0], arrays[name], binary)
        metas.append(meta)
        if raw is not None:
            raws.append(raw)
    body, header_length = response_body(header, raws)
    if header_length is None:
        return Response(body, media_type="application/json")
    return Response(body, media_type="application/octet-stream", headers={HEADER_LENGTH: str(header_length)})


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """The body as sent by ``tritonclient``'s request_compression_algorithm, at most ``limit``
    bytes once inflated (a small gzip bomb must not become a large body)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise ApiError(
            415,
            "unsupported_content_encoding",
            f"content encoding {encoding!r} is not accepted; send gzip, deflate or none",
        )
    # wbits 31: gzip; 15: deflate, which HTTP means as the zlib format
    inflater = zlib.decompressobj(31 if encoding == "gzip" else 15)
    try:
        inflated = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise ApiError(
            400, "invalid_encoding", f"the {encoding} body could not be inflated ({error})"
        ) from None
    if len(inflated) > limit:
        raise ApiError(413, "payload_too_large", f"request body exceeds {limit} bytes once inflated")
    if not inflater.eof:
        raise ApiError(400, "invalid_encoding", f"the {encoding} body is truncated")
    return inflated


async def _infer(
    service: ServiceState, loaded: LoadedModel, rows: InferRows, received: float, deadline: Deadline
) -> list[tuple[Outcome, float]]:
    """(outcome, seconds from ``received`` to its decision) per row, in order."""
    settings = service.settings
    images = await service.pool.run(
        model_input, rows, loaded.image_spec, settings.image_limits, settings.max_request_pixels, deadline
    )
    batcher = loaded.batcher
    if batcher is not None:

        async def one(image: np.ndarray) -> tuple[Outcome, float]:
            outcome = await batcher.submit(image)
            return outcome, time.perf_counter() - received

        return await _all([one(image) for image in images])
    decided = []
    for image in images:  # a hop per row, so a timeout stops between rows
        outcome = await service.pool.run(loaded.classify_alone, image)
        decided.append((outcome, time.perf_counter() - received))
    return decided


async def _all(coroutines: list[Coroutine[Any, Any, T]]) -> list[T]:
    """``asyncio.gather``, except that one failure (a full queue) cancels the other rows."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
