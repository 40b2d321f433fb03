"""/classify/stream: DVS event streams (``dvs-events/1``) over a WebSocket (the live path) or as
a POST body read incrementally. The decision is sent the moment the first output spike happens;
the rest of the stream is not read."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from service.http.answers import build_answer, observe_decision
from service.http.dependencies import ServiceDep
from service.http.errors import ApiError, as_api_error, error_responses, status_of
from service.http.schemas import StreamClassification
from service.inference.admission import count_rejection, stream_slot
from service.inference.early_exit import Outcome
from service.inference.errors import InferenceError, InputTooLarge, InvalidInput, StreamTimedOut
from service.inference.registry import LoadedModel
from service.inference.state import ServiceState
from service.inference.stream_framing import (
    binary_packets,
    each_within,
    message_events,
    ndjson_packets,
    prepend,
)
from service.inference.streams import (
    LiveStream,
    StreamLimits,
    next_within,
    parse_header,
    sensor_size,
    wall_clock,
)
from training.contract.manifest import NAME_REGEX

router = APIRouter(tags=["streams"])
ENDPOINT = "/classify/stream"
BINARY = "application/x-dvs-events"
NDJSON = "application/x-ndjson"
ModelName = Annotated[str | None, Query(pattern=NAME_REGEX)]
Version = Annotated[int | None, Query(ge=1)]


def _answer(
    service: ServiceState,
    loaded: LoadedModel,
    live: LiveStream,
    outcome: Outcome,
    request_id: str,
    seconds: float,
) -> StreamClassification:
    base = build_answer(request_id, loaded, outcome, seconds)
    observe_decision(service.metrics, loaded, base, ENDPOINT, seconds)
    session = live.session
    return StreamClassification(
        **base.model_dump(),
        events_received=session.events_received if session else 0,
        events_used=session.events_used if session else 0,
    )


@router.websocket("/classify/stream")
async def stream_websocket(websocket: WebSocket, model: ModelName = None, version: Version = None) -> None:
    """First message: ``{"format": "dvs-events/1", "width": W, "height": H}``; then binary
    messages of 16-byte records (or JSON packets); ``{"type": "end"}`` ends the stream. The server
    answers ``{"type": "decision", ...}`` once, or ``{"type": "error", "error", "code"}``, then closes."""
    service: ServiceState = websocket.app.state.service
    request_id = uuid.uuid4().hex
    await websocket.accept(headers=[(b"x-request-id", request_id.encode())])
    limits = StreamLimits.from_settings(service.settings)
    try:
        with (
            service.registry.lease(model, version, kind="events") as loaded,
            stream_slot(service, loaded, ENDPOINT),
        ):
            live = LiveStream(service, loaded, limits)
            async with wall_clock(limits) as deadline:
                text, data = await _receive(websocket, live, deadline)
                live.start(*parse_header(text if text is not None else data or b""))
                outcome = None
                while outcome is None:
                    text, data = await _receive(websocket, live, deadline)
                    received = time.perf_counter()
                    events = message_events(text, data)
                    outcome = await (live.end() if events is None else live.feed(events))
            answer = _answer(service, loaded, live, outcome, request_id, time.perf_counter() - received)
            await websocket.send_json({"type": "decision", **answer.model_dump()})
        await websocket.close(1000)
    except InferenceError as error:
        # 503 (draining, no free slot) closes with 1013 Try Again Later; anything else is the
        # client's fault: 1008 Policy Violation
        await _send_error(websocket, error.code, error.message, 1013 if status_of(error) == 503 else 1008)
    except WebSocketDisconnect:
        return  # the client left: its slot is already given back


async def _receive(
    websocket: WebSocket, live: LiveStream, deadline: float
) -> tuple[str | None, bytes | None]:
    """The next message's text or bytes, within the idle timeout, the deadline and the size limits."""
    limits = live.limits
    message = await next_within(websocket.receive(), limits.idle_timeout_s, deadline, "message")
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text, data = message.get("text"), message.get("bytes")
    size = len(data or b"") + len(text or "")
    if size > limits.max_message_bytes:
        raise InputTooLarge(
            f"a message may hold at most {limits.max_message_bytes} bytes", "message_too_large"
        )
    live.charge(size)
    return text, data


