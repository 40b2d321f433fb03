"""Service configuration from ``FIRSTSPIKE_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FIRSTSPIKE_", protected_namespaces=())

    model_store: Path = Path("model_store")
    # Models loaded at start-up (their highest version); empty means every model in the store.
    default_models: list[str] = Field(default_factory=list)
    runtime: Literal["torch"] = "torch"
    threads: int = Field(default=1, ge=1, description="intra-op threads per runtime")
    warmup_rounds: int = Field(default=2, ge=0, description="full T-step passes per model before ready")

    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=4096 * 4096, ge=64, description="width x height of a decoded image")
    max_concurrency: int = Field(default=64, ge=1, description="requests classified at once; more get 503")

    api_key: str | None = None
    log_requests: bool = True
