"""What every inference request passes through, whatever its API (``/classify``, OIP infer, a
stream): refusal while draining, a concurrency slot taken before its body is read, the
in-flight gauge, the request timeout, and the domain error a client gets instead, each refusal
counted by reason.

A request's slot is held from before its body is read until the work has really ended: bodies
in memory are bounded by ``max_concurrency`` x ``max_body_bytes``, and a request that timed out
still holds its slot until its thread stops (at the next deadline check, see
``service.inference.work``). Stream sessions have slots of their own (``max_streams``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TypeVar

from service.inference.batching import BatcherClosed, QueueFull
from service.inference.errors import Draining, Overloaded, TimedOut
from service.inference.registry import LoadedModel
from service.inference.state import ServiceState
from service.inference.work import Deadline, DeadlineExceeded

T = TypeVar("T")


def refuse_while_draining(service: ServiceState, loaded: LoadedModel, endpoint: str) -> None:
    """Checked on arrival: a request already uploading when SIGTERM came finishes.

    Args:
        service: the app's state.
        loaded: the model version the request is for (a label of the rejection counter).
        endpoint: the endpoint label.

    Raises:
        Draining: the server is shutting down (counted as a ``draining`` rejection).
    """
    if service.draining:
        count_rejection(service, loaded, endpoint, "draining")
        raise Draining("the server is shutting down; retry on another instance")


@asynccontextmanager
async def admitted(service: ServiceState, loaded: LoadedModel, endpoint: str) -> AsyncIterator[None]:
    """One of ``max_concurrency`` request slots for the block (body, decoding and inference).

    Args:
        service: the app's state.
        loaded: the model version the request is for.
        endpoint: the endpoint label of the gauge and the rejection counter.

    Raises:
        Draining: the server is shutting down.
        Overloaded: every slot is taken.
    """
    refuse_while_draining(service, loaded, endpoint)
    if service.inflight >= service.settings.max_concurrency:
        count_rejection(service, loaded, endpoint, "overloaded")
        raise Overloaded("too many requests in progress; retry shortly")
    service.inflight += 1  # no await between the check and this: one event loop, no race
    gauge = service.metrics.inflight.labels(endpoint)
    gauge.inc()
    try:
        yield
    finally:
        service.inflight -= 1
        gauge.dec()


@contextmanager
def stream_slot(service: ServiceState, loaded: LoadedModel, endpoint: str) -> Iterator[None]:
    """One of the ``max_streams`` stream slots for the block, however it exits.

    Taken on admission, before the stream's header is read, so that a client that connects and
    stays silent holds one too; counted in ``firstspike_stream_sessions_active`` meanwhile.

    Args:
        service: the app's state.
        loaded: the model version the stream is for.
        endpoint: the endpoint label of the rejection counter.

    Raises:
        Draining: the server is shutting down.
        Overloaded: every stream slot is taken.
    """
    refuse_while_draining(service, loaded, endpoint)
    limit = service.settings.max_streams
    if service.streams >= limit:
        count_rejection(service, loaded, endpoint, "streams_full")
        raise Overloaded(f"{limit} stream sessions are open, the most this server takes; retry shortly")
    service.streams += 1  # no await between the check and this: one event loop, no race
    gauge = service.metrics.stream_sessions.labels(loaded.name, str(loaded.version))
    gauge.inc()
    try:
        yield
    finally:
        service.streams -= 1
        gauge.dec()


async def within_deadline(
    service: ServiceState, loaded: LoadedModel, endpoint: str, work: Callable[[Deadline], Awaitable[T]]
) -> T:
    """``work(deadline)`` within the request timeout.

    On expiry the work is cancelled, which returns once its thread has stopped
    (``WorkPool.run``).

    Args:
        service: the app's state.
        loaded: the model version the work is for.
        endpoint: the endpoint label of the rejection counter.
        work: the request's work, given the deadline to check between its costly steps.

    Returns:
        What ``work`` returned.

    Raises:
        Overloaded: the batcher's queue is full.
        Draining: the batcher stopped under the request.
        TimedOut: no result within ``request_timeout_s``.
    """
    seconds = service.settings.request_timeout_s
    try:
        return await asyncio.wait_for(work(Deadline.after(seconds)), seconds)
    except QueueFull:
        count_rejection(service, loaded, endpoint, "queue_full")
        raise Overloaded(f"the queue of {loaded.name}/{loaded.version} is full; retry shortly") from None
    except BatcherClosed:
        count_rejection(service, loaded, endpoint, "draining")
        raise Draining("the server is shutting down; retry on another instance") from None
    except (asyncio.TimeoutError, DeadlineExceeded):
        count_rejection(service, loaded, endpoint, "timeout")
        raise TimedOut(f"no decision within {seconds:g} s") from None


def count_rejection(service: ServiceState, loaded: LoadedModel, endpoint: str, reason: str) -> None:
    """Count one refused request in ``firstspike_rejections_total``.

    Args:
        service: the app's state.
        loaded: the model version the request was for.
        endpoint: the endpoint label.
        reason: why it was refused (``overloaded``, ``timeout``, ...).
    """
    service.metrics.rejections.labels(loaded.name, str(loaded.version), endpoint, reason).inc()
