"""digits-dvs: event streams made from the built-in digits, N-MNIST style (DESIGN.md).

A digit (8x8, upsampled to 24x24) lies on a 34x34 sensor that moves in three saccades of about
100 ms each (a triangle, as N-MNIST's pan-tilt unit). Each pixel emits an event whenever its
log-intensity has moved by its contrast threshold (about 0.2, jittered per pixel) since its last
event, ON when brighter, OFF when darker, and then stays silent for a refractory period. The
simulation runs in 1 ms steps with events spread inside each step; every stream is seeded by its
sample index, so the data set is the same on every machine. Same split as ``digits``.
"""

from __future__ import annotations

import numpy as np
import torch

from training.data.digits import digits_split
from training.data.event_augment import nda_augment
from training.events.binning import bin_events
from training.data.info import DatasetInfo
from training.events.format import make_events

SENSOR = 34
DIGIT_SIZE = 24
SACCADE_MS = 100
STEP_US = 1000
BIN_US = 75_000  # four bins cover the three saccades (300 ms)
TIMESTEPS = 4
CONTRAST = 0.2
CONTRAST_JITTER = 0.03
REFRACTORY_US = 2000
# Saccade corners (pixels the scene moves by), as the three legs of a triangle.
SACCADE_PATH = ((0.0, 0.0), (3.0, 3.0), (6.0, 0.0), (0.0, 0.0))

DIGITS_DVS_INFO = DatasetInfo(
    name="digits-dvs",
    input_shape=(2, SENSOR, SENSOR),
    labels=tuple(str(d) for d in range(10)),
    mean=(0.0, 0.0),
    std=(1.0, 1.0),
    kind="events",
    bin_us=BIN_US,
)


def _scene(digit: np.ndarray) -> np.ndarray:
    """The digit as light on a dark background, upsampled 3x with bilinear smoothing, centred on
    a canvas with room to move."""
    intensity = digit.astype(np.float64) / 16.0
    rows = np.linspace(0, 7, DIGIT_SIZE)
    r0 = np.floor(rows).astype(int).clip(0, 6)
    fr = rows - r0
    upsampled_rows = intensity[r0] * (1 - fr)[:, None] + intensity[r0 + 1] * fr[:, None]
    upsampled = upsampled_rows[:, r0] * (1 - fr)[None, :] + upsampled_rows[:, r0 + 1] * fr[None, :]
    canvas = np.zeros((SENSOR + 8, SENSOR + 8))
    offset = (canvas.shape[0] - DIGIT_SIZE) // 2 - 3
    canvas[offset:offset + DIGIT_SIZE, offset:offset + DIGIT_SIZE] = upsampled
    return canvas


def _view(canvas: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """The 34x34 sensor image with the scene shifted by (dx, dy), bilinear."""
    ix, iy = int(np.floor(dx)), int(np.floor(dy))
    fx, fy = dx - ix, dy - iy
    window = lambda oy, ox: canvas[iy + oy: iy + oy + SENSOR, ix + ox: ix + ox + SENSOR]  # noqa: E731
    return ((1 - fy) * ((1 - fx) * window(0, 0) + fx * window(0, 1))
            + fy * ((1 - fx) * window(1, 0) + fx * window(1, 1)))


def generate_stream(digit: np.ndarray, seed: int) -> np.ndarray:
    """The ``dvs-events/1`` records of one digit's three saccades."""
    rng = np.random.default_rng(seed)
    canvas = _scene(digit)
    threshold = CONTRAST + CONTRAST_JITTER * rng.standard_normal((SENSOR, SENSOR))
    threshold = threshold.clip(0.05, None)
    log_intensity = lambda image: np.log(0.05 + image)  # noqa: E731
    reference = log_intensity(_view(canvas, 1.0, 1.0))
    silent_until = np.zeros((SENSOR, SENSOR), dtype=np.int64)
    steps_per_saccade = SACCADE_MS * 1000 // STEP_US
    times, xs, ys, ps = [], [], [], []
    for leg in range(3):
        (x0, y0), (x1, y1) = SACCADE_PATH[leg], SACCADE_PATH[leg + 1]
        for step in range(steps_per_saccade):
            now = (leg * steps_per_saccade + step) * STEP_US
            share = (step + 1) / steps_per_saccade
            current = log_intensity(_view(canvas, 1.0 + x0 + (x1 - x0) * share, 1.0 + y0 + (y1 - y0) * share))
            change = current - reference
            ready = silent_until <= now
            on = ready & (change >= threshold)
            off = ready & (change <= -threshold)
            for mask, polarity, sign in ((on, 1, 1.0), (off, 0, -1.0)):
                y, x = np.nonzero(mask)
                if len(y) == 0:
                    continue
                times.append(now + rng.integers(0, STEP_US, len(y)))
                xs.append(x)
                ys.append(y)
                ps.append(np.full(len(y), polarity))
                reference[mask] += sign * threshold[mask]
                silent_until[mask] = now + REFRACTORY_US
    if not times:
        return make_events([], [], [], [])
    t = np.concatenate(times)
    order = np.argsort(t, kind="stable")
    return make_events(t[order], np.concatenate(xs)[order], np.concatenate(ys)[order], np.concatenate(ps)[order])


def digits_dvs_split(split: str) -> tuple[list[np.ndarray], np.ndarray]:
    """The event streams and labels of ``train`` or ``test``. Stream i of a split is seeded by
    its sample's index in ``load_digits()`` order."""
    images, labels = digits_split(split)
    indices = np.arange(1797)
    indices = indices[indices % 5 == 0] if split == "test" else indices[indices % 5 != 0]
    return [generate_stream(image, seed=int(index)) for image, index in zip(images, indices)], labels


class DigitsDvsDataset:
    """Frames [T, 2, 34, 34] of every stream of a split (generated once, held in memory) and
    labels. ``augment`` applies NDA-style roll / rotate / cutout."""

    info = DIGITS_DVS_INFO

    def __init__(self, split: str, augment: bool = False, seed: int = 0, bins: int = TIMESTEPS) -> None:
        streams, labels = digits_dvs_split(split)
        self.frames = torch.from_numpy(np.stack([bin_events(s, SENSOR, SENSOR, BIN_US, bins) for s in streams]))
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.augment = augment
        # Kept on the data set so that each loader worker can reseed it (see the trainer).
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        frames = self.frames[index]
        if self.augment:
            frames = nda_augment(frames, self.generator)
        return frames, int(self.labels[index])
