"""/classify/stream: DVS event streams (``dvs-events/1``) over a WebSocket (the live path) or as
a POST body read incrementally. The decision is sent the moment the first output spike happens;
the rest of the stream is not read."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from service.http.answers import build_answer, observe_decision
from service.http.dependencies import ServiceState, get_service
from service.inference.early_exit import Outcome
from service.http.errors import ApiError
from service.inference.registry import LoadedModel
from service.http.schemas import ErrorBody, StreamClassification
from service.inference.streams import (ByteBudget, StreamError, StreamLimits, StreamSession, parse_binary_packet,
                             parse_header, parse_json_packet, sensor_size)
from training.contract.events.format import RECORD_BYTES
from training.contract.manifest import NAME_REGEX

router = APIRouter(tags=["streams"])
ENDPOINT = "/classify/stream"
BINARY = "application/x-dvs-events"
NDJSON = "application/x-ndjson"


def _limits(service: ServiceState) -> StreamLimits:
    settings = service.settings
    return StreamLimits(settings.stream_max_events, int(settings.stream_max_duration_s * 1e6),
                        settings.stream_idle_timeout_s, settings.stream_max_message_bytes,
                        settings.stream_max_seconds)


@asynccontextmanager
async def _wall_clock(limits: StreamLimits) -> AsyncIterator[None]:
    """The session's whole life within ``max_seconds``, however its packets trickle in."""
    try:
        async with asyncio.timeout(limits.max_seconds):
            yield
    except TimeoutError:
        raise StreamError("stream_timeout", f"the stream lasted longer than {limits.max_seconds:g} s", 408) from None


def _answer(service: ServiceState, loaded: LoadedModel, session: StreamSession, outcome: Outcome, request_id: str,
            seconds: float) -> StreamClassification:
    base = build_answer(request_id, loaded, outcome, seconds)
    observe_decision(service.metrics, loaded, base, ENDPOINT, seconds)
    return StreamClassification(**base.model_dump(), events_received=session.events_received,
                                events_used=session.events_used)


class _Session:
    """One of the ``max_streams`` stream slots, taken on admission (before the header is read, so
    a client that connects and stays silent holds one too) and given back when the block exits,
    however it exits: decision, error, timeout, client gone or cancellation. Counted in
    ``firstspike_stream_sessions_active`` meanwhile; the stream itself starts at the header.
    Every message or body chunk, the header's too, is charged against the session's bytes."""

    def __init__(self, service: ServiceState, loaded: LoadedModel) -> None:
        self.service, self.loaded = service, loaded
        self.session: StreamSession | None = None
        self.budget = ByteBudget(service.settings.stream_max_bytes)
        self.gauge = service.metrics.stream_sessions.labels(loaded.name, str(loaded.version))
        self.events = service.metrics.stream_events.labels(loaded.name, str(loaded.version))

    def __enter__(self) -> "_Session":
        service, limit = self.service, self.service.settings.max_streams
        if service.inference.streams >= limit:
            service.metrics.rejections.labels(self.loaded.name, str(self.loaded.version), ENDPOINT,
                                              "streams_full").inc()
            raise StreamError("overloaded", f"{limit} stream sessions are open, the most this server takes; "
                                            "retry shortly", 503)
        service.inference.streams += 1  # no await between the check and this: one event loop, no race
        self.gauge.inc()
        return self

    def __exit__(self, *exc) -> None:
        self.service.streams -= 1
        self.gauge.dec()

    def start(self, width: int, height: int) -> StreamSession:
        self.session = StreamSession(self.loaded, width, height, _limits(self.service))
        return self.session

    def charge(self, size: int) -> None:
        self.budget.charge(size)

    async def feed(self, events: np.ndarray) -> Outcome | None:
        self.events.inc(len(events))
        return await self.service.pool.run(self.session.feed, events)

    async def end(self) -> Outcome:
        return await self.service.pool.run(self.session.end)


