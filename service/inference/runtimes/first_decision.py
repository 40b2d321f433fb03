"""Whether new rows of a model start with the decision-only first step.

A first step that writes out every hidden membrane (and, in versions exported before the step
graph computed the features itself, the features) costs more than one that writes out only
what a decision needs (the reorders and copies of the state: 12% of digits' first step), but a
row that goes on past timestep 1 must then run timestep 1 again to get its state. Per request
the decision-only start costs  C_decision + p C_full  against  C_full, where p is the share of
inputs that go on: the version's own evaluation says how many it decided at timestep 1 (a
one-step ANN never goes on), and the two costs are timed on the loaded graphs. Either start gives the same answers; the choice only moves cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from training.contract.manifest import Manifest


def share_going_on(manifest: Manifest) -> float | None:
    """p: the share of the evaluation's inputs decided after timestep 1; None if unknown."""
    if manifest.timesteps == 1:
        return 0.0
    counts = manifest.evaluation.decision_timestep_counts
    total = sum(counts.values())
    return 1.0 - counts.get("1", 0) / total if total else None


def decision_first_pays(decision_cost: float, full_cost: float, going_on: float | None) -> bool:
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
    call costs when nothing else interferes; a loaded machine only ever adds). At least
    ``min_rounds`` rounds, more while within ``budget_seconds``."""
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
