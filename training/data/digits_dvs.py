"""digits-dvs: event streams made from the built-in digits, N-MNIST style (DESIGN.md).

A digit (8x8, resampled to about 24x24) lies on a 34x34 sensor that moves along a saccade path
(nominally three legs of 100 ms forming a triangle, as N-MNIST's pan-tilt unit). Each pixel emits
an event whenever its log-intensity has moved by its contrast threshold (jittered per pixel)
since its last event, ON when brighter, OFF when darker, and then stays silent for a refractory
period; background noise and hot pixels add events of random polarity. The simulation runs in
1 ms steps with events spread inside each step. Everything about the simulated camera is one
``CameraParams``; ``NOMINAL`` is the camera of the ``train`` and ``test`` streams.

Splits (same digits split as ``digits``): ``test`` (NOMINAL camera, stream i seeded by its
sample's index in ``load_digits()`` order), ``train`` (per digit: the NOMINAL stream and/or
``variants`` streams whose cameras are drawn from ``TRAIN_RANGES``, seeded by sample index and
variant), and ``other-cameras`` (the test digits through cameras drawn from
``OTHER_CAMERAS_RANGES``, outside the training ranges in the parameters ``OTHER_CAMERAS_OUTSIDE``
names). Every stream is a pure function of (digit, seed, camera).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from training.contract.events.binning import bin_events
from training.contract.events.format import make_events
from training.contract.known_fields import refuse_unknown
from training.data.digits import digits_split
from training.data.event_augment import drop_events, nda_augment
from training.data.info import DatasetInfo
from training.data.samples import Sample

SENSOR = 34
DIGIT_SIZE = 24
SACCADE_MS = 100
STEP_US = 1000
BIN_US = 75_000  # four bins cover the nominal three saccades (300 ms)
TIMESTEPS = 4
CONTRAST = 0.2
CONTRAST_JITTER = 0.03
REFRACTORY_US = 2000
# Saccade corners (pixels the sensor window moves by), as the three legs of a triangle.
SACCADE_PATH = ((0.0, 0.0), (3.0, 3.0), (6.0, 0.0), (0.0, 0.0))
SPLITS = ("train", "test", "other-cameras")

Corners = tuple[tuple[float, float], ...]
# A stream's seed: anything ``np.random.default_rng`` takes (here a sample index, or a salted list).
Seed = int | list[int]


def _polygon(points: int, radius: float) -> Corners:
    """A closed regular polygon through the origin (the path's start)."""
    angles = np.linspace(0.0, 2 * np.pi, points + 1).tolist()
    # math's cos and sin, not numpy's: numpy's may take a vector path that rounds differently
    return tuple((radius - radius * math.cos(a), radius * math.sin(a)) for a in angles)


# 1/(2k+1) for k = 12 .. 0: the atanh series of the log below, whose 13th term is under 2^-60
_ATANH_SERIES = tuple(1.0 / (2 * k + 1) for k in range(12, -1, -1))
_LN2_HIGH, _LN2_LOW = 0.6931471803691238, 1.9082149292705877e-10  # ln 2 = high + low, high with 32 bits


def _log(values: np.ndarray) -> np.ndarray:
    """Natural log of positive values from IEEE-exact operations only, so every CPU gets the same
    bits (numpy's ``np.log`` rounds differently where it has AVX-512, which changed streams).

    log(m 2^e) = e ln 2 + 2 atanh((m - 1) / (m + 1)), m in [sqrt(1/2), sqrt(2)); within 3 ulp.
    """
    mantissa, exponent = np.frexp(values)  # exact: values = mantissa * 2**exponent, mantissa in [0.5, 1)
    low = mantissa < math.sqrt(0.5)
    mantissa = np.where(low, mantissa * 2.0, mantissa)
    exponent = (exponent - low).astype(np.float64)
    ratio = (mantissa - 1.0) / (mantissa + 1.0)
    square = ratio * ratio
    series = np.full_like(ratio, _ATANH_SERIES[0])
    for coefficient in _ATANH_SERIES[1:]:
        series = series * square + coefficient
    logarithm: np.ndarray = exponent * _LN2_HIGH + (exponent * _LN2_LOW + 2.0 * ratio * series)
    return logarithm


# Path shapes by name. The first five are the training shapes; circle and zigzag are kept for
# ``other-cameras`` so that one shape family is never seen in training.
PATHS: dict[str, Corners] = {
    "triangle": SACCADE_PATH,
    "triangle-reversed": ((0.0, 0.0), (6.0, 0.0), (3.0, 3.0), (0.0, 0.0)),
    "right-triangle": ((0.0, 0.0), (5.0, 0.0), (0.0, 5.0), (0.0, 0.0)),
    "square": ((0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0), (0.0, 0.0)),
    "line": ((0.0, 0.0), (6.0, 2.0), (0.0, 0.0)),
    "circle": _polygon(16, 3.0),
    "zigzag": ((0.0, 0.0), (1.5, 3.0), (3.0, 0.0), (4.5, 3.0), (6.0, 0.0)),
}

DIGITS_DVS_INFO = DatasetInfo(
    name="digits-dvs",
    input_shape=(2, SENSOR, SENSOR),
    labels=tuple(str(d) for d in range(10)),
    mean=(0.0, 0.0),
    std=(1.0, 1.0),
    kind="events",
    bin_us=BIN_US,
)


@dataclass(frozen=True)
class CameraParams:
    """One simulated sensor and its motion; the defaults are the nominal camera.

    Attributes:
        path: Corners the sensor window moves through (px); the legs take equal time.
        rotation_deg: The path turned about its start.
        amplitude: The path scaled.
        duration_ms: The time the whole path takes.
        contrast: Mean log-intensity threshold.
        contrast_jitter: Its standard deviation across pixels.
        refractory_us: A pixel's silence after an event.
        noise_hz: Background events per pixel per second, random polarity.
        hot_pixels: Pixels firing at ``hot_pixel_hz``, random polarity.
        hot_pixel_hz: Their rate.
        digit_size: Side of the resampled 8x8 digit, px.
        offset: Digit shift on the sensor (x, y), px.

    Raises:
        ValueError: A path without legs, or a parameter out of range.
    """

    path: Corners = SACCADE_PATH
    rotation_deg: float = 0.0
    amplitude: float = 1.0
    duration_ms: int = 3 * SACCADE_MS
    contrast: float = CONTRAST
    contrast_jitter: float = CONTRAST_JITTER
    refractory_us: int = REFRACTORY_US
    noise_hz: float = 0.0
    hot_pixels: int = 0
    hot_pixel_hz: float = 0.0
    digit_size: int = DIGIT_SIZE
    offset: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if len(self.path) < 2 or self.duration_ms < len(self.path) - 1:
            raise ValueError("a camera path needs at least one leg and 1 ms per leg")
        if self.contrast <= 0 or self.contrast_jitter < 0 or self.refractory_us < 0:
            raise ValueError("contrast must be positive; jitter and refractory period non-negative")
        if self.noise_hz < 0 or self.hot_pixel_hz < 0 or not 0 <= self.hot_pixels <= SENSOR * SENSOR:
            raise ValueError("noise rates and hot pixel count must be non-negative")
        if not 2 <= self.digit_size <= SENSOR + 8:
            raise ValueError(f"digit_size must be 2..{SENSOR + 8}")


NOMINAL = CameraParams()

Span = tuple[tuple[float, float], ...]  # a union of closed intervals
# Parameters drawn as whole numbers (uniform over the integers of the span).
_INTEGER = ("duration_ms", "refractory_us", "hot_pixels", "digit_size")


@dataclass(frozen=True)
class CameraRanges:
    """Where ``sample_camera`` draws each ``CameraParams`` field: ``paths`` by name, every number
    uniformly over a union of intervals (both offset axes from ``offset``).

    Attributes:
        paths: Names of ``PATHS`` the camera's path is drawn from.
        rotation_deg: Intervals of each ``CameraParams`` field of the same name; whole-number
            fields draw whole numbers. The other numeric fields follow the same rule.
        amplitude: See ``rotation_deg``.
        duration_ms: See ``rotation_deg``.
        contrast: See ``rotation_deg``.
        contrast_jitter: See ``rotation_deg``.
        refractory_us: See ``rotation_deg``.
        noise_hz: See ``rotation_deg``.
        hot_pixels: See ``rotation_deg``.
        hot_pixel_hz: See ``rotation_deg``.
        digit_size: See ``rotation_deg``.
        offset: Intervals of both offset axes, drawn apart.

    Raises:
        ValueError: An unknown path, or a span that is empty or not [low, high] intervals.
    """

    paths: tuple[str, ...]
    rotation_deg: Span
    amplitude: Span
    duration_ms: Span
    contrast: Span
    contrast_jitter: Span
    refractory_us: Span
    noise_hz: Span
    hot_pixels: Span
    hot_pixel_hz: Span
    digit_size: Span
    offset: Span

    def __post_init__(self) -> None:
        unknown = set(self.paths) - set(PATHS)
        if not self.paths or unknown:
            raise ValueError(f"paths must be names from {sorted(PATHS)}, got {list(self.paths)}")
        for name in self.numeric_fields():
            span = getattr(self, name)
            if not span or any(len(i) != 2 or i[0] > i[1] for i in span):
                raise ValueError(f"camera range {name} must be a non-empty list of [low, high] intervals")

    @staticmethod
    def numeric_fields() -> tuple[str, ...]:
        """The names of the fields that hold intervals (all but ``paths``)."""
        return tuple(f.name for f in fields(CameraRanges) if f.name != "paths")

    def with_overrides(self, values: dict[str, Any]) -> CameraRanges:
        """These ranges with some fields replaced, from a config mapping (lists of [low, high]).

        Args:
            values: Fields to replace: ``paths`` a list of names, the others lists of [low, high].

        Returns:
            The new ranges, checked.

        Raises:
            ValueError: An unknown field, path or malformed span.
        """
        refuse_unknown(values, CameraRanges, "camera ranges", show_known=True)
        changes: dict[str, Any] = {
            name: tuple(value) if name == "paths" else tuple(tuple(float(v) for v in i) for i in value)
            for name, value in values.items()
        }
        return replace(self, **changes)

    def covers(self, name: str, camera: CameraParams) -> bool:
        """Whether ``camera``'s value of field ``name`` lies inside these ranges.

        Args:
            name: A ``CameraParams`` field.
            camera: The camera to test.

        Returns:
            True when the value (both axes, for ``offset``) lies in one of the intervals.
        """
        if name == "path":
            return camera.path in {PATHS[p] for p in self.paths}
        values = camera.offset if name == "offset" else (getattr(camera, name),)
        return all(any(lo <= v <= hi for lo, hi in getattr(self, name)) for v in values)


def _draw(rng: np.random.Generator, span: Span, integer: bool) -> float:
    """Uniform over the union (an interval chosen in proportion to its length)."""
    lo, hi = span[0]
    if len(span) > 1:
        widths = [b - a + (1 if integer else 0) for a, b in span]
        total = sum(widths)
        pick = rng.random() * total if total > 0 else 0.0
        # The interval the pick falls in (the last one, should rounding carry it past the end).
        for interval, width in zip(span, widths):
            lo, hi = interval
            if pick < width:
                break
            pick -= width
    if integer:
        return int(rng.integers(math.ceil(lo), math.floor(hi) + 1))
    return float(rng.uniform(lo, hi))


def sample_camera(rng: np.random.Generator, ranges: CameraRanges) -> CameraParams:
    """A camera drawn from ``ranges``.

    Args:
        rng: Where every value is drawn from.
        ranges: Where each field is drawn.

    Returns:
        The camera.
    """
    values: dict[str, Any] = {"path": PATHS[ranges.paths[int(rng.integers(len(ranges.paths)))]]}
    for name in CameraRanges.numeric_fields():
        if name == "offset":
            values[name] = (_draw(rng, ranges.offset, False), _draw(rng, ranges.offset, False))
        else:
            values[name] = _draw(rng, getattr(ranges, name), name in _INTEGER)
    return CameraParams(**values)


# Training: the nominal camera sits inside every range.
TRAIN_RANGES = CameraRanges(
    paths=("triangle", "triangle-reversed", "right-triangle", "square", "line"),
    rotation_deg=((0.0, 360.0),),
    amplitude=((0.7, 1.3),),
    duration_ms=((200, 480),),
    contrast=((0.1, 0.35),),
    contrast_jitter=((0.0, 0.06),),
    refractory_us=((500, 5000),),
    noise_hz=((0.0, 5.0),),
    hot_pixels=((0, 3),),
    hot_pixel_hz=((50.0, 500.0),),
    digit_size=((20, 30),),
    offset=((-3.0, 3.0),),
)
# Held-out cameras: outside TRAIN_RANGES in every parameter OTHER_CAMERAS_OUTSIDE names. Rotation
# (already all angles), duration, hot pixel rate and offset (more would push big digits off the
# sensor) stay inside.
OTHER_CAMERAS_RANGES = CameraRanges(
    paths=("circle", "zigzag"),
    rotation_deg=((0.0, 360.0),),
    amplitude=((0.5, 0.65), (1.35, 1.6)),
    duration_ms=((200, 480),),
    contrast=((0.08, 0.095), (0.36, 0.45)),
    contrast_jitter=((0.065, 0.09),),
    refractory_us=((5500, 8000),),
    noise_hz=((5.5, 8.0),),
    hot_pixels=((4, 5),),
    hot_pixel_hz=((50.0, 500.0),),
    digit_size=((17, 19), (31, 32)),
    offset=((-3.0, 3.0),),
)
OTHER_CAMERAS_OUTSIDE = (
    "path",
    "amplitude",
    "contrast",
    "contrast_jitter",
    "refractory_us",
    "noise_hz",
    "hot_pixels",
    "digit_size",
)


def _scene(digit: np.ndarray, size: int, pad: int) -> np.ndarray:
    """The digit as light on a dark background, resampled bilinearly to ``size`` px and placed on
    a canvas with room to move (``pad`` extra px each side; the nominal canvas has none)."""
    intensity = digit.astype(np.float64) / 16.0
    rows = np.linspace(0, 7, size)
    r0 = np.floor(rows).astype(int).clip(0, 6)
    fr = rows - r0
    upsampled_rows = intensity[r0] * (1 - fr)[:, None] + intensity[r0 + 1] * fr[:, None]
    upsampled = upsampled_rows[:, r0] * (1 - fr)[None, :] + upsampled_rows[:, r0 + 1] * fr[None, :]
    side = SENSOR + 8
    canvas = np.zeros((side + 2 * pad, side + 2 * pad))
    # Centred as the nominal 24 px digit is, whatever the size; a digit larger than the canvas is cropped.
    top = pad + (side - size) // 2 - 3
    lo, hi = max(0, -top), min(size, canvas.shape[0] - top)
    canvas[top + lo : top + hi, top + lo : top + hi] = upsampled[lo:hi, lo:hi]
    return canvas


def _window_positions(camera: CameraParams) -> tuple[np.ndarray, np.ndarray]:
    """Sensor window position (x, y) at the start and at the end of every 1 ms step: [steps + 1]."""
    path = np.asarray(camera.path, dtype=np.float64)
    angle = math.radians(camera.rotation_deg)
    cos, sin = math.cos(angle), math.sin(angle)
    # With rotation 0, amplitude 1 and offset 0 every operation below is exact, so the nominal
    # camera follows SACCADE_PATH itself, without rounding.
    cx = (path[:, 0] * cos - path[:, 1] * sin) * camera.amplitude - camera.offset[0]
    cy = (path[:, 0] * sin + path[:, 1] * cos) * camera.amplitude - camera.offset[1]
    legs = len(path) - 1
    bounds = np.arange(legs + 1) * camera.duration_ms // legs  # first step of each leg (ms)
    steps = np.arange(camera.duration_ms)
    leg = np.searchsorted(bounds, steps, side="right") - 1
    share = (steps - bounds[leg] + 1) / (bounds[leg + 1] - bounds[leg])
    x = 1.0 + cx[leg] + (cx[leg + 1] - cx[leg]) * share
    y = 1.0 + cy[leg] + (cy[leg + 1] - cy[leg]) * share
    return np.concatenate([[1.0 + cx[0]], x]), np.concatenate([[1.0 + cy[0]], y])


def _noise(rng: np.random.Generator, camera: CameraParams) -> tuple[np.ndarray, ...]:
    """Background and hot-pixel events (t, x, y, p), uniform over the stream's duration."""
    duration_us = camera.duration_ms * 1000
    pixels = np.zeros(0, dtype=np.int64)
    if camera.noise_hz > 0:
        pixels = rng.integers(
            0, SENSOR * SENSOR, rng.poisson(camera.noise_hz * SENSOR * SENSOR * duration_us / 1e6)
        )
    if camera.hot_pixels and camera.hot_pixel_hz > 0:
        hot = rng.choice(SENSOR * SENSOR, camera.hot_pixels, replace=False)
        counts = rng.poisson(camera.hot_pixel_hz * duration_us / 1e6, camera.hot_pixels)
        pixels = np.concatenate([pixels, np.repeat(hot, counts)])
    t = rng.integers(0, duration_us, len(pixels))
    p = rng.integers(0, 2, len(pixels))
    return t, pixels % SENSOR, pixels // SENSOR, p


def generate_streams(
    digits: list[np.ndarray], seeds: list[Seed], cameras: list[CameraParams]
) -> list[np.ndarray]:
    """The ``dvs-events/1`` records of each (digit, seed, camera): ``generate_stream`` of each,
    simulated side by side so that numpy's per-call cost is shared.

    Args:
        digits: Raw 8x8 digits (values 0..16).
        seeds: One seed per digit.
        cameras: One camera per digit.

    Returns:
        One event stream per digit, time non-decreasing.
    """
    count = len(digits)
    if not count:
        return []
    rngs = [np.random.default_rng(seed) for seed in seeds]
    shape = (count, SENSOR, SENSOR)
    threshold = np.stack(
        [
            (c.contrast + c.contrast_jitter * rng.standard_normal((SENSOR, SENSOR))).clip(0.05, None)
            for c, rng in zip(cameras, rngs)
        ]
    )
    negative = -threshold
    durations = np.array([c.duration_ms for c in cameras])
    # Window position (whole and fractional px) at the start and after each step; past a stream's
    # end it stays at 0, a valid place to look at while the stream is silenced.
    ix, iy = np.zeros((2, count, durations.max() + 1), dtype=np.int64)
    fx, fy = np.zeros((2, count, durations.max() + 1))
    for b, camera in enumerate(cameras):
        x, y = _window_positions(camera)
        moving = slice(0, len(x))
        ix[b, moving], iy[b, moving] = np.floor(x), np.floor(y)
        fx[b, moving], fy[b, moving] = x - ix[b, moving], y - iy[b, moving]
    pad = int(max(np.abs(ix).max(), np.abs(iy).max())) + 2
    canvases = np.stack([_scene(digit, camera.digit_size, pad) for digit, camera in zip(digits, cameras)])
    # Every (SENSOR + 1)-square block of each canvas; one block per stream and step feeds the bilinear view.
    blocks = np.lib.stride_tricks.sliding_window_view(canvases, (SENSOR + 1, SENSOR + 1), axis=(1, 2))
    ix, iy, streams_index = ix + pad, iy + pad, np.arange(count)

    def log_view(step: int) -> np.ndarray:
        """Log-intensity on each sensor at window position ``step``, with the operations of a
        single stream's simulation in the same order, so a stream's bits do not depend on the
        streams simulated beside it."""
        block = blocks[streams_index, iy[:, step], ix[:, step]]
        wx, wy = fx[:, step, None, None], fy[:, step, None, None]
        view = (1 - wy) * ((1 - wx) * block[:, :-1, :-1] + wx * block[:, :-1, 1:]) + wy * (
            (1 - wx) * block[:, 1:, :-1] + wx * block[:, 1:, 1:]
        )
        return _log(0.05 + view)

    reference = log_view(0)
    refractory = np.array([c.refractory_us for c in cameras], dtype=np.int64)[:, None, None]
    silent_until = np.zeros(shape, dtype=np.int64)
    ended = np.iinfo(np.int64).max  # silences a stream whose path is over
    fired_at, fired_step, fired_on = [], [], []
    change = np.empty(shape)
    ready, on, off = (np.empty(shape, dtype=bool) for _ in range(3))
    for step in range(durations.max()):
        now = step * STEP_US
        silent_until[durations == step] = ended
        np.subtract(log_view(step + 1), reference, out=change)
        np.less_equal(silent_until, now, out=ready)
        np.greater_equal(change, threshold, out=on)
        on &= ready
        np.less_equal(change, negative, out=off)
        off &= ready
        np.add(reference, threshold, out=reference, where=on)
        np.subtract(reference, threshold, out=reference, where=off)
        np.copyto(silent_until, now + refractory, where=on | off)
        # ON before OFF within a step, each in row-major order: the order of the per-event time
        # draws below, which the streams' reproducibility rests on.
        for mask, is_on in ((on, True), (off, False)):
            index = np.flatnonzero(mask)
            fired_at.append(index)
            fired_step.append(np.full(len(index), step, dtype=np.int64))
            fired_on.append(np.full(len(index), is_on))
    flat = np.concatenate(fired_at)
    per_stream = np.argsort(flat // (SENSOR * SENSOR), kind="stable")
    flat, steps, polarity = (
        flat[per_stream],
        np.concatenate(fired_step)[per_stream],
        np.concatenate(fired_on)[per_stream],
    )
    bounds = np.concatenate([[0], np.cumsum(np.bincount(flat // (SENSOR * SENSOR), minlength=count))])
    streams = []
    for b, (rng, camera) in enumerate(zip(rngs, cameras)):
        part = slice(bounds[b], bounds[b + 1])
        pixel = flat[part] % (SENSOR * SENSOR)
        t = steps[part] * STEP_US + rng.integers(0, STEP_US, len(pixel))
        x, y, p = pixel % SENSOR, pixel // SENSOR, polarity[part].astype(np.int64)
        noise_t, noise_x, noise_y, noise_p = _noise(rng, camera)
        if len(noise_t):
            t, x, y, p = (
                np.concatenate(pair) for pair in ((t, noise_t), (x, noise_x), (y, noise_y), (p, noise_p))
            )
        order = np.argsort(t, kind="stable")
        streams.append(make_events(t[order], x[order], y[order], p[order]))
    return streams


def generate_stream(digit: np.ndarray, seed: Seed, camera: CameraParams = NOMINAL) -> np.ndarray:
    """The ``dvs-events/1`` records of one digit seen through ``camera``.

    Args:
        digit: A raw 8x8 digit (values 0..16).
        seed: Anything ``np.random.default_rng`` takes.
        camera: The simulated sensor and its motion.

    Returns:
        The event stream, time non-decreasing.
    """
    return generate_streams([digit], [seed], [camera])[0]


@dataclass(frozen=True)
class TrainSettings:
    """The ``train`` split's settings (the config's ``augmentation`` mapping): which streams each
    digit gets, and the event drop applied on top of NDA when the config's ``augment`` is on.

    Attributes:
        nominal: Include the digit's NOMINAL stream.
        variants: Streams through cameras drawn from ``ranges``, per digit.
        ranges: Where the variants' cameras are drawn.
        event_drop_p: Share of samples thinned by ``drop_events`` (with ``augment``).
        event_keep: The range of the keep probability of that thinning.
    """

    nominal: bool = True
    variants: int = 0
    ranges: CameraRanges = TRAIN_RANGES
    event_drop_p: float = 0.0
    event_keep: tuple[float, float] = (0.4, 1.0)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainSettings:
        """Settings from a config mapping (``ranges`` as ``CameraRanges.with_overrides`` takes).

        Args:
            values: Fields to change from their defaults.

        Returns:
            The settings.

        Raises:
            ValueError: An unknown field, bad ranges, or a split without streams.
        """
        refuse_unknown(values, cls, "digits-dvs augmentation settings", show_known=True)
        values = dict(values)
        values["ranges"] = TRAIN_RANGES.with_overrides(values.get("ranges") or {})
        if "event_keep" in values:
            values["event_keep"] = tuple(float(v) for v in values["event_keep"])
        settings = cls(**values)
        if settings.variants < 0 or (settings.variants == 0 and not settings.nominal):
            raise ValueError("digits-dvs train split: variants must be >= 0, with nominal or variants > 0")
        return settings


# Seed prefixes that keep the randomised streams apart from the nominal ones (seeded 0..1796).
_TRAIN_SALT, _OTHER_SALT, _CAMERA = 7001, 7002, 1


def _split_indices(split: str) -> np.ndarray:
    """The ``load_digits()`` indices of a split's digits (``other-cameras`` has the test digits)."""
    if split not in SPLITS:
        raise ValueError(f"digits-dvs has splits {', '.join(repr(s) for s in SPLITS)}, not {split!r}")
    indices = np.arange(1797)
    chosen: np.ndarray = indices[indices % 5 != 0] if split == "train" else indices[indices % 5 == 0]
    return chosen


def split_plan(
    split: str, settings: TrainSettings = TrainSettings()
) -> tuple[list[int], list[Seed], list[CameraParams]]:
    """(sample index, stream seed, camera) of each stream of a split, in order.

    Args:
        split: ``"train"``, ``"test"`` or ``"other-cameras"``.
        settings: Which streams the ``train`` split has; the others ignore it.

    Returns:
        The sample indices, seeds and cameras, one of each per stream.

    Raises:
        ValueError: An unknown split.
    """
    plan: list[tuple[int, Seed, CameraParams]] = []
    for index in _split_indices(split).tolist():
        if split == "test" or (split == "train" and settings.nominal):
            plan.append((index, index, NOMINAL))
        if split == "other-cameras":
            seed = [_OTHER_SALT, index]
            plan.append(
                (index, seed, sample_camera(np.random.default_rng(seed + [_CAMERA]), OTHER_CAMERAS_RANGES))
            )
        for variant in range(settings.variants if split == "train" else 0):
            seed = [_TRAIN_SALT, index, variant]
            plan.append(
                (index, seed, sample_camera(np.random.default_rng(seed + [_CAMERA]), settings.ranges))
            )
    samples, seeds, cameras = zip(*plan)
    return list(samples), list(seeds), list(cameras)


def _sample_digits(split: str) -> tuple[dict[int, np.ndarray], dict[int, int]]:
    """Digit image and label by sample index."""
    indices = _split_indices(split).tolist()
    images, labels = digits_split("train" if split == "train" else "test")
    return dict(zip(indices, images)), dict(zip(indices, labels.tolist()))


def _iter_split(
    split: str, settings: TrainSettings, chunk: int = 96
) -> Iterator[tuple[list[np.ndarray], list[int]]]:
    """(streams, labels) of a split, ``chunk`` streams at a time."""
    images, labels = _sample_digits(split)
    samples, seeds, cameras = split_plan(split, settings)
    for start in range(0, len(samples), chunk):
        part = slice(start, start + chunk)
        yield (
            generate_streams([images[i] for i in samples[part]], seeds[part], cameras[part]),
            [labels[i] for i in samples[part]],
        )


def digits_dvs_split(
    split: str, settings: TrainSettings = TrainSettings()
) -> tuple[list[np.ndarray], np.ndarray]:
    """The event streams and labels of ``train``, ``test`` or ``other-cameras``.

    Args:
        split: ``"train"``, ``"test"`` or ``"other-cameras"``.
        settings: Which streams the ``train`` split has; the others ignore it.

    Returns:
        The streams and one label per stream.
    """
    streams: list[np.ndarray] = []
    labels: list[int] = []
    for part_streams, part_labels in _iter_split(split, settings):
        streams += part_streams
        labels += part_labels
    return streams, np.array(labels)


def stream_frames(events: np.ndarray, bins: int = TIMESTEPS, bin_us: int = BIN_US) -> np.ndarray:
    """The frames [bins, 2, 34, 34] of a whole stream, binned by the service's own binner.

    Args:
        events: ``dvs-events/1`` records.
        bins: Frames to make.
        bin_us: The duration of one frame in microseconds.

    Returns:
        float32 event counts [bins, 2, 34, 34].
    """
    return bin_events(events, SENSOR, SENSOR, bin_us, bins)


class DigitsDvsDataset(Dataset[Sample]):
    """Frames [T, 2, 34, 34] of every stream of a split (generated once, held in memory) and
    labels. ``augment`` applies NDA-style roll / rotate / cutout (and the event drop that
    ``augmentation``, the config's mapping read as ``TrainSettings``, may ask for).

    Args:
        split: ``"train"``, ``"test"`` or ``"other-cameras"``.
        augment: Augment every sample read (training).
        seed: Seed of the augmentation's generator.
        bins: Frames per stream.
        augmentation: ``TrainSettings`` as a config mapping; None or empty for its defaults.
        bin_us: The duration of one frame in microseconds.
    """

    info = DIGITS_DVS_INFO

    def __init__(
        self,
        split: str,
        augment: bool = False,
        seed: int = 0,
        bins: int = TIMESTEPS,
        augmentation: dict[str, Any] | None = None,
        bin_us: int = BIN_US,
    ) -> None:
        settings = TrainSettings.from_dict(augmentation or {})
        frames, labels = [], []
        for streams, part_labels in _iter_split(split, settings):
            frames += [stream_frames(s, bins, bin_us) for s in streams]
            labels += part_labels
        self.frames = torch.from_numpy(np.stack(frames))
        self.labels = torch.tensor(labels, dtype=torch.int64)
        self.augment = augment
        self.settings = settings
        # Kept on the data set so that each loader worker can reseed it (see the trainer).
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Sample:
        frames = self.frames[index]
        if self.augment:
            frames = nda_augment(frames, self.generator)
            if (
                self.settings.event_drop_p
                and torch.rand((), generator=self.generator).item() < self.settings.event_drop_p
            ):
                frames = drop_events(frames, self.generator, self.settings.event_keep)
        return frames, int(self.labels[index])