async def _send_error(websocket: WebSocket, code: str, message: str, close_code: int = 1008) -> None:
    if websocket.application_state == WebSocketState.CONNECTED:
        try:
            await websocket.send_json({"type": "error", "error": message, "code": code})
            await websocket.close(close_code)
        except (WebSocketDisconnect, RuntimeError):
            pass


STREAM_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            BINARY: {
                "schema": {
                    "type": "string",
                    "format": "binary",
                    "description": "16-byte little-endian records: int64 t, uint16 x, uint16 y, "
                    "uint8 p, 3 zero bytes",
                }
            },
            NDJSON: {
                "schema": {
                    "type": "string",
                    "description": 'lines of {"t": [...], "x": [...], "y": [...], "p": [...]}; an optional '
                    'first line {"format": "dvs-events/1", "width": W, "height": H}',
                }
            },
        },
    }
}


@router.post(
    "/classify/stream",
    summary="Classify an event stream sent as the body",
    response_model=StreamClassification,
    openapi_extra=STREAM_BODY,
    responses=error_responses(400, 404, 408, 413, 415, 503),
)
async def stream_post(
    request: Request,
    service: ServiceDep,
    model: ModelName = None,
    version: Version = None,
    width: Annotated[int | None, Query(ge=1, description="sensor width (required for binary bodies)")] = None,
    height: Annotated[
        int | None, Query(ge=1, description="sensor height (required for binary bodies)")
    ] = None,
) -> StreamClassification:
    """A whole or chunked upload of one stream, consumed as it arrives: the answer comes as soon
    as the network decides, without reading the rest of the body."""
    with service.registry.lease(model, version, kind="events") as loaded:
        request.state.model, request.state.version = loaded.name, loaded.version
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type not in (BINARY, NDJSON):
            raise ApiError(
                415, "unsupported_media_type", f"send {BINARY} (with width and height) or {NDJSON}"
            )
        try:
            with stream_slot(service, loaded, ENDPOINT):  # a slot from here: the body may be slow to start
                return await _classify_upload(request, service, loaded, media_type, width, height)
        except StreamTimedOut as error:
            # a body too slow to arrive (counted with /classify's) or a stream past its wall-clock
            # cap: the connection is closed rather than left to read whatever the client still sends
            reason = "body_timeout" if error.code == "idle_timeout" else "stream_timeout"
            count_rejection(service, loaded, ENDPOINT, reason)
            raise as_api_error(error, {"Connection": "close"}) from None


async def _classify_upload(
    request: Request,
    service: ServiceState,
    loaded: LoadedModel,
    media_type: str,
    width: int | None,
    height: int | None,
) -> StreamClassification:
    limits = StreamLimits.from_settings(service.settings)
    live = LiveStream(service, loaded, limits)
    async with wall_clock(limits) as deadline:
        chunks = _charged(request, live)
        framed: AsyncIterator[Any] = (
            binary_packets(chunks)
            if media_type == BINARY
            else ndjson_packets(chunks, limits.max_message_bytes)
        )
        packets = each_within(framed, limits.idle_timeout_s, deadline)
        first = await anext(packets, None)
        declared = parse_header(first) if isinstance(first, dict) else None
        if width is not None and height is not None:
            declared = sensor_size(width, height)
        if declared is None:
            raise InvalidInput(
                "give the sensor's width and height as query parameters "
                "(or, for NDJSON, as a first header line)",
                "bad_header",
            )
        live.start(*declared)
        outcome, received = None, time.perf_counter()
        pending = [] if first is None or isinstance(first, dict) else [first]
        async for events in prepend(pending, packets):
            received = time.perf_counter()
            outcome = await live.feed(events)
            if outcome is not None:
                break
        if outcome is None:
            outcome = await live.end()
    return _answer(service, loaded, live, outcome, request.state.request_id, time.perf_counter() - received)


async def _charged(request: Request, live: LiveStream) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            live.charge(len(chunk))
            yield chunk
