"""What every inference request passes through, whatever its API (``/classify``, OIP infer):
refusal while draining, a concurrency slot taken before its body is read, the in-flight gauge,
the request timeout, and the 503 / 504 a client gets instead, each refusal counted by reason.

The slot is held from before the body is read until the work has really ended: bodies in memory
are bounded by ``max_concurrency`` x ``max_body_bytes``, and a request that timed out still
holds its slot until its thread stops (at the next deadline check, see ``service.inference.work``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from service.inference.batching import BatcherClosed, QueueFull
from service.http.dependencies import ServiceState
from service.http.errors import ApiError
from service.inference.registry import LoadedModel
from service.inference.work import Deadline, DeadlineExceeded

T = TypeVar("T")


def refuse_while_draining(service: ServiceState, loaded: LoadedModel, endpoint: str) -> None:
    """Checked on arrival: a request already uploading when SIGTERM came finishes."""
    if service.draining:
        count_rejection(service, loaded, endpoint, "draining")
        raise ApiError(503, "draining", "the server is shutting down; retry on another instance", {"Retry-After": "1"})


@asynccontextmanager
async def admitted(service: ServiceState, loaded: LoadedModel, endpoint: str) -> AsyncIterator[None]:
    """One of ``max_concurrency`` slots for the block (body, decoding and inference), or 503."""
    refuse_while_draining(service, loaded, endpoint)
    if service.inflight >= service.settings.max_concurrency:
        count_rejection(service, loaded, endpoint, "overloaded")
        raise ApiError(503, "overloaded", "too many requests in progress; retry shortly", {"Retry-After": "1"})
    service.inflight += 1  # no await between the check and this: one event loop, no race
    gauge = service.metrics.inflight.labels(endpoint)
    gauge.inc()
    try:
        yield
    finally:
        service.inflight -= 1
        gauge.dec()


async def within_deadline(service: ServiceState, loaded: LoadedModel, endpoint: str,
                          work: Callable[[Deadline], Awaitable[T]]) -> T:
    """``work(deadline)`` within the request timeout. On expiry the work is cancelled, which
    returns once its thread has stopped (``WorkPool.run``); then the client gets 504."""
    seconds = service.settings.request_timeout_s
    try:
        return await asyncio.wait_for(work(Deadline.after(seconds)), seconds)
    except QueueFull:
        count_rejection(service, loaded, endpoint, "queue_full")
        raise ApiError(503, "overloaded", f"the queue of {loaded.name}/{loaded.version} is full; retry shortly",
                       {"Retry-After": "1"}) from None
    except BatcherClosed:  # the server is stopping under the request
        count_rejection(service, loaded, endpoint, "draining")
        raise ApiError(503, "draining", "the server is shutting down; retry on another instance",
                       {"Retry-After": "1"}) from None
    except (asyncio.TimeoutError, DeadlineExceeded):
        count_rejection(service, loaded, endpoint, "timeout")
        raise ApiError(504, "timeout", f"no decision within {seconds:g} s") from None


def count_rejection(service: ServiceState, loaded: LoadedModel, endpoint: str, reason: str) -> None:
    service.metrics.rejections.labels(loaded.name, str(loaded.version), endpoint, reason).inc()
