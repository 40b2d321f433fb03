"""The decision as the API returns it, and the per-decision metrics, for images and streams."""

from __future__ import annotations

from service.http.schemas import Classification, Energy, ModelRef, Spikes
from service.inference.early_exit import Outcome
from service.inference.energy import request_energy
from service.inference.registry import LoadedModel
from service.metrics import Metrics


def build_answer(request_id: str, loaded: LoadedModel, outcome: Outcome, seconds: float) -> Classification:
    """The API's answer for one decision.

    Args:
        request_id: the request's id.
        loaded: the version that decided.
        outcome: the decision.
        seconds: from input received to decision.

    Returns:
        The answer.
    """
    per_layer = [int(round(v)) for v in outcome.layer_spikes]
    energy = request_energy(loaded.manifest, outcome)
    return Classification(
        request_id=request_id,
        model=ModelRef(name=loaded.name, version=loaded.version),
        class_index=outcome.class_index,
        label=loaded.manifest.labels[outcome.class_index],
        decision_timestep=outcome.decision_timestep,
        max_timesteps=loaded.runtime.timesteps,
        timesteps_run=outcome.timesteps_run,
        exit_reason=outcome.exit_reason,
        spikes=Spikes(
            total=sum(per_layer) + sum(outcome.output_spikes),
            per_layer=per_layer,
            output=outcome.output_spikes,
        ),
        energy=Energy(synaptic_ops=energy.synaptic_ops, macs=energy.macs, joules=energy.joules),
        scores=outcome.scores,
        latency_ms=seconds * 1000,
        output_raster=outcome.output_raster,
    )


def observe_decision(
    metrics: Metrics, loaded: LoadedModel, answer: Classification, endpoint: str, seconds: float
) -> None:
    """Record one decision in the per-decision metrics.

    Args:
        metrics: the app's metrics.
        loaded: the version that decided.
        answer: the answer sent.
        endpoint: the endpoint label.
        seconds: from input received to decision.
    """
    labels = (loaded.name, str(loaded.version), endpoint)
    metrics.decision_timestep.labels(*labels).observe(answer.decision_timestep)
    metrics.decision_latency.labels(*labels).observe(seconds)
    metrics.exits.labels(*labels, answer.exit_reason).inc()
    metrics.spikes.labels(*labels).observe(answer.spikes.total)
    metrics.synaptic_ops.labels(*labels).observe(answer.energy.synaptic_ops)
    metrics.energy.labels(*labels).observe(answer.energy.joules)
