"""The 15 common corruptions of Hendrycks & Dietterich (ICLR 2019), five severities each, for any
image size, with numpy and Pillow only.

    corrupt(image, "fog", severity=3, seed=0)  # uint8 [H, W], [H, W, 1] or [H, W, 3] in and out

The parameter tables are the ones the authors used to build CIFAR-10-C / CIFAR-100-C
(``make_cifar_c.py`` in github.com/hendrycks/robustness). The implementations are our own and
replace the libraries the original relied on (scipy.ndimage, scikit-image, OpenCV, ImageMagick)
with small numpy equivalents, so the outputs follow the same recipes and strengths but are not
bit-identical to the released files. Deliberate departures, each explained where it happens:

* Every severity must change an image more than the one below it (mean absolute change over a
  batch of images). Five original tables break that, and those rows are adjusted as little as
  we found works (the comment at each table gives the original): glass blur (severities 1-2
  and 4 are the same pixel swaps with blurs too small to matter, and more blur pulls the
  shuffled pixels back toward the clean image), motion blur (severities 3 and 4 differ only in
  a kernel tail carrying 0.1 % of the weight), snow (severity 3 changes images no more than 2),
  frost (severity 4 keeps severity 3's frost weight while dimming the image) and elastic
  transform (its random affine part shrinks as severity rises, so severity 1 moves pixels
  furthest).
* Frost: the original blends in crops of six frost photographs. Nothing is downloaded here, so
  the frost layer is a texture synthesised from the seeded generator (ridged fractal "veins" of
  ice over a fractal haze, tinted blue-white).
* Blur radii and sigmas are CIFAR's 32x32 values in pixels; images larger than 32 pixels get
  them scaled by min(H, W) / 32, so a severity means the same relative blur at any resolution.
  Smaller images keep the CIFAR values, so tiny images (8x8 digits) still show five distinct
  severities. Glass blur's swaps move whole pixels and are not scaled. Zoom blur, fog, snow's
  flakes, elastic transform and pixelate are already relative to the image size.
* Pixelate keeps the original int(side * fraction) grid but makes each severity's grid at
  least one cell coarser than the one below, which only matters under about 20 pixels
  (8 pixels: 7, 6, 5, 4, 3 cells instead of 7, 7, 6, 6, 5).
* Results are rounded to uint8 (the original truncated).

Randomness comes only from ``np.random.default_rng(seed)``, passed down explicitly, so a call is
a pure function of (image, name, severity, seed). The random draws do not depend on the severity
(shot noise's Poisson draws aside), so one seed gives the same noise pattern, swaps, blur
direction or fractal at every severity, only stronger.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from numbers import Integral
from typing import Literal, cast

import numpy as np
from PIL import Image

CORRUPTION_GROUPS: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
}
"""The paper's four groups, in the paper's order."""

CORRUPTIONS: tuple[str, ...] = tuple(name for group in CORRUPTION_GROUPS.values() for name in group)
"""The 15 corruption names (also the CIFAR-10-C file stems), grouped as in the paper."""

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

# The resolution CIFAR-C's pixel-sized parameters were chosen for.
_REFERENCE_SIZE = 32

# The ``np.pad`` modes the convolutions use.
PadMode = Literal["edge", "reflect", "symmetric", "constant"]


# ----------------------------------------------------------------------------------------------
# Helpers: convolution, Gaussian blur, bilinear sampling, motion blur, fractals
# ----------------------------------------------------------------------------------------------


def _pixel_scale(x: np.ndarray) -> float:
    """Factor for pixel-sized parameters: 1 up to 32 pixels, min(H, W) / 32 above."""
    scale: float = max(1.0, min(x.shape[:2]) / _REFERENCE_SIZE)
    return scale


def _convolve(x: np.ndarray, kernel: np.ndarray, pad_mode: PadMode) -> np.ndarray:
    """Correlate each channel of x [H, W, C] with an odd-sized 2-D kernel, "same" output size.

    Kernels here are small next to the image, so a sum of shifted copies is simple and fast
    enough. ``pad_mode`` is an ``np.pad`` mode: "edge" matches scikit-image's "nearest",
    "reflect" OpenCV's default BORDER_REFLECT_101, "symmetric" scipy's "reflect".
    """
    kh, kw = kernel.shape
    ph, pw = kh // 2, kw // 2
    h, w = x.shape[:2]
    padded = np.pad(x, ((ph, ph), (pw, pw), (0, 0)), mode=pad_mode)
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            if kernel[i, j] != 0.0:
                out += kernel[i, j] * padded[i : i + h, j : j + w]
    return out


def _gaussian_kernel_1d(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Normalised 1-D Gaussian taps out to ``truncate`` sigmas (scipy/scikit-image convention)."""
    radius = int(truncate * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    normalised: np.ndarray = taps / taps.sum()
    return normalised


def _gaussian_blur(
    x: np.ndarray, sigma: float, pad_mode: PadMode = "edge", truncate: float = 4.0
) -> np.ndarray:
    """Separable Gaussian blur of x [H, W, C]; sigma <= 0 leaves x unchanged."""
    if sigma <= 0:
        return x.astype(np.float64)
    taps = _gaussian_kernel_1d(sigma, truncate)
    return _convolve(_convolve(x, taps[None, :], pad_mode), taps[:, None], pad_mode)


def _fold(coords: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Map continuous pixel coordinates outside [0, n - 1] back inside.

    "edge" clamps; "symmetric" mirrors about the outer pixel edges (... b a | a b ... y z | z y
    ...), which is scipy.ndimage's "reflect" mode.
    """
    if mode == "edge" or n == 1:
        clamped: np.ndarray = np.clip(coords, 0, n - 1)
        return clamped
    period = 2 * n
    folded = np.mod(coords + 0.5, period) - 0.5
    folded = np.where(folded > n - 0.5, period - 1 - folded, folded)
    # Between the outer pixel centre and the mirror line the value is the edge pixel's.
    return np.clip(folded, 0, n - 1)


def _sample_bilinear(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, mode: str = "edge") -> np.ndarray:
    """Bilinear interpolation of x [H, W, C] at float coordinates rows, cols (both [H', W'])."""
    h, w = x.shape[:2]
    rows, cols = _fold(rows, h, mode), _fold(cols, w, mode)
    r0 = np.floor(rows).astype(np.intp)
    c0 = np.floor(cols).astype(np.intp)
    r1, c1 = np.minimum(r0 + 1, h - 1), np.minimum(c0 + 1, w - 1)
    fr, fc = (rows - r0)[..., None], (cols - c0)[..., None]
    top = x[r0, c0] * (1 - fc) + x[r0, c1] * fc
    bottom = x[r1, c0] * (1 - fc) + x[r1, c1] * fc
    sampled: np.ndarray = top * (1 - fr) + bottom * fr
    return sampled


def _centre_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """Magnify x [H, W, C] about its centre by ``factor`` >= 1, keeping the size (the centre
    crop of the enlarged image: the original's ``clipped_zoom``)."""
    h, w = x.shape[:2]
    rows = (h - 1) / 2 + (np.arange(h) - (h - 1) / 2) / factor
    cols = (w - 1) / 2 + (np.arange(w) - (w - 1) / 2) / factor
    return _sample_bilinear(x, *np.meshgrid(rows, cols, indexing="ij"))


def _motion_blur(x: np.ndarray, radius: float, sigma: float, angle_deg: float) -> np.ndarray:
    """ImageMagick's motion blur: a one-sided Gaussian streak of 2 * ceil(radius) + 1 taps along
    ``angle_deg`` (x to the right, y down), each tap a whole-pixel offset, edges clamped."""
    width = 2 * math.ceil(radius) + 1
    steps = np.arange(width)
    weights = np.exp(-(steps**2) / (2.0 * sigma**2))
    weights /= weights.sum()
    angle = math.radians(angle_deg)
    # ImageMagick rounds the offsets with ceil(v - 0.5), i.e. halves go down.
    dx = np.ceil(steps * math.cos(angle) - 0.5).astype(np.intp)
    dy = np.ceil(steps * math.sin(angle) - 0.5).astype(np.intp)
    h, w = x.shape[:2]
    rows, cols = np.arange(h), np.arange(w)
    out = np.zeros_like(x, dtype=np.float64)
    for weight, oy, ox in zip(weights, dy, dx):
        out += weight * x[np.clip(rows + oy, 0, h - 1)][:, np.clip(cols + ox, 0, w - 1)]
    return out


def _plasma_fractal(size: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """Diamond-square fractal on a size x size torus (size a power of two), scaled to [0, 1].

    Each halving of the step adds uniform noise to the local mean; the noise amplitude falls by
    ``decay ** 2`` per octave, as in the original (it multiplied two decaying factors), so a
    smaller decay gives a rougher, more detailed cloud.
    """
    grid = np.zeros((size, size))
    step, amplitude = size, 1.0
    while step >= 2:
        half = step // 2
        corners = grid[0::step, 0::step]
        # Square step: the centre of each square is the mean of its four corners, plus noise.
        centre_mean = (
            corners + np.roll(corners, -1, 0) + np.roll(corners, -1, 1) + np.roll(corners, (-1, -1), (0, 1))
        ) / 4
        grid[half::step, half::step] = centre_mean + amplitude * rng.uniform(-1, 1, centre_mean.shape)
        centres = grid[half::step, half::step]
        # Diamond step: each edge midpoint is the mean of its two corners and two centres, plus noise.
        top_mean = (corners + np.roll(corners, -1, 1) + centres + np.roll(centres, 1, 0)) / 4
        grid[0::step, half::step] = top_mean + amplitude * rng.uniform(-1, 1, top_mean.shape)
        left_mean = (corners + np.roll(corners, -1, 0) + centres + np.roll(centres, 1, 1)) / 4
        grid[half::step, 0::step] = left_mean + amplitude * rng.uniform(-1, 1, left_mean.shape)
        step = half
        amplitude /= decay**2
    grid -= grid.min()
    scaled: np.ndarray = grid / grid.max()
    return scaled


def _fractal_size(h: int, w: int) -> int:
    """Smallest power of two covering the image (CIFAR's 32 for 32x32)."""
    return max(2, 1 << (max(h, w) - 1).bit_length())


def _grey(x: np.ndarray) -> np.ndarray:
    """Luma [H, W, 1] (ITU-R 601 weights, as OpenCV's RGB2GRAY); grey images are their own."""
    if x.shape[2] == 1:
        return x
    luma: np.ndarray = (x @ np.array([0.299, 0.587, 0.114]))[..., None]
    return luma


def _to_pil(x: np.ndarray) -> Image.Image:
    """Float [H, W, C] in [0, 1] to a Pillow image ("L" or "RGB")."""
    pixels = np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)
    return Image.fromarray(pixels[..., 0] if x.shape[2] == 1 else pixels)


def _from_pil(image: Image.Image) -> np.ndarray:
    array = np.asarray(image, dtype=np.float64) / 255.0
    return array[..., None] if array.ndim == 2 else array


# ----------------------------------------------------------------------------------------------
# The corruptions. Each takes x as float64 [H, W, C] in [0, 1], the severity 1..5 and the
# generator, and returns float [H, W, C] (clipped and rounded by ``corrupt``). Tables are indexed
# by severity - 1.
# ----------------------------------------------------------------------------------------------

# Noise ---------------------------------------------------------------------------------------

GAUSSIAN_NOISE_STD = (0.04, 0.06, 0.08, 0.09, 0.10)  # additive noise std on the [0, 1] scale


def gaussian_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise, independent per pixel and channel.

    Args:
        x: float64 [H, W, C] in [0, 1].
        severity: 1..5.
        rng: The source of all randomness.

    Returns:
        float [H, W, C], before ``corrupt`` clips and rounds it.
    """
    return x + GAUSSIAN_NOISE_STD[severity - 1] * rng.standard_normal(x.shape)


SHOT_NOISE_PHOTONS = (500, 250, 100, 75, 50)  # photons at full intensity: fewer = noisier


def shot_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Poisson (photon-counting) noise: each value is a photon count at the given full-scale
    rate, so dark pixels get less absolute noise than bright ones.

    Args:
        x: float64 [H, W, C] in [0, 1].
        severity: 1..5.
        rng: The source of all randomness.

    Returns:
        float [H, W, C], before ``corrupt`` clips and rounds it.
    """
    photons = SHOT_NOISE_PHOTONS[severity - 1]
    return rng.poisson(x * photons) / photons


IMPULSE_NOISE_AMOUNT = (0.01, 0.02, 0.03, 0.05, 0.07)  # fraction of values hit


def impulse_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Salt-and-pepper noise (scikit-image's "s&p" mode, as the original): a fraction of the
    values, each channel on its own, become 0 or 1 with equal odds.

    The hit values are the first n of a seeded random order, so each severity hits every value
    the one below hits, and more. n is the fraction of all values rounded up, and at least one
    more than the severity below: an 8x8 image (64 values, 0.64 expected hits at severity 1)
    still gets five different levels.

    Args:
        x: float64 [H, W, C] in [0, 1].
        severity: 1..5.
        rng: The source of all randomness.

    Returns:
        float [H, W, C], before ``corrupt`` clips and rounds it.
    """
    count = 0
    for level in range(severity):
        count = max(math.ceil(IMPULSE_NOISE_AMOUNT[level] * x.size), count + 1)
    hit = rng.permutation(x.size)[: min(count, x.size)]
    salt = rng.random(x.size) < 0.5
    out = x.ravel().copy()
    out[hit] = salt[hit]
    return out.reshape(x.shape)


# Blur ----------------------------------------------------------------------------------------

DEFOCUS_BLUR = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1))  # (disk radius, anti-alias sigma)


def _disk_kernel(radius: float, alias_sigma: float) -> np.ndarray:
    """A flat disk of the given radius, softened by a 3x3 Gaussian (the original anti-aliased
    its disk that way; with radius < 1 the disk is one pixel and the softening is the blur)."""
    reach = math.floor(radius) + 1  # one pixel of margin for the 3x3 softening
    offsets = np.arange(-reach, reach + 1)
    xx, yy = np.meshgrid(offsets, offsets)
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    disk /= disk.sum()
    taps = np.exp(-0.5 * (np.arange(-1, 2) / alias_sigma) ** 2)
    taps /= taps.sum()
    kernel = _convolve(disk[..., None], np.outer(taps, taps), "constant")[..., 0]
    normalised: np.ndarray = kernel / kernel.sum()
    return normalised


def defocus_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Out-of-focus blur: convolution with an (anti-aliased) disk.

    Args:
        x: float64 [H, W, C] in [0, 1].
        severity: 1..5.
        rng: Unused: this corruption is deterministic.

    Returns:
        float [H, W, C], before ``corrupt`` clips and rounds it.
    """
    radius, alias_sigma = DEFOCUS_BLUR[severity - 1]
    scale = _pixel_scale(x)
    return _convolve(x, _disk_kernel(radius * scale, alias_sigma * scale), "reflect")


# (sigma, max shift, swap passes). The original, ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1),
# (0.25, 1, 2), (0.4, 1, 2)), has two levels of shuffling: severities 1, 2 and 4 blur by
# sigma <= 0.25, whose neighbour weight is 3e-4, i.e. not at all, and the extra blur of 3 and 5
# smooths the shuffled pixels back toward the clean image. Here each severity adds a pass of
# swaps, and the blur rises with the original's values and then stays.
GLASS_BLUR = ((0.05, 1, 1), (0.25, 1, 2), (0.4, 1, 3), (0.4, 1, 4), (0.4, 1, 5))


def glass_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Frosted glass: Gaussian blur, passes of local pixel swaps (each pixel with a neighbour
    up to ``max shift`` away), then the same Gaussian blur again. In whole pixels at any size.

    Args:
        x: float64 [H, W, C] in [0, 1].
        severity: 1..5.
        rng: The source of all randomness.

    Returns:
        float [H, W, C], before ``corrupt`` clips and rounds it.
    """
    sigma, max_shift, passes = GLASS_BLUR[severity - 1]
    h, w = x.shape[:2]
    # The original stored the first blur as uint8 before shuffling.
    out = np.rint(np.clip(_gaussian_blur(x, sigma), 0, 1) * 255) / 255
    rows = range(h - max_shift, max_shift, -1)
    cols = range(w - max_shift, max_shift, -1)
    # The original drew shifts with randint(-d, d), whose upper bound is exclusive: shifts go
    # only up/left (or nowhere). Kept, so the swaps drift pixels the same way as in CIFAR-C.
    # Shifts for every pass are drawn up front, so a severity repeats the passes of the ones
    # below it and adds one.
    most_passes = max(row[2] for row in GLASS_BLUR)
    shifts = rng.integers(-max_shift, max_shift, size=(most_passes, len(rows), len(cols), 2))
    # The swaps are sequential (a pixel may move several times in a pass), so they run as a
    # Python loop, on a permutation of flat pixel indices rather than on the pixels themselves.
    row, col = np.meshgrid(np.array(rows), np.array(cols), indexing="ij")
    here = (row * w + col).ravel().tolist()
    order = list(range(h * w))
    for p in range(passes):
        there = ((row + shifts[p, ..., 0]) * w + col + shifts[p, ..., 1]).ravel().tolist()
        for a, b in zip(here, there):
            order[a], order[b] = order[b], order[a]
    out = out.reshape(h * w, -1)[order].reshape(x.shape)
    return _gaussian_blur(out, sigma)


# The original's (6, 2) and (8, 2) at severities 3 and 4 differ only in taps past 3 sigma (0.1 %
# of the weight): severity 4's sigma is raised to 2.25, between its neighbours.
MOTION_BLUR = ((6, 1.0), (6, 1.5), (6, 2.0), (8, 2.25), (9, 2.5))  # (radius, sigma) in pixels


def motion_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Camera shake: a one-sided Gaussian streak in a random direction within 45 degrees of
    horizontal.

    Args:
        x: float64 [H, W, C] in [0, 1].
        severity: 1..5.
        rng: The source of all randomness.

    Returns:
        float [H, W, C], before ``corrupt`` clips and rounds it.
    """
    radius, sigma = MOTION_BLUR[severity - 1]
    scale = _pixel_scale(x)
    return _motion_blur(x, radius * scale, sigma * scale, rng.uniform(-45, 45))


ZOOM_BLUR_STEPS = (6, 11, 16, 21, 26)  # zoom factors 1.00, 1.01, ... (steps of 0.01)


def zoom_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Moving toward the object during exposure: the mean of the image and its magnifications
    about the centre by 1.00, 1.01, ..., up to 1.05 (severity 1) or 1.25 (severity 5).

    Args:
        x: float64 [H, W, C] in [0, 1].
        severity: 1..5.
        rng: Unused: this corruption is deterministic.

    Returns:
        float [H, W, C], before ``corrupt`` clips and rounds it.
    """
    factors = 1 + 0.01 * np.arange(ZOOM_BLUR_STEPS[severity - 1])
    total = x.astype(np.float64).copy()
    for factor in factors:
        total += _centre_zoom(x, factor)
    return total / (len(factors) + 1)


# Weather -------------------------------------------------------------------------------------

# (flake mean, flake std, flake zoom, threshold, streak radius, streak sigma, image weight).
# Severity 3's image weight is 0.875 instead of the original 0.9: with 0.9 it changed images no
# more than severity 2 (its flakes are larger but fewer).
SNOW = (
    (0.10, 0.2, 1.00, 0.60, 8, 3, 0.95),
    (0.10, 0.2, 1.00, 0.50, 10, 4, 0.90),
    (0.15, 0.3, 1.75, 0.55, 10, 4, 0.875),
    (0.25, 0.3, 2.25, 0.60, 12, 6, 0.85),
    (0.30, 0.3, 1.25, 0.65, 14, 12, 0.80),
)


def snow(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Falling snow: thresholded Gaussian noise, magnified into flakes and streaked by a motion
    blur, added twice (once rotated by 180 degrees) over an image whitened toward its luma.

    Args:
        x: float64 [H, W, C] in [0, 1].
        severity: 1..5.
        rng: The source of all randomness.

    Returns:
        float [H, W, C], before ``corrupt`` clips and rounds it.
    """
    mean, std, zoom, threshold, radius, sigma, image_weight = SNOW[severity - 1]
    scale = _pixel_scale(x)
    h, w = x.shape[:2]
    flakes = mean + std * rng.standard_normal((h, w, 1))
    flakes = _centre_zoom(flakes, zoom)
    flakes[flakes < threshold] = 0
    # The original passed the layer through an 8-bit PNG before blurring it.
    flakes = np.rint(np.clip(flakes, 0, 1) * 255) / 255
    flakes = _motion_blur(flakes, radius * scale, sigma * scale, rng.uniform(-135, -45))
    whitened = np.maximum(x, _grey(x) * 1.5 + 0.5)
    x = image_weight * x + (1 - image_weight) * whitened
    return x + flakes + np.rot90(flakes, k=2)


# The original keeps severity 3's frost weight at severity 4 while dimming the image further,
# which reduces the change: the frost weights of severities 4 and 5 are raised by 0.05 each.
FROST = ((1.0, 0.2), (1.0, 0.3), (0.9, 0.4), (0.85, 0.45), (0.75, 0.5))  # (image weight, frost weight)


def _frost_texture(h: int, w: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    """A procedural stand-in for the original's frost photographs, [h, w, channels] in [0, 1].

    Ice crystals are thin bright veins: a "ridged" fractal (1 - |2 p - 1| peaks along the
    contour where the fractal p crosses one half) raised to a high power keeps only the crests.
    They lie over a fainter fractal haze and are tinted blue-white like frost on a window.
    """
    size = _fractal_size(h, w)
    haze = _plasma_fractal(size, 1.6, rng)[:h, :w]
    crests = (1 - np.abs(2 * _plasma_fractal(size, 1.4, rng)[:h, :w] - 1)) ** 6
    ice: np.ndarray = np.clip(0.45 * haze + 0.8 * crests, 0, 1)[..., None]
    if channels == 1:
        return ice
    tinted: np.ndarray = ice * np.array([0.85, 0.93, 1.0])
    return tinted


def frost(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Frost on the lens or window: the image, dimmed, plus a frost texture.

    Args:
        x: float64 [H, W, C] in [0, 1].
        severity: 1..5.
        rng: The source of all randomness.

    Returns:
        float [H, W, C], before ``corrupt`` clips and rounds it.
    """
    image_weight, frost_weight = FROST[severity - 1]
    texture = _frost_texture(x.shape[0], x.shape[1], x.shape[2], rng)
    return image_weight * x + frost_weight * texture


FOG = ((0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75))  # (fog strength, fractal decay)


def fog(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Fog: a plasma fractal added to the image, renormalised so the brightest value stays
    where it was (the contrast of the scene fades under the fog).

    Args:
        x: float64 [H, W, C] in [0, 1].
        severity: 1..5.
        rng: The source of all randomness.

    Returns:
        float [H, W, C], before ``corrupt`` clips and rounds it.
    """
    strength, decay = FOG[severity - 1]
    h, w = x.shape[:2]
    brightest = x.max()
    cloud = _plasma_fractal(_fractal_size(h, w), decay, rng)[:h, :w, None]
    fogged: np.ndarray = (x + strength * cloud) * brightest / (brightest + strength)
    return fogged


BRIGHTNESS = (0.05, 0.1, 0.15, 0.2, 0.3)  # added to the HSV value channel


def brightness(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Brighter exposure: raise the HSV value (the largest channel) and keep hue and saturation.

    With hue and saturation fixed, RGB is proportional to the value, so scaling the pixel by
    new value / old value is the HSV round trip; black pixels (no hue) become grey.

    Args:
        x: float64 [H, W, C] in [0, 1].
        severity: 1..5.
        rng: Unused: this corruption is deterministic.

    Returns:
        float [H, W, C], before ``corrupt`` clips and rounds it.
    """
    value = x.max(axis=2, keepdims=True)
    raised = np.minimum(value + BRIGHTNESS[severity - 1], 1.0)
    ratio = np.divide(raised, value, out=np.zeros_like(value), where=value > 0)
    brighter: np.ndarray = np.where(value > 0, x * ratio, raised)
    return brighter


# Digital -------------------------------------------------------------------------------------

CONTRAST = (0.75, 0.5, 0.4, 0.3, 0.15)  # factor applied to the deviation from the channel mean


def contrast(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Lower contrast: pull every value toward its channel's mean.

    Args:
        x: float64 [H, W, C] in [0, 1].
        severity: 1..5.
        rng: Unused: this corruption is deterministic.

    Returns:
        float [H, W, C], before ``corrupt`` clips and rounds it.
    """
    means = x.mean(axis=(0, 1), keepdims=True)
    flatter: np.ndarray = (x - means) * CONTRAST[severity - 1] + means
    return flatter


# Fractions of the image size: (displacement amplitude, displacement smoothing sigma, affine
# jitter). The original's affine column runs 0.08, 0.07, 0.06, 0.05, 0.03, i.e. it shrinks while
# the elastic part grows, and severity 1 moves pixels further than severity 2. The same kind of
# values are used rising instead (0.03, 0.05, 0.06, 0.07, 0.08); the elastic columns are the
# original's.
ELASTIC_TRANSFORM = (
    (0.00, 0.00, 0.03),
    (0.05, 0.20, 0.05),
    (0.08, 0.06, 0.06),
    (0.10, 0.04, 0.07),
    (0.10, 0.03, 0.08),
)


def elastic_transform(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Elastic deformation (Simard et al. 2003): a random affine warp (three control points
    jittered), then a smooth random displacement field, each resampled bilinearly with mirrored
    borders.

    Args:
        x: float64 [H, W, C] in [0, 1].
        severity: 1..5.
        rng: The source of all randomness.

    Returns:
        float [H, W, C], before ``corrupt`` clips and rounds it.
    """
    amplitude, smoothing, jitter = ELASTIC_TRANSFORM[severity - 1]
    h, w = x.shape[:2]
    size = min(h, w)
    # Random affine: the map that sends three points around the centre to jittered copies.
    cx, cy, reach = w // 2, h // 2, max(1, size // 3)
    source = np.array([[cx + reach, cy + reach], [cx + reach, cy - reach], [cx - reach, cy - reach]], float)
    target = source + size * jitter * rng.uniform(-1, 1, source.shape)
    forward = np.eye(3)
    forward[:2] = np.linalg.solve(np.c_[source, np.ones(3)], target).T  # rows: x', y'
    backward = np.linalg.inv(forward)  # each output pixel looks up its source position
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    src_x = backward[0, 0] * xs + backward[0, 1] * ys + backward[0, 2]
    src_y = backward[1, 0] * xs + backward[1, 1] * ys + backward[1, 2]
    x = _sample_bilinear(x, src_y, src_x, mode="symmetric")
    # Elastic part: uniform noise smoothed into a displacement field (x and y). Drawn even when
    # unused so that the draws do not depend on the severity.
    noise = rng.uniform(-1, 1, (h, w, 2))
    if amplitude == 0:
        return x
    field = _gaussian_blur(noise, size * smoothing, pad_mode="symmetric", truncate=3.0) * size * amplitude
    return _sample_bilinear(x, ys + field[..., 1], xs + field[..., 0], mode="symmetric")


PIXELATE = (0.95, 0.9, 0.85, 0.75, 0.65)  # fraction of the side length kept


def _pixelated_size(side: int, severity: int) -> int:
    """Side length of the coarse grid: int(side * fraction), as the original, but at least one
    pixel fewer than the severity below (never below 1).

    From about 20 pixels up (CIFAR: 30, 28, 27, 24, 20) the rule changes nothing; on an 8-pixel
    side int(8 * fraction) gives 7, 7, 6, 6, 5 and severities would coincide, so 7, 6, 5, 4, 3.
    """
    size = side
    for level in range(severity):
        size = max(1, min(int(side * PIXELATE[level]), size - 1))
    return size


def pixelate(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Low resolution: box-downsample to a coarser grid, box-upsample back (Pillow).

    Args:
        x: float64 [H, W, C] in [0, 1].
        severity: 1..5.
        rng: Unused: this corruption is deterministic.

    Returns:
        float [H, W, C], before ``corrupt`` clips and rounds it.
    """
    h, w = x.shape[:2]
    small = (_pixelated_size(w, severity), _pixelated_size(h, severity))
    image = _to_pil(x).resize(small, Image.Resampling.BOX).resize((w, h), Image.Resampling.BOX)
    return _from_pil(image)


JPEG_QUALITY = (80, 65, 58, 50, 40)  # Pillow JPEG quality


def jpeg_compression(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Lossy JPEG encoding and decoding with Pillow at the given quality (Pillow's defaults
    otherwise, as in the original: 4:2:0 chroma subsampling for colour).

    Args:
        x: float64 [H, W, C] in [0, 1].
        severity: 1..5.
        rng: Unused: this corruption is deterministic.

    Returns:
        float [H, W, C], before ``corrupt`` clips and rounds it.
    """
    buffer = io.BytesIO()
    _to_pil(x).save(buffer, format="JPEG", quality=JPEG_QUALITY[severity - 1])
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return _from_pil(decoded.convert("L" if x.shape[2] == 1 else "RGB"))


_FUNCTIONS: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur,
    "glass_blur": glass_blur,
    "motion_blur": motion_blur,
    "zoom_blur": zoom_blur,
    "snow": snow,
    "frost": frost,
    "fog": fog,
    "brightness": brightness,
    "contrast": contrast,
    "elastic_transform": elastic_transform,
    "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
}
assert tuple(_FUNCTIONS) == CORRUPTIONS


# ----------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------


def check_severity(severity: object) -> int:
    """Return severity as an int, or raise ValueError unless it is an integer 1..5.

    Args:
        severity: The value to check; bools are refused.

    Returns:
        The severity as an int.

    Raises:
        ValueError: Not an integer from 1 to 5.
    """
    # typeshed's numbers.Integral declares no comparison with int, though every Integral has one.
    if isinstance(severity, bool) or not isinstance(severity, Integral) or not 1 <= cast(int, severity) <= 5:
        raise ValueError(f"severity must be an integer from 1 to 5, got {severity!r}")
    return int(severity)


def check_corruption(name: object) -> str:
    """Return name, or raise ValueError unless it is one of CORRUPTIONS.

    Args:
        name: The value to check.

    Returns:
        The name.

    Raises:
        ValueError: Not a corruption's name.
    """
    if not isinstance(name, str) or name not in _FUNCTIONS:
        raise ValueError(f"unknown corruption {name!r}; expected one of: {', '.join(CORRUPTIONS)}")
    return name


def corrupt(image: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """Apply corruption ``name`` at ``severity`` (1..5) to a uint8 image.

    ``image`` is uint8 [H, W], [H, W, 1] or [H, W, 3]; the result has the same shape and dtype.
    The result depends only on (image, name, severity, seed): all randomness comes from
    ``np.random.default_rng(seed)``.

    Args:
        image: uint8 [H, W], [H, W, 1] or [H, W, 3].
        name: One of ``CORRUPTIONS``.
        severity: 1..5.
        seed: Seeds the generator all randomness comes from.

    Returns:
        The corrupted uint8 image, shaped as ``image``.

    Raises:
        ValueError: An unknown name, a severity outside 1..5 or an unsupported shape.
        TypeError: A non-uint8 image.
    """
    function = _FUNCTIONS[check_corruption(name)]
    severity = check_severity(severity)
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise TypeError(f"image must be a uint8 numpy array, got {getattr(image, 'dtype', type(image))}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)) or 0 in image.shape[:2]:
        raise ValueError(
            f"image must be [H, W], [H, W, 1] or [H, W, 3] with H, W >= 1, got shape {image.shape}"
        )
    x = image.astype(np.float64)[..., None] if image.ndim == 2 else image.astype(np.float64)
    out = function(x / 255.0, severity, np.random.default_rng(seed))
    out = np.rint(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)
    result: np.ndarray = out.reshape(image.shape)
    return result
