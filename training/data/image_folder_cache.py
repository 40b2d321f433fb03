"""Decoding a user's image files, and a disk cache of what decoding them gave.

``model_pixels`` decodes a file with the service's decoder (``training.contract.images.decode``,
which also turns it upright by its EXIF orientation) and brings it to the model's input by the
service's own ``to_model_pixels``: uint8 [H, W, C] at the model's size, before normalisation and augmentation.

``ImageCache`` keeps those pixels as ``.npy`` files, keyed by the sha256 of the file's bytes and
the input geometry (channels, height, width, resize policy, and the Pillow version and cache
format, either of which can change the pixels), so a second epoch or a second run reads them
instead of decoding again; it also keeps what scanning learnt of each file (format, mode, size,
colour) as small JSON records. Every write goes to a temporary file in the target folder and is
renamed into place, so concurrent readers and writers (loader workers, two runs) never see half a
file; a cache that cannot be written is used read-only, and one that cannot be read is a miss.

The default folder is ``$XDG_CACHE_HOME/firstspike/images`` (``~/.cache/firstspike/images``),
never the image folder itself, which may be read-only.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import PIL

from training.contract.images.decode import ImageLimits, decode_image
from training.contract.images.model_input import InputSpec, to_model_pixels

# Bumped whenever what a cached file holds, or how it is made, changes.
CACHE_FORMAT = 1
# EXIF orientations other than "as stored" (1): mirrors and quarter turns.


def default_cache_dir() -> Path:
    """Where decoded images are cached unless told otherwise.

    Returns:
        ``$XDG_CACHE_HOME/firstspike/images``, or ``~/.cache/firstspike/images`` where
        ``XDG_CACHE_HOME`` is unset, empty or relative (as the XDG specification says).
    """
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "firstspike" / "images"


def file_digest(data: bytes) -> str:
    """The cache key of an image file's content.

    Args:
        data: the file's bytes.

    Returns:
        The sha256 of ``data``, in hex.
    """
    return hashlib.sha256(data).hexdigest()


def model_pixels(data: bytes, spec: InputSpec, limits: ImageLimits) -> npt.NDArray[np.uint8]:
    """An image file at the model's size and channels, before normalisation.

    Args:
        data: the file's bytes.
        spec: what the model reads (channels, size, resize policy).
        limits: the largest image decoded.

    Returns:
        uint8 [H, W, C], as ``to_model_pixels`` makes it for the service.

    Raises:
        ImageRejected: the file cannot be decoded, or is outside ``limits``.
    """
    return to_model_pixels(decode_image(data, limits), spec)


def geometry_key(spec: InputSpec) -> str:
    """The part of a cached file's key that the model's input geometry sets.

    Normalisation is left out: the cache holds pixels before it.

    Args:
        spec: what the model reads.

    Returns:
        16 hex digits.
    """
    described = {
        "format": CACHE_FORMAT,
        "pillow": PIL.__version__,
        "channels": spec.channels,
        "height": spec.height,
        "width": spec.width,
        "resize": spec.resize.to_dict(),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class CacheStats:
    """What one ``ImageCache`` object did, in this process (loader workers count their own).

    Attributes:
        hits: pixels or records read from the cache.
        misses: looked for and not found (each followed by a decode).
        writes: files written.
        write_errors: files that could not be written (the cache is then read-only in effect).
    """

    hits: int = 0
    misses: int = 0
    writes: int = 0
    write_errors: int = 0


class ImageCache:
    """Decoded pixels and scan records of image files, on disk, keyed by content.

    Layout: ``<directory>/pixels/<geometry key>/<ab>/<sha256>.npy`` and
    ``<directory>/probe/<format>-<pillow version>/<ab>/<sha256>.json``, ``ab`` the digest's first
    two hex digits.

    Args:
        directory: the cache folder, created on the first write; None for
            ``default_cache_dir()``.
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.stats = CacheStats()

    def pixels_path(self, digest: str, spec: InputSpec) -> Path:
        """Where the pixels of one file at one geometry are kept.

        Args:
            digest: ``file_digest`` of the file.
            spec: what the model reads.

        Returns:
            The ``.npy`` file's path.
        """
        return self.directory / "pixels" / geometry_key(spec) / digest[:2] / f"{digest}.npy"

    def probe_path(self, digest: str) -> Path:
        """Where the scan record of one file is kept.

        Args:
            digest: ``file_digest`` of the file.

        Returns:
            The ``.json`` file's path.
        """
        version = f"{CACHE_FORMAT}-{PIL.__version__}"
        return self.directory / "probe" / version / digest[:2] / f"{digest}.json"

    def load_pixels(self, digest: str, spec: InputSpec) -> npt.NDArray[np.uint8] | None:
        """Cached pixels of a file at the model's geometry.

        Args:
            digest: ``file_digest`` of the file.
            spec: what the model reads.

        Returns:
            uint8 [H, W, C], or None where not cached (or the cached file is unreadable).
        """
        try:
            pixels = np.load(self.pixels_path(digest, spec), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            self.stats.misses += 1
            return None
        if pixels.dtype != np.uint8 or pixels.shape != (spec.height, spec.width, spec.channels):
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return np.asarray(pixels, dtype=np.uint8)

    def store_pixels(self, digest: str, spec: InputSpec, pixels: npt.NDArray[np.uint8]) -> None:
        """Keep a file's pixels at the model's geometry.

        Args:
            digest: ``file_digest`` of the file.
            spec: what the model reads.
            pixels: uint8 [H, W, C].
        """
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(pixels, dtype=np.uint8), allow_pickle=False)
        self._write(self.pixels_path(digest, spec), buffer.getvalue())

    def load_probe(self, digest: str) -> dict[str, Any] | None:
        """A file's cached scan record.

        Args:
            digest: ``file_digest`` of the file.

        Returns:
            The record, or None where not cached (or unreadable).
        """
        try:
            record = json.loads(self.probe_path(digest).read_text())
        except (OSError, ValueError):
            self.stats.misses += 1
            return None
        if not isinstance(record, dict):
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return record

    def store_probe(self, digest: str, record: dict[str, Any]) -> None:
        """Keep a file's scan record.

        Args:
            digest: ``file_digest`` of the file.
            record: JSON-ready values.
        """
        self._write(self.probe_path(digest), json.dumps(record, sort_keys=True).encode())

    def _write(self, path: Path, content: bytes) -> None:
        """Write ``content`` to ``path`` atomically: a temporary file beside it, then a rename."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(content)
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError:
            # A read-only or full disk costs speed, not the run.
            self.stats.write_errors += 1
            return
        self.stats.writes += 1
