"""The demo page at ``/`` (static HTML, CSS and JavaScript shipped in the package, no build step,
nothing fetched from outside) and the example event streams it replays (``/examples/{model}``).

The page uses only the public API (``/models``, ``/classify``, ``/classify/stream``,
``/metrics``); the example streams are package data, so both work in the slim install too.
"""

from __future__ import annotations

import json
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse, Response

from service.http.errors import ApiError, error_responses
from training.contract.manifest import NAME_REGEX

STATIC = FilePath(__file__).parents[2] / "static"
EXAMPLES = STATIC / "examples"
DVS_EVENTS = "application/x-dvs-events"

router = APIRouter(tags=["demo"])


@router.get("/", include_in_schema=False)
async def demo_page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


ModelName = Annotated[str, Path(pattern=NAME_REGEX)]


def _index(model: str) -> dict[str, Any]:
    """The model's ``index.json`` of example streams (404 if it has none)."""
    path = EXAMPLES / model / "index.json"
    if not path.is_file():
        raise ApiError(404, "no_examples", f"no example streams for model {model!r}")
    index: dict[str, Any] = json.loads(path.read_text())
    return index


@router.get("/examples/{model}", summary="Example event streams of a model", responses=error_responses(404))
async def list_examples(model: ModelName) -> dict[str, Any]:
    """Example ``dvs-events/1`` streams for an event model (the demo page replays them over
    ``/classify/stream``): sensor size, and per stream its label, event count, duration and URL."""
    index = _index(model)
    return {
        "model": model,
        "format": index["format"],
        "width": index["width"],
        "height": index["height"],
        "source": index["source"],
        "streams": [
            {**entry, "url": f"/examples/{model}/{number}"} for number, entry in enumerate(index["streams"])
        ],
    }


@router.get(
    "/examples/{model}/{number}",
    summary="One example event stream",
    responses={200: {"content": {DVS_EVENTS: {}}}, **error_responses(404)},
)
async def get_example(model: ModelName, number: Annotated[int, Path(ge=0)]) -> Response:
    # The docstring is the OpenAPI description: one line, continued with a backslash to fit
    """One example stream: 16-byte little-endian records (int64 t, uint16 x, uint16 y, uint8 p, \
3 zero bytes)."""
    streams = _index(model)["streams"]
    if number >= len(streams):
        raise ApiError(404, "no_examples", f"model {model!r} has {len(streams)} example streams")
    return Response((EXAMPLES / model / streams[number]["file"]).read_bytes(), media_type=DVS_EVENTS)
