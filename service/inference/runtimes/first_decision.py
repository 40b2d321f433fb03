"""Whether new rows of a model start with the decision-only first step.

A first step that writes out every hidden membrane (and, where the step graph takes features,
the features) costs more than one that writes out only what a decision needs, by the reorders
and copies of the state; but a row that goes on past timestep 1 must then run timestep 1 again
to get its state. Per request the decision-only start costs  C_decision + p C_full  against
C_full, where p is the share of inputs that go on: the version's own evaluation says how many
it decided at timestep 1 (a one-step ANN never goes on), and the two costs are timed on the
loaded graphs, since they depend on the model and the machine. Either start gives the same
answers; the choice only moves cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from training.contract.manifest import Manifest


def share_going_on(manifest: Manifest) -> float | None:
    """p: the share of the evaluation's inputs decided after timestep 1.

    Args:
        manifest: the version, with its evaluation's decision timesteps.

    Returns:
        The share, 0.0 for a one-step model; None if the evaluation counted no inputs.
    """
    if manifest.timesteps == 1:
        return 0.0
    counts = manifest.evaluation.decision_timestep_counts
    total = sum(counts.values())
    return 1.0 - counts.get("1", 0) / total if total else None


def decision_first_pays(decision_cost: float, full_cost: float, going_on: float | None) -> bool:
    """Whether  C_decision + p C_full < C_full : the decision-only start is cheaper on average.

    Args:
        decision_cost: C_decision, the decision-only first step's cost.
        full_cost: C_full, the full first step's cost.
        going_on: p, from ``share_going_on``; None (unknown) never pays.

    Returns:
        True where new rows should start with the decision-only step.
    """
    return going_on is not None and decision_cost + going_on * full_cost < full_cost


def least_costs(
    first: Callable[[], object],
    second: Callable[[], object],
    calls: int = 3,
    min_rounds: int = 5,
    max_rounds: int = 25,
    budget_seconds: float = 0.3,
) -> tuple[float, float]:
    """Seconds per call of each: the least over rounds that alternate between the two (what a
    call costs when nothing else interferes; a loaded machine only ever adds).

    Args:
        first: the one function.
        second: the other.
        calls: calls of each per round.
        min_rounds: rounds run whatever the time taken.
        max_rounds: rounds run at most.
        budget_seconds: after ``min_rounds``, rounds go on while within this.

    Returns:
        The least seconds per call of ``first`` and of ``second``.
    """
    first(), second()  # warm-up: the first run of a session allocates
    best = [float("inf"), float("inf")]
    started_all = time.perf_counter()
    for round_ in range(max_rounds):
        if round_ >= min_rounds and time.perf_counter() - started_all > budget_seconds:
            break
        for index in (0, 1) if round_ % 2 == 0 else (1, 0):
            function = (first, second)[index]
            started = time.perf_counter()
            for _ in range(calls):
                function()
            best[index] = min(best[index], (time.perf_counter() - started) / calls)
    return best[0], best[1]
