"""Per-request plumbing as one pure ASGI middleware: request id, body size and time limits,
request metrics and one structured log line per request."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Collection
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.http.errors import ApiError
from service.metrics import Metrics

access_log = logging.getLogger("firstspike.access")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _endpoint(scope: Scope) -> str:
    """The route template (``/models/{name}``), never the raw path, to bound label values."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestContextMiddleware:
    """Request id, body limits, request metrics and the log line, for every HTTP request."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        max_body_bytes: int,
        body_timeout_s: float | None = None,
        log_requests: bool = True,
        stream_paths: Collection[str] = frozenset(),
    ) -> None:
        """Wrap ``app``.

        Args:
            app: the ASGI app.
            metrics: the app's metrics (requests, durations, body timeouts).
            max_body_bytes: larger bodies get 413.
            body_timeout_s: the whole body must arrive within this of the end of the headers;
                then 408. None for no limit.
            log_requests: one JSON line per request on the ``firstspike.access`` logger.
            stream_paths: paths exempt from the body limits: streams are bounded by their own
                event, duration and per-packet idle limits instead (a live upload is long by
                nature).
        """
        self.app = app
        self.stream_paths = stream_paths
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        given = headers.get("x-request-id", "")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
                status["code"] = message["status"]
            await send(message)

        stream = scope["path"] in self.stream_paths
        limit = float("inf") if stream else self.max_body_bytes
        timeout = None if stream else self.body_timeout_s
        deadline = started + timeout if timeout is not None else None
        received = 0
        body_done = False

        async def limited_receive() -> Message:
            """The body, within ``max_body_bytes`` and, all of it, within ``body_timeout_s`` of the
            end of the headers. Once it is complete, receive() is left alone (it then only waits
            for the client to disconnect)."""
            nonlocal received, body_done
            if deadline is None or body_done:
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), max(0.0, deadline - time.perf_counter()))
                except asyncio.TimeoutError:
                    self.metrics.rejections.labels(
                        state.get("model", ""),
                        str(state.get("version", "")),
                        _endpoint(scope),
                        "body_timeout",
                    ).inc()
                    # Connection: close, so uvicorn does not go on reading what still trickles in
                    raise ApiError(
                        408,
                        "body_timeout",
                        f"the request body did not arrive within {timeout:g} s",
                        {"Connection": "close"},
                    ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise ApiError(413, "payload_too_large", f"request body exceeds {limit} bytes")
                body_done = not message.get("more_body", False)
            else:
                body_done = True  # http.disconnect
            return message

        declared = headers.get("content-length")
        try:
            if declared is not None and declared.isdigit() and int(declared) > limit:
                # Refused before a byte of the body is read.
                state["error_code"] = "payload_too_large"
                body = {
                    "error": f"request body exceeds {limit} bytes",
                    "code": "payload_too_large",
                    "request_id": request_id,
                }
                await JSONResponse(body, status_code=413)(scope, receive, send_with_id)
                return
            await self.app(scope, limited_receive, send_with_id)
        finally:
            self._record(scope, state, status["code"], time.perf_counter() - started, request_id)

    def _record(
        self, scope: Scope, state: dict[str, Any], status: int, seconds: float, request_id: str
    ) -> None:
        """Count the request and write its log line."""
        # a route may name its own endpoint label (several paths, one label)
        endpoint = state.get("endpoint") or _endpoint(scope)
        model, version = state.get("model", ""), str(state.get("version", ""))
        self.metrics.requests.labels(endpoint, str(status), model, version).inc()
        self.metrics.request_duration.labels(endpoint, model, version).observe(seconds)
        if self.log_requests:
            # pid: which server process answered, with ``firstspike serve --workers N``
            line = {
                "request_id": request_id,
                "method": scope["method"],
                "path": scope["path"],
                "endpoint": endpoint,
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "pid": os.getpid(),
                **state.get("log", {}),
            }
            if "error_code" in state:
                line["error_code"] = state["error_code"]
            access_log.info(json.dumps(line))
