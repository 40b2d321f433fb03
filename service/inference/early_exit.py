"""The runtime-independent early-exit loop: step until the first output spike, eqs (10)-(11).

At every timestep a row that emits any output spike is decided; its class is the argmax of the
output membrane potentials at that step (before reset), which breaks ties between neurons firing
together. A row with no output spike by T takes the argmax at T (``no_spike``). Rate-coded
models and ANNs decide at T by the time-mean output current (``time_mean``).

A ``Batch`` holds rows that may have started at different timesteps. ``advance`` runs one step
for all of them and removes every row that is finished, so no work is ever spent on a decided
sample; ``join`` adds new rows at a timestep boundary. ``classify`` is the same loop for one
fixed batch. Spikes and synaptic activity are counted over the steps a row really ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

import numpy as np

from service.inference.runtimes.base import Runtime, StepResult

# Re-exported ("as"): callers of the loop import the outcomes from here as well.
from training.contract.decisions import FIRST_SPIKE as FIRST_SPIKE
from training.contract.decisions import NO_SPIKE as NO_SPIKE
from training.contract.decisions import TIME_MEAN as TIME_MEAN
from training.contract.manifest import Manifest


class Widths(NamedTuple):
    """Sizes of a model's per-row records, from its manifest.

    Attributes:
        classes: K, the output neurons.
        layers: L, the spiking layers.
        synapses: S, the synaptic layers driven per timestep.
    """

    classes: int
    layers: int
    synapses: int

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> Widths:
        """The widths of a version.

        Args:
            manifest: the version's manifest.

        Returns:
            Its classes, spiking layers and non-static synaptic layers.
        """
        layers = manifest.layers
        return cls(
            len(manifest.labels), len(layers.spiking), sum(1 for layer in layers.synaptic if not layer.static)
        )


@dataclass(frozen=True)
class Outcome:
    """One row's decision and what it took.

    Attributes:
        class_index: the decided class.
        decision_timestep: the 1-based timestep of the decision.
        exit_reason: ``first_spike``, ``no_spike`` or ``time_mean``.
        timesteps_run: ``decision_timestep`` with early exit, T without.
        scores: output membrane potentials at the decision timestep.
        output_spikes: per output neuron, over the timesteps run.
        layer_spikes: per spiking layer, over the timesteps run.
        synaptic_inputs: per synaptic layer, over the timesteps run.
        output_raster: per timestep run (1 to ``timesteps_run``), the output neurons that fired.
    """

    class_index: int
    decision_timestep: int
    exit_reason: str
    timesteps_run: int
    scores: list[float]
    output_spikes: list[int]
    layer_spikes: list[float]
    synaptic_inputs: list[float]
    output_raster: list[list[int]] = field(default_factory=list)


@dataclass
class RowRecords:
    """Per-row bookkeeping, one entry per row of the runtime's batch, in the same order.

    Attributes:
        ticket: [B] the caller's id for each row.
        early_exit: [B] bool, whether the row may stop at its decision.
        elapsed: [B] timesteps run so far.
        decided_at: [B] the decision timestep, 0 while undecided.
        class_index: [B] the decided class.
        scores: [B, K] output membrane potentials at the decision timestep.
        current_sum: [B, K] output current, summed only for time-mean decoding.
        layer_spikes: [B, L] spikes per spiking layer so far.
        synaptic_inputs: [B, S] input activity per synaptic layer so far.
        raster: [B, T, K] bool: output spikes per timestep (their counts sum it up).
    """

    ticket: np.ndarray
    early_exit: np.ndarray
    elapsed: np.ndarray
    decided_at: np.ndarray
    class_index: np.ndarray
    scores: np.ndarray
    current_sum: np.ndarray
    layer_spikes: np.ndarray
    synaptic_inputs: np.ndarray
    raster: np.ndarray

    @classmethod
    def fresh(cls, tickets: np.ndarray, early_exit: np.ndarray, widths: Widths, timesteps: int) -> RowRecords:
        """Records of new rows, nothing run yet.

        Args:
            tickets: [B] the caller's ids of the rows.
            early_exit: [B] bool, whether each row may stop at its decision.
            widths: the model's record sizes.
            timesteps: T.

        Returns:
            The rows' records.
        """
        n = len(tickets)

        def zeros(width: int) -> np.ndarray:
            return np.zeros((n, width), dtype=np.float64)

        return cls(
            tickets,
            early_exit,
            np.zeros(n, np.int64),
            np.zeros(n, np.int64),
            np.zeros(n, np.int64),
            zeros(widths.classes),
            zeros(widths.classes),
            zeros(widths.layers),
            zeros(widths.synapses),
            np.zeros((n, timesteps, widths.classes), bool),
        )

    def take(self, rows: np.ndarray) -> RowRecords:
        """Only ``rows``, in that order.

        Args:
            rows: indices of the rows to keep.

        Returns:
            Their records.
        """
        return RowRecords(*(getattr(self, f.name)[rows] for f in fields(self)))

    @staticmethod
    def concat(parts: list[RowRecords]) -> RowRecords:
        """Records stacked row-wise.

        Args:
            parts: the records, in order.

        Returns:
            One set of records with every row.
        """
        return RowRecords(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(RowRecords)))


@dataclass
class Batch:
    """Rows stepping together.

    Attributes:
        encoded: the rows as the runtime encoded them; None (with ``state``) while only
            ``first_decision`` has run.
        state: the rows' state, opaque to the loop.
        rows: the per-row records.
        pending: timestep 1 of new rows, already run by ``start`` (the runtime's fused first
            step); the next ``advance`` takes it instead of stepping.
        images: the inputs, kept after a decision-only first step: rows that go on run it again
            from them.
    """

    encoded: Any
    state: Any
    rows: RowRecords
    pending: StepResult | None = None
    images: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows.ticket)


def start(
    runtime: Runtime,
    images: np.ndarray,
    tickets: np.ndarray,
    early_exit: np.ndarray,
    widths: Widths,
    first_step: bool = True,
) -> Batch:
    """New inputs, encoded once each. With ``first_step`` their timestep 1 runs now, in the same
    runtime call (the next ``advance`` takes its result); without, they are put at rest, ready
    to step together with a running batch they join. Where the runtime ``decides_first`` and
    every row may exit early, that call writes no state (``Runtime.first_decision``).

    Args:
        runtime: the model version's runtime.
        images: float32 [B, C, H, W].
        tickets: [B] the caller's ids of the rows.
        early_exit: [B] bool, whether each row may stop at its decision.
        widths: the model's record sizes.
        first_step: run timestep 1 now.

    Returns:
        The new rows as a batch.
    """
    rows = RowRecords.fresh(tickets, early_exit, widths, runtime.timesteps)
    if first_step and runtime.decides_first and early_exit.all():
        return Batch(None, None, rows, pending=runtime.first_decision(images), images=images)
    if first_step:
        encoded, result = runtime.first_step(images)
        return Batch(encoded, result.state, rows, pending=result)
    return Batch(runtime.encode(images), runtime.initial_state(len(images)), rows)


def join(runtime: Runtime, batch: Batch | None, newcomer: Batch) -> Batch:
    """Add rows at rest to a running batch, at a timestep boundary.

    Args:
        runtime: the model version's runtime.
        batch: the running batch, or None.
        newcomer: the new rows, made by ``start`` without ``first_step``.

    Returns:
        One batch with the running rows, then the new ones.

    Raises:
        ValueError: either batch holds a timestep 1 not yet taken by ``advance``.
    """
    if batch is None:
        return newcomer
    if batch.pending is not None or newcomer.pending is not None:
        raise ValueError("rows that have run timestep 1 cannot join a batch that has not stepped")
    encoded, state = runtime.merge([(batch.encoded, batch.state), (newcomer.encoded, newcomer.state)])
    return Batch(encoded, state, RowRecords.concat([batch.rows, newcomer.rows]))


def advance(
    runtime: Runtime, batch: Batch, decoding: str = FIRST_SPIKE
) -> tuple[Batch | None, list[tuple[int, Outcome]]]:
    """One timestep for every row, eqs (10)-(11): a row decides at its first output spike, or at T.

    Args:
        runtime: the model version's runtime.
        batch: the rows; their records are updated in place.
        decoding: ``first_spike``, or ``time_mean`` for rate-coded models and ANNs.

    Returns:
        The remaining batch (None if empty) and the finished rows' (ticket, outcome).
    """
    rows = batch.rows
    timesteps = runtime.timesteps
    rows.elapsed += 1
    result = (
        batch.pending if batch.pending is not None else runtime.step(batch.encoded, rows.elapsed, batch.state)
    )
    rows.layer_spikes += result.layer_spikes
    rows.synaptic_inputs += result.synaptic_inputs
    output_spikes = result.spikes > 0
    rows.raster[np.arange(len(rows.elapsed)), rows.elapsed - 1] = output_spikes
    undecided = rows.decided_at == 0
    at_end = rows.elapsed == timesteps
    if decoding == FIRST_SPIKE:
        deciding = undecided & (output_spikes.any(axis=1) | at_end)
        rows.class_index = np.where(deciding, result.membrane.argmax(axis=1), rows.class_index)
    else:
        rows.current_sum += result.current
        deciding = undecided & at_end
        rows.class_index = np.where(deciding, rows.current_sum.argmax(axis=1), rows.class_index)
    rows.decided_at = np.where(deciding, rows.elapsed, rows.decided_at)
    rows.scores[deciding] = result.membrane[deciding]
    finished = (rows.decided_at > 0) & (rows.early_exit | at_end)
    done = [(int(rows.ticket[i]), _outcome(rows, i, decoding)) for i in np.flatnonzero(finished)]
    keep = np.flatnonzero(~finished)
    if len(keep) == 0:
        return None, done
    if batch.images is not None:  # timestep 1 ran without state: the rows that go on run it again
        encoded, again = runtime.first_step(batch.images[keep])
        state = again.state
    elif len(done):
        encoded, state = runtime.select(batch.encoded, result.state, keep)
    else:
        encoded, state = batch.encoded, result.state
    return Batch(encoded, state, rows.take(keep) if len(done) else rows), done


def _outcome(rows: RowRecords, i: int | np.intp, decoding: str) -> Outcome:
    """Row ``i``'s outcome, from its records."""
    raster = [np.flatnonzero(step).tolist() for step in rows.raster[i, : rows.elapsed[i]]]
    if decoding == TIME_MEAN:
        reason = TIME_MEAN
    else:  # an output spike at the decision timestep, or none by T
        reason = FIRST_SPIKE if raster[rows.decided_at[i] - 1] else NO_SPIKE
    return Outcome(
        class_index=int(rows.class_index[i]),
        decision_timestep=int(rows.decided_at[i]),
        exit_reason=reason,
        timesteps_run=int(rows.elapsed[i]),
        scores=rows.scores[i].tolist(),
        output_spikes=rows.raster[i].sum(axis=0, dtype=np.int64).tolist(),
        layer_spikes=rows.layer_spikes[i].tolist(),
        synaptic_inputs=rows.synaptic_inputs[i].tolist(),
        output_raster=raster,
    )


def classify(
    runtime: Runtime,
    images: np.ndarray,
    widths: Widths,
    early_exit: bool = True,
    decoding: str = FIRST_SPIKE,
    on_step: Callable[[int], None] | None = None,
) -> list[Outcome]:
    """Run ``images`` until every row has finished.

    Args:
        runtime: the model version's runtime.
        images: float32 [B, C, H, W].
        widths: the model's record sizes.
        early_exit: stop each row at its decision; False runs all T timesteps.
        decoding: ``first_spike``, or ``time_mean`` for rate-coded models and ANNs.
        on_step: called with the rows of each runtime timestep.

    Returns:
        The outcomes, in input order.
    """
    count = len(images)
    batch: Batch | None = start(runtime, images, np.arange(count), np.full(count, early_exit), widths)
    outcomes: dict[int, Outcome] = {}
    while batch is not None:
        if on_step is not None:
            on_step(len(batch))
        batch, done = advance(runtime, batch, decoding)
        for ticket, outcome in done:
            outcomes[ticket] = outcome
    return [outcomes[ticket] for ticket in range(count)]
