"""The ASGI app: ``create_app()`` builds one; ``app`` is the one ``uvicorn service.app:app`` runs.

Models load in the background after start-up, so the process answers liveness at once and
readiness turns 200 only when the default models are loaded and warmed up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from service.http.errors import install_error_handlers
from service.http.middleware import RequestContextMiddleware
from service.http.routes import classify, demo, health, models, oip, streams
from service.http.routes import metrics as metrics_routes
from service.inference.registry import ModelRegistry
from service.inference.state import ServiceState
from service.inference.work import WorkPool
from service.metrics import Metrics
from service.settings import Settings
from training import __version__
from training.contract.images.decode import configure_pillow

log = logging.getLogger("firstspike.service")


def _log_to_stderr() -> None:
    """One JSON line per request on stderr, whoever started the process (uvicorn, firstspike
    serve, a test): attach a plain handler once unless the host application configured one."""
    logger = logging.getLogger("firstspike")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def create_app(settings: Settings | None = None) -> FastAPI:
    """One app with its own state: models (loaded in the background once it starts), metrics,
    limits and work pool.

    Args:
        settings: the service's settings; by default from the ``FIRSTSPIKE_*`` variables.

    Returns:
        The app.
    """
    settings = settings or Settings()
    _log_to_stderr()
    configure_pillow(settings.max_image_pixels)
    metrics = Metrics()
    service = ServiceState(
        settings=settings,
        registry=ModelRegistry(settings, metrics),
        metrics=metrics,
        pool=WorkPool(settings.pool_threads),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.loader = asyncio.create_task(asyncio.to_thread(_load, service))
        try:
            yield
        finally:
            service.draining = True
            if not service.loader.done():
                await asyncio.wait([service.loader], timeout=30)
            await service.registry.close()
            service.pool.shutdown()

    app = FastAPI(
        title="firstspike",
        summary="Early-exit inference for latency-coded spiking neural networks",
        version=__version__,
        lifespan=lifespan,
    )
    app.state.service = service
    # FastAPI's documented way to change the schema is to replace this method, which mypy refuses
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    install_error_handlers(app)
    for router in (
        classify.router,
        streams.router,
        health.router,
        models.router,
        oip.router,
        metrics_routes.router,
        demo.router,
    ):
        app.include_router(router)
    # The demo page's CSS and JavaScript (package data: works offline and in the slim install).
    app.mount("/static", StaticFiles(directory=demo.STATIC), name="static")
    # Streams are bounded by their own event, duration and idle limits, not by the body's size and time.
    app.add_middleware(
        RequestContextMiddleware,
        metrics=service.metrics,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.body_timeout_s,
        log_requests=settings.log_requests,
        stream_paths={"/classify/stream"},
    )
    return app


def _load(service: ServiceState) -> None:
    """Load the default models (on a thread) and log what is served once ready."""
    service.registry.load_all()
    if service.registry.ready:
        log.info("ready: %s", {name: sorted(v) for name, v in service.registry.models.items()})


app = create_app()


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents request validation failures as 422 HTTPValidationError; this service
    answers them with 400 and its one error body, so the schema says that instead."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        error_ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
        for operations in schema["paths"].values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                validation = responses.get("422", {}).get("content", {}).get("application/json", {})
                if validation.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                    del responses["422"]
                    responses.setdefault("400", {"description": "Bad request", **error_ref})
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema
