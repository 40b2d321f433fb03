"""Service configuration from ``FIRSTSPIKE_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from training.contract.images.decode import ImageLimits

MIN_API_KEY_LENGTH = 16
MAX_DEFAULT_WORK_THREADS = 4


class Settings(BaseSettings):
    """The service's settings, each from its ``FIRSTSPIKE_<NAME>`` variable or its default."""

    model_config = SettingsConfigDict(env_prefix="FIRSTSPIKE_", protected_namespaces=())

    model_store: Path = Field(default=Path("model_store"), description="model store root")
    # Models loaded at start-up (every version; the highest answers by default), comma-separated
    # in the environment. Empty means every model in the store.
    default_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated names of the models to load, every version of each "
        "(the highest answers by default); empty: every model in the store",
    )
    runtime: Literal["auto", "torch", "onnx"] = Field(
        default="auto",
        description="`auto`: per version, `onnx` where the version has its ONNX graphs and "
        "onnxruntime imports, else `torch`; or `torch` (needs firstspike[torch]) or `onnx` "
        "(numpy and onnxruntime only; needs the ONNX graphs) for every version. GET /models says "
        "which runs each version",
    )
    # `firstspike serve` runs this many server processes on one port, each with its own models,
    # batchers and limits; /metrics sums them (prometheus_client multiprocess mode).
    workers: int = Field(
        default=1,
        ge=1,
        description="server processes on one port (`firstspike serve --workers N`), "
        "each with its own models; /metrics aggregates them",
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        description="intra-op threads per runtime; unset: all cores with "
        "batching (divided between the workers), 1 without (requests then run side by side)",
    )
    # Per-timestep dynamic batching: concurrent requests to one model version step together.
    max_batch_size: int = Field(
        default=32, ge=1, description="rows stepped together per model version; 1 turns batching off"
    )
    max_batch_delay_ms: float = Field(
        default=0.0, ge=0, description="when idle, wait this long for more requests before the first step"
    )
    warmup_rounds: int = Field(default=2, ge=0, description="full T-step passes per model before ready")

    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, description="larger bodies get 413")
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="longest a request body may take to arrive, "
        "from the end of its headers; then 408 and the connection is closed",
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="longest a request's headers may take to "
        "arrive (firstspike serve); then 408 and the connection is closed",
    )
    max_image_pixels: int = Field(
        default=4096 * 4096,
        ge=64,
        description="width x height of an image, read from its header before decoding; larger images get 413",
    )
    max_image_side: int = Field(
        default=8192, ge=8, description="longest side of an image, from its header; longer get 413"
    )
    max_image_aspect_ratio: float = Field(
        default=32.0,
        ge=1,
        description="longer side over shorter side of an image; more elongated images get 400",
    )
    max_request_pixels: int = Field(
        default=4 * 4096 * 4096,
        ge=64,
        description="pixels of all the images of one "
        "request together (an OIP batch), summed from their headers before any is "
        "decoded; more get 413",
    )
    max_request_rows: int = Field(
        default=64,
        ge=1,
        description="rows of one OIP infer request (at most "
        "FIRSTSPIKE_MAX_QUEUE); more get 413, so that one request cannot fill a queue",
    )
    work_threads: int | None = Field(
        default=None,
        ge=1,
        description="threads that decode images and run inference "
        "outside the batcher; each holds one decoded image at most, so they bound the "
        "memory decoding takes. Unset: the cores per worker, at most 4",
    )
    max_concurrency: int = Field(
        default=64,
        ge=1,
        description="requests in progress at once, from before their body "
        "is read to their answer; more get 503",
    )
    max_queue: int = Field(
        default=256, ge=1, description="requests waiting per model version (with batching); more get 503"
    )
    request_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="longest decoding and inference per request; then the work stops and the answer is 504",
    )
    shutdown_grace_s: float = Field(
        default=30.0, ge=0, description="after the listener closes, time for requests in flight to finish"
    )
    drain_delay_s: float = Field(
        default=0.0,
        ge=0,
        description="after SIGTERM, keep answering (503 for readiness "
        "and new work) this long before closing the listener",
    )
    # Event streams (/classify/stream)
    stream_max_events: int = Field(default=1_000_000, ge=1, description="events per stream; more is an error")
    stream_max_duration_s: float = Field(default=60.0, gt=0, description="event-time span of one stream")
    stream_idle_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="longest wait for the next whole packet (a "
        "WebSocket message; whole records or an NDJSON line in a POST body, so "
        "trickled bytes do not count); then idle_timeout (408 for POST)",
    )
    stream_max_seconds: float = Field(
        default=90.0,
        gt=0,
        description="wall-clock time one stream session may "
        "last, from its admission; then stream_timeout (408 for POST)",
    )
    stream_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="bytes one stream session may send, "
        "each packet counted with 256 bytes more, so that empty packets count too; more "
        "is an error (413 for POST)",
    )
    stream_max_message_bytes: int = Field(
        default=1024 * 1024,
        ge=16,
        description="one WebSocket message or NDJSON line (also the WebSocket protocol's own message limit)",
    )
    max_streams: int = Field(
        default=64, ge=1, description="stream sessions open at once (WebSocket and POST); more get 503 / 1013"
    )
    # Bearer token for the admin endpoints (POST /models/{name}/reload).
    api_key: str | None = Field(
        default=None,
        description="admin endpoints need `Authorization: Bearer <key>` (401 "
        f"without); at least {MIN_API_KEY_LENGTH} characters; unset or empty disables them "
        "(403)",
    )
    log_requests: bool = Field(default=True, description="one JSON log line per request on stderr")

    @property
    def pool_threads(self) -> int:
        """``work_threads``, or the cores per server process, at most MAX_DEFAULT_WORK_THREADS: more
        threads than cores add no throughput, only decoded images held at once."""
        if self.work_threads is not None:
            return self.work_threads
        return max(1, min(MAX_DEFAULT_WORK_THREADS, (os.cpu_count() or 1) // self.workers))

    @property
    def request_rows(self) -> int:
        """The most rows one OIP request may carry."""
        return min(self.max_request_rows, self.max_queue)

    @property
    def image_limits(self) -> ImageLimits:
        """The image limits (``max_image_pixels``, ``max_image_side``, ``max_image_aspect_ratio``)."""
        return ImageLimits(self.max_image_pixels, self.max_image_side, self.max_image_aspect_ratio)

    @property
    def intra_op_threads(self) -> int:
        """With batching, one thread steps each model's batch, so its kernels get every core (shared
        out between the server processes when there are several); without, concurrent requests run
        side by side, one core each."""
        if self.threads is not None:
            return self.threads
        return max(1, (os.cpu_count() or 1) // self.workers) if self.max_batch_size > 1 else 1

    def to_environment(self) -> dict[str, str | None]:
        """These settings as the ``FIRSTSPIKE_*`` variables that make ``Settings()`` equal to them
        (``None``: leave the variable unset), for processes that build their own settings."""
        environment: dict[str, str | None] = {}
        for name, value in self.model_dump(mode="json").items():
            if isinstance(value, list):
                value = ",".join(value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            environment[f"FIRSTSPIKE_{name.upper()}"] = None if value is None else str(value)
        return environment

    @field_validator("api_key")
    @classmethod
    def _long_enough(cls, value: str | None) -> str | None:
        if value and len(value) < MIN_API_KEY_LENGTH:
            raise ValueError(
                f"FIRSTSPIKE_API_KEY must have at least {MIN_API_KEY_LENGTH} characters (e.g. "
                "`openssl rand -hex 32`), or be empty to disable the admin endpoints"
            )
        return value or None

    @field_validator("default_models", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value
