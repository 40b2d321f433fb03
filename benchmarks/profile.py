"""Where the time of a request goes: runtime calls, the graph run itself, and the early-exit
loop's own bookkeeping, measured in process on a real runtime.

``profile_request`` times ``classify`` for one image at a time (batch size 1, what a lone
client gets) and splits each request into the runtime's calls (``first_decision``,
``first_step``, ``encode``, ``initial_state``, ``step``, ``select``, ``merge``), the graphs' own
runs inside them where the runtime has graphs (onnxruntime's ``InferenceSession.run``), and what
is left: the loop's numpy bookkeeping and Python. ``profile_batched_step`` does the same for one
timestep of a batch of rows (``advance``), what the batcher pays per timestep.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import numpy as np

from service.inference.early_exit import FIRST_SPIKE, Batch, RowRecords, Widths, advance, classify
from service.inference.runtimes.base import Runtime, StepResult

RUNTIME_CALLS = ("first_decision", "first_step", "encode", "initial_state", "step", "select", "merge")
SESSIONS = ("encoder", "stepper", "first_stepper", "first_decider")

_P = ParamSpec("_P")
_R = TypeVar("_R")


@dataclass
class _Clock:
    """Seconds spent per name, summed over the calls of the functions it wraps."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def timed(self, name: str, function: Callable[_P, _R]) -> Callable[_P, _R]:
        def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return call


class _TimedSession:
    """An onnxruntime session whose ``run`` is timed (the graph run, without the runtime's
    feeds and result handling around it)."""

    def __init__(self, session: Any, clock: _Clock, name: str) -> None:
        self._session, self.run = session, clock.timed(name, session.run)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


class _TimedRuntime:
    """``runtime`` with each contract call timed into ``clock``."""

    # The runtime's own calls, each wrapped by the clock: set per instance from RUNTIME_CALLS.
    first_decision: Callable[[np.ndarray], StepResult]
    first_step: Callable[[np.ndarray], tuple[Any, StepResult]]
    encode: Callable[[np.ndarray], Any]
    initial_state: Callable[[int], Any]
    step: Callable[[Any, np.ndarray, Any], StepResult]
    select: Callable[[Any, Any, np.ndarray], tuple[Any, Any]]
    merge: Callable[[list[tuple[Any, Any]]], tuple[Any, Any]]

    def __init__(self, runtime: Runtime, clock: _Clock) -> None:
        self.name, self.timesteps, self.decides_first = runtime.name, runtime.timesteps, runtime.decides_first
        for call in RUNTIME_CALLS:
            setattr(self, call, clock.timed(call, getattr(runtime, call)))


def _instrument(runtime: Runtime, clock: _Clock) -> tuple[_TimedRuntime, Callable[[], None]]:
    """The timed runtime, and a function that puts the runtime's sessions back."""
    sessions = {name: getattr(runtime, name) for name in SESSIONS if getattr(runtime, name, None) is not None}
    for name, session in sessions.items():
        setattr(runtime, name, _TimedSession(session, clock, f"{name}.run"))

    def restore() -> None:
        for name, session in sessions.items():
            setattr(runtime, name, session)

    return _TimedRuntime(runtime, clock), restore


def _breakdown(clock: _Clock, total: float, count: int) -> dict[str, float]:
    """Microseconds per request (or per timestep): total, each part, and the rest."""
    parts = {
        name: clock.seconds[name] / count * 1e6
        for name in (*RUNTIME_CALLS, *(f"{session}.run" for session in SESSIONS))
    }
    calls = sum(parts[name] for name in RUNTIME_CALLS)
    result = {"total": total / count * 1e6, **parts, "loop": total / count * 1e6 - calls}
    result["step_wrapper"] = parts["step"] - parts["stepper.run"] if parts["stepper.run"] else 0.0
    result["encode_wrapper"] = parts["encode"] - parts["encoder.run"] if parts["encoder.run"] else 0.0
    return result