@router.websocket("/classify/stream")
async def stream_websocket(websocket: WebSocket, model: str | None = Query(None, pattern=NAME_REGEX),
                           version: int | None = Query(None, ge=1)) -> None:
    """First message: ``{"format": "dvs-events/1", "width": W, "height": H}``; then binary
    messages of 16-byte records (or JSON packets); ``{"type": "end"}`` ends the stream. The server
    answers ``{"type": "decision", ...}`` once, or ``{"type": "error", "error", "code"}``, then closes."""
    service: ServiceState = websocket.app.state.service
    request_id = uuid.uuid4().hex
    await websocket.accept(headers=[(b"x-request-id", request_id.encode())])
    limits = _limits(service)
    try:
        with service.inference.registry.lease(model, version, kind="events") as loaded:
            if service.draining:
                raise StreamError("draining", "the server is shutting down; reconnect to another instance", 503)
            with _Session(service, loaded) as live:
                async with _wall_clock(limits):
                    message = await _receive(websocket, limits, live)
                    header = message.get("text") if message.get("text") is not None else message.get("bytes")
                    live.start(*parse_header(header))
                    outcome = None
                    while outcome is None:
                        message = await _receive(websocket, limits, live)
                        received = time.perf_counter()
                        events = _packet(message, limits)
                        outcome = await (live.end() if events is None else live.feed(events))
                answer = _answer(service, loaded, live.session, outcome, request_id, time.perf_counter() - received)
                await websocket.send_json({"type": "decision", **answer.model_dump()})
        await websocket.close(1000)
    except (StreamError, ApiError) as error:
        # 503 (draining, no free slot) closes with 1013 Try Again Later; anything else is the
        # client's fault: 1008 Policy Violation
        await _send_error(websocket, error.code, error.message, 1013 if error.status == 503 else 1008)
    except WebSocketDisconnect:
        return  # the client left: its slot is already given back


async def _receive(websocket: WebSocket, limits: StreamLimits, live: _Session) -> dict:
    try:
        message = await asyncio.wait_for(websocket.receive(), limits.idle_timeout_s)
    except asyncio.TimeoutError:
        raise StreamError("idle_timeout", f"no message for {limits.idle_timeout_s:g} s") from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    size = len(message.get("bytes") or b"") + len(message.get("text") or "")
    if size > limits.max_message_bytes:
        raise StreamError("message_too_large", f"a message may hold at most {limits.max_message_bytes} bytes", 413)
    live.charge(size)
    return message


def _packet(message: dict, limits: StreamLimits) -> np.ndarray | None:
    """Events of a message, or None for ``{"type": "end"}``."""
    if message.get("bytes") is not None:
        return parse_binary_packet(message["bytes"])
    try:
        payload = json.loads(message.get("text") or "")
    except (json.JSONDecodeError, RecursionError):
        raise StreamError("bad_packet", "a text message must be JSON: a packet or {\"type\": \"end\"}") from None
    if isinstance(payload, dict) and payload.get("type") == "end":
        return None
    return parse_json_packet(payload)


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
            BINARY: {"schema": {"type": "string", "format": "binary",
                                "description": "16-byte little-endian records: int64 t, uint16 x, uint16 y, uint8 p, 3 zero bytes"}},
            NDJSON: {"schema": {"type": "string",
                                "description": 'lines of {"t": [...], "x": [...], "y": [...], "p": [...]}; an optional '
                                               'first line {"format": "dvs-events/1", "width": W, "height": H}'}},
        },
    }
}


@router.post("/classify/stream", summary="Classify an event stream sent as the body",
             response_model=StreamClassification, openapi_extra=STREAM_BODY,
             responses={status: {"model": ErrorBody} for status in (400, 404, 408, 413, 415, 503)},
             include_in_schema=True)
async def stream_post(
    request: Request,
    model: str | None = Query(None, pattern=NAME_REGEX),
    version: int | None = Query(None, ge=1),
    width: int | None = Query(None, ge=1, description="sensor width (required for binary bodies)"),
    height: int | None = Query(None, ge=1, description="sensor height (required for binary bodies)"),
    service: ServiceState = Depends(get_service),
) -> StreamClassification:
    """A whole or chunked upload of one stream, consumed as it arrives: the answer comes as soon
    as the network decides, without reading the rest of the body."""
    with service.inference.registry.lease(model, version, kind="events") as loaded:
        request.state.model, request.state.version = loaded.name, loaded.version
        if service.draining:
            raise ApiError(503, "draining", "the server is shutting down; retry on another instance",
                           {"Retry-After": "1"})
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type not in (BINARY, NDJSON):
            raise ApiError(415, "unsupported_media_type", f"send {BINARY} (with width and height) or {NDJSON}")
        try:
            return await _classify_upload(request, service, loaded, media_type, width, height)
        except StreamError as error:
            raise _upload_error(service, loaded, error) from None


