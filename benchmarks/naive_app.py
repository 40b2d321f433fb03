"""The baseline a user would write without firstspike: a plain FastAPI endpoint that runs all T
timesteps of the torch network in one call and takes the time-mean output. Benchmark use only.

    NAIVE_MODEL_DIR=model_store/digits/1 uvicorn --factory benchmarks.naive_app:create_app
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from fastapi import Body, FastAPI

from service.inference.preprocessing import ImageLimits, InputSpec, preprocess
from training.store.load import load_network


def create_app() -> FastAPI:
    """The app, serving the version folder named by ``NAIVE_MODEL_DIR``."""
    network, manifest = load_network(Path(os.environ["NAIVE_MODEL_DIR"]))
    spec = InputSpec.from_manifest(manifest)
    app = FastAPI()

    @app.get("/health/ready")
    def ready() -> dict[str, Any]:
        return {"status": "ready"}

    @app.post("/classify")
    def classify(image: bytes = Body(..., media_type="image/png")) -> dict[str, Any]:
        pixels = torch.from_numpy(preprocess(image, spec, ImageLimits())).unsqueeze(0)
        with torch.no_grad():
            output = network(pixels)
        return {"class_index": int(output.current.mean(dim=0).argmax(dim=1)[0])}

    return app
