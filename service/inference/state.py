"""Everything one app instance owns, passed to routes through ``service.http.dependencies``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from service.inference.registry import ModelRegistry
from service.inference.work import WorkPool
from service.metrics import Metrics
from service.settings import Settings


@dataclass
class ServiceState:
    """One app's models, metrics, limits and counters. Nothing here is module-global: two apps
    in one process (as in the tests) each have their own.

    Attributes:
        settings: the service's settings.
        registry: the loaded models.
        metrics: the app's metrics.
        pool: threads for decoding and unbatched inference (``service.inference.work``).
        draining: the server is shutting down: new work is refused.
        inflight: requests holding a slot now.
        streams: stream sessions holding a slot now (WebSocket and POST, every model).
        loader: the task loading the default models at start-up.
    """

    settings: Settings
    registry: ModelRegistry
    metrics: Metrics
    pool: WorkPool
    draining: bool = False
    inflight: int = 0
    streams: int = 0
    loader: asyncio.Task[None] | None = field(default=None, repr=False)