async def _classify_upload(request: Request, service: ServiceState, loaded: LoadedModel, media_type: str,
                           width: int | None, height: int | None) -> StreamClassification:
    limits = _limits(service)
    with _Session(service, loaded) as live:  # a slot from here: the body may be slow to start
        async with _wall_clock(limits):
            chunks = _chunks(request, live)
            packets = _binary_packets(chunks) if media_type == BINARY else _ndjson_packets(chunks, limits)
            packets = _each_within(packets, limits.idle_timeout_s)
            first = await anext(packets, None)
            declared = parse_header(first) if isinstance(first, dict) else None
            if width is not None and height is not None:
                declared = sensor_size(width, height)
            if declared is None:
                raise StreamError("bad_header", "give the sensor's width and height as query parameters "
                                                "(or, for NDJSON, as a first header line)")
            live.start(*declared)
            outcome, received = None, time.perf_counter()
            pending = [] if first is None or isinstance(first, dict) else [first]
            async for events in _prepend(pending, packets):
                received = time.perf_counter()
                outcome = await live.feed(events)
                if outcome is not None:
                    break
            if outcome is None:
                outcome = await live.end()
        return _answer(service, loaded, live.session, outcome, request.state.request_id,
                       time.perf_counter() - received)


def _upload_error(service: ServiceState, loaded: LoadedModel, error: StreamError) -> ApiError:
    headers = {}
    if error.status == 503:
        headers["Retry-After"] = "1"
    if error.code in ("idle_timeout", "stream_timeout"):
        # a body too slow to arrive (counted with /classify's) or a stream past its wall-clock
        # cap: the connection is closed rather than left to read whatever the client still sends
        reason = "body_timeout" if error.code == "idle_timeout" else "stream_timeout"
        service.metrics.rejections.labels(loaded.name, str(loaded.version), ENDPOINT, reason).inc()
        headers["Connection"] = "close"
    return ApiError(error.status, error.code, error.message, headers)


async def _prepend(items: list, rest):
    for item in items:
        yield item
    async for item in rest:
        yield item


async def _chunks(request: Request, live: _Session):
    async for chunk in request.stream():
        if chunk:
            live.charge(len(chunk))
            yield chunk


async def _each_within(packets, seconds: float):
    """``packets``, each of which must arrive within ``seconds`` of the one before (of the start,
    for the first). A whole packet counts, not any byte: a record (binary) or a line (NDJSON), as
    a whole message does on the WebSocket, so a client cannot keep a session by trickling bytes."""
    while True:
        try:
            packet = await asyncio.wait_for(anext(packets), seconds)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise StreamError("idle_timeout", f"no whole packet for {seconds:g} s", 408) from None
        yield packet


async def _binary_packets(chunks):
    pending = b""
    async for chunk in chunks:
        pending += chunk
        whole = len(pending) - len(pending) % RECORD_BYTES
        if whole:
            yield parse_binary_packet(pending[:whole])
            pending = pending[whole:]
    if pending:
        raise StreamError("partial_record", f"the body ends inside a record ({len(pending)} stray bytes)")


async def _ndjson_packets(chunks, limits: StreamLimits):
    """The header line (as a dict) if the body starts with one, then the events of each packet
    line, up to an optional ``{"type": "end"}``."""
    pending = b""
    first = True
    async for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if len(pending) > limits.max_message_bytes:
            raise StreamError("message_too_large", f"an NDJSON line may hold at most {limits.max_message_bytes} bytes", 413)
        for line in lines:
            if not line.strip():
                continue
            try:
                payload = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                raise StreamError("bad_packet", "every NDJSON line must be a JSON object") from None
            if first and isinstance(payload, dict) and "format" in payload:
                first = False
                yield payload
                continue
            first = False
            if isinstance(payload, dict) and payload.get("type") == "end":
                return
            yield parse_json_packet(payload)
    if pending.strip():
        raise StreamError("bad_packet", "the NDJSON body ends inside a line")
