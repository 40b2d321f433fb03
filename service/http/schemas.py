"""Response bodies, as in DESIGN.md."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ModelRef(BaseModel):
    name: str = Field(description="model name in the store")
    version: int = Field(description="its version number")


class Spikes(BaseModel):
    total: int = Field(description="all spikes emitted over the timesteps run, output layer included")
    per_layer: list[int] = Field(description="per spiking layer (encoder, hidden layers)")
    output: list[int] = Field(description="per output neuron (class)")


class Energy(BaseModel):
    synaptic_ops: float = Field(description="accumulate operations driven by spikes, eq (16)")
    macs: float = Field(description="multiply-accumulates of the analog first layer")
    joules: float = Field(description="E_MAC * macs + E_AC * synaptic_ops")


class Classification(BaseModel):
    request_id: str = Field(description="also in the X-Request-ID header and the request's log line")
    model: ModelRef = Field(description="the model version that answered")
    class_index: int = Field(
        description="the decided class: the first output neuron to fire, ties broken by "
        "membrane potential, eqs (10)-(11)"
    )
    label: str = Field(description='the class\'s name from the manifest ("7", "Sneaker")')
    decision_timestep: int = Field(description="1-based timestep of the first output spike (or T)")
    max_timesteps: int = Field(description="T, the most timesteps the model runs")
    timesteps_run: int = Field(description="timesteps computed: decision_timestep with early exit, T without")
    exit_reason: str = Field(description="first_spike, or no_spike when nothing fired by T")
    spikes: Spikes = Field(description="spikes over the timesteps run")
    energy: Energy = Field(description="estimated energy of the timesteps run, eqs (15)-(16)")
    scores: list[float] = Field(description="output membrane potentials at the decision timestep")
    latency_ms: float = Field(description="wall time from input received to decision")
    output_raster: list[list[int]] | None = Field(
        None,
        description="per timestep run (1 to timesteps_run), the indices of the output neurons that fired "
        "at that timestep: the output layer's spike raster up to the decision",
    )


class StreamClassification(Classification):
    events_received: int = Field(description="events the server read before it decided (or the stream ended)")
    events_used: int = Field(description="events in the timesteps the network ran before deciding")


class ErrorBody(BaseModel):
    error: str = Field(description="what went wrong, for people")
    code: str = Field(
        description="a stable identifier, for programs (bad_image, unknown_model, overloaded, ...)"
    )
    request_id: str = Field(description="as in the X-Request-ID header")


class Health(BaseModel):
    status: str
    detail: dict[str, Any] | None = None


class OipServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class OipTensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 marks the batch dimension")


class OipModelMetadata(BaseModel):
    name: str
    versions: list[str] = Field(description="the loaded versions")
    platform: str
    inputs: list[OipTensorMetadata] = Field(description="send exactly one of these")
    outputs: list[OipTensorMetadata]


class OipModelReady(BaseModel):
    name: str
    version: str
    ready: bool


class ModelSummary(BaseModel):
    name: str
    versions: list[int] = Field(description="the loaded versions, ascending")
    default_version: int = Field(description="the version served when a request names none: the highest")
    kind: str = Field(description="image or events (the default version's)")
    timesteps: int = Field(description="T of the default version")
    labels: list[str] = Field(description="class names of the default version")
    runtime: str = Field(description="the default version's runtime, torch or onnx")
    runtimes: dict[str, str] = Field(
        description="each version's own runtime (under auto, versions may differ)"
    )


class ModelList(BaseModel):
    models: list[ModelSummary]
    errors: dict[str, str] = Field(description='refused models and versions ("name/version") and why')
    ready: bool = Field(description="every default model has a loaded version")


class ModelDetail(ModelSummary):
    manifests: dict[str, dict[str, Any]] = Field(description="each loaded version's manifest, as stored")


class ReloadAnswer(BaseModel):
    model: str
    versions: list[int] = Field(description="the versions served after the reload")
    default_version: int | None = Field(description="the highest of them; null when none is left")
    loaded: list[int] = Field(description="versions loaded anew (new or changed in the store)")
    unloaded: list[int] = Field(description="versions no longer served")
