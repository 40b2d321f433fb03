"""What every inference request passes through, whatever its API (``/classify``, OIP infer):
refusal while draining, the cap on requests in progress, the in-flight gauge, the request
timeout, and the 503 / 504 a client gets instead, each refusal counted by reason."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from service.batching import QueueFull
from service.dependencies import ServiceState
from service.errors import ApiError
from service.registry import LoadedModel

T = TypeVar("T")


def refuse_while_draining(service: ServiceState, loaded: LoadedModel, endpoint: str) -> None:
    """Checked on arrival: a request already uploading when SIGTERM came finishes."""
    if service.draining:
        _count(service, loaded, endpoint, "draining")
        raise ApiError(503, "draining", "the server is shutting down; retry on another instance", {"Retry-After": "1"})


async def run_admitted(service: ServiceState, loaded: LoadedModel, endpoint: str, work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` if a slot is free, within the request timeout."""
    settings = service.settings
    if service.inflight >= settings.max_concurrency:
        work.close()  # never started
        _count(service, loaded, endpoint, "overloaded")
        raise ApiError(503, "overloaded", "too many requests in progress; retry shortly", {"Retry-After": "1"})
    service.inflight += 1
    gauge = service.metrics.inflight.labels(endpoint)
    gauge.inc()
    try:
        return await asyncio.wait_for(work, settings.request_timeout_s)
    except QueueFull:
        _count(service, loaded, endpoint, "queue_full")
        raise ApiError(503, "overloaded", f"the queue of {loaded.name}/{loaded.version} is full; retry shortly",
                       {"Retry-After": "1"}) from None
    except asyncio.TimeoutError:
        _count(service, loaded, endpoint, "timeout")
        raise ApiError(504, "timeout", f"no decision within {settings.request_timeout_s:g} s") from None
    finally:
        service.inflight -= 1
        gauge.dec()


def _count(service: ServiceState, loaded: LoadedModel, endpoint: str, reason: str) -> None:
    service.metrics.rejections.labels(loaded.name, str(loaded.version), endpoint, reason).inc()