def profile_request(
    runtime: Runtime,
    widths: Widths,
    images: list[np.ndarray],
    decoding: str = FIRST_SPIKE,
    seconds: float = 1.0,
    early_exit: bool = True,
) -> dict[str, float]:
    """Microseconds per request of ``classify`` at batch size 1 over rounds through ``images``,
    split by where the time goes. With early exit each image stops at its own decision, so the
    mean (not one image's median) is what a stream of them costs.

    Args:
        runtime: The runtime to profile; its sessions are put back afterwards.
        widths: The model's record sizes.
        images: Inputs, each [1, C, H, W], sent in turn.
        decoding: The model's decoding.
        seconds: Duration (at least one round through ``images``).
        early_exit: Stop each request at its decision (else run all T timesteps).

    Returns:
        Mean microseconds per request: ``total``, each of ``RUNTIME_CALLS``, each session's
        ``<session>.run``, ``loop`` (total less the runtime calls), and ``step_wrapper`` /
        ``encode_wrapper`` (a call less its session run).
    """
    for image in images[:5]:
        classify(runtime, image, widths, early_exit=early_exit, decoding=decoding)
    clock = _Clock()
    timed, restore = _instrument(runtime, clock)
    try:
        count, total = 0, 0.0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or count < len(images):
            started = time.perf_counter()
            classify(timed, images[count % len(images)], widths, early_exit=early_exit, decoding=decoding)
            total += time.perf_counter() - started
            count += 1
    finally:
        restore()
    return _breakdown(clock, total, count)


def profile_batched_step(
    runtime: Runtime, widths: Widths, images: np.ndarray, decoding: str = FIRST_SPIKE, seconds: float = 1.0
) -> dict[str, float]:
    """Microseconds of one first timestep (``advance``) for a batch whose rows all continue
    (early exit off), split as ``profile_request`` splits a request.

    Args:
        runtime: The runtime to profile; its sessions are put back afterwards.
        widths: The model's record sizes.
        images: The batch [B, C, H, W], encoded once before the timing.
        decoding: The model's decoding.
        seconds: Duration (at least 3 timesteps).

    Returns:
        Mean microseconds per timestep, with the keys of ``profile_request``'s result.
    """
    count = len(images)
    encoded = runtime.encode(images)

    def fresh() -> Batch:
        return Batch(
            encoded,
            runtime.initial_state(count),
            RowRecords.fresh(np.arange(count), np.zeros(count, bool), widths, runtime.timesteps),
        )

    advance(runtime, fresh(), decoding)  # warm-up
    clock = _Clock()
    timed, restore = _instrument(runtime, clock)
    try:
        steps, total = 0, 0.0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or steps < 3:
            batch = fresh()
            started = time.perf_counter()
            advance(timed, batch, decoding)
            total += time.perf_counter() - started
            steps += 1
    finally:
        restore()
    return _breakdown(clock, total, steps)


def interleaved_ratio(
    first: Callable[[], object],
    second: Callable[[], object],
    seconds: float = 2.0,
    calls_per_round: int = 10,
) -> tuple[float, list[float]]:
    """Median over rounds of (time of ``calls_per_round`` calls of ``first``) / (the same of
    ``second``), the two alternating round by round and taking turns at going first.

    On a shared machine the speed drifts over seconds; two blocks timed one after the other
    carry that drift into their ratio, while rounds a few milliseconds apart share it.

    Args:
        first: The call timed in the numerator (its result is ignored).
        second: The call timed in the denominator.
        seconds: Duration after one warm-up round of each (at least 5 rounds).
        calls_per_round: Calls of one side per round.

    Returns:
        The median ratio, and every round's ratio (their spread is the measurement's own noise).
    """

    def timed(function: Callable[[], object]) -> float:
        started = time.perf_counter()
        for _ in range(calls_per_round):
            function()
        return time.perf_counter() - started

    for function in (first, second):
        timed(function)  # warm-up
    ratios: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(ratios) < 5:
        if len(ratios) % 2:
            a, b = timed(first), timed(second)
        else:
            b, a = timed(second), timed(first)
        ratios.append(a / b)
    return float(np.median(ratios)), ratios
