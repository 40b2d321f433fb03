"""What route handlers receive through FastAPI's dependency injection."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from fastapi import Request

from service.metrics import Metrics
from service.inference.registry import ModelRegistry
from service.settings import Settings
from service.inference.work import WorkPool


@dataclass
class ServiceState:
    """Everything one app instance owns. Nothing here is module-global: two apps in one
    process (as in the tests) each have their own models, metrics and limits."""

    settings: Settings
    registry: ModelRegistry
    metrics: Metrics
    pool: WorkPool  # decoding and unbatched inference (service.inference.work)
    draining: bool = False
    inflight: int = 0
    streams: int = 0  # stream sessions holding a slot now (WebSocket and POST, every model)
    loader: asyncio.Task | None = field(default=None, repr=False)


async def get_service(request: Request) -> ServiceState:
    # async on purpose: FastAPI runs plain-def dependencies in the thread pool, a needless hop.
    return request.app.state.service
