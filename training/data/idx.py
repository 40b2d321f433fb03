"""The IDX format of MNIST and Fashion-MNIST, plain or gzip-compressed.

    bytes 0-1  zero
    byte 2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte 3     number of dimensions
    then one big-endian uint32 per dimension, then the elements, big-endian, row-major.

A file must hold exactly the elements its header announces: a truncated download or a file with
trailing bytes is refused rather than read short or padded.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np

IDX_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


def parse_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """The array held by the bytes of an IDX file (already decompressed).

    Args:
        data: The whole file's bytes, header included.
        name: What to call the data in error messages (a path, usually).

    Returns:
        The elements in the header's shape, in native byte order.

    Raises:
        ValueError: The magic number is wrong, or the length does not match the header.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise ValueError(f"{name} is not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    dtype, ndim = IDX_TYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated header ({len(data)} bytes for {ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "longer than its header says"
        raise ValueError(
            f"{name}: {state}: {len(data)} bytes, the header {list(shape)} of {dtype.name} needs {expected}"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file from disk; gzip-compressed files (``.gz`` or not) are recognised by content.

    Args:
        path: The IDX file, plain or gzip-compressed.

    Returns:
        The file's array, as ``parse_idx`` reads it.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: A broken gzip stream or a malformed IDX file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing IDX file {path}")
    raw = path.read_bytes()
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:  # a cut-off download fails here
            raise ValueError(f"{path}: broken gzip stream ({error})") from error
    return parse_idx(raw, str(path))


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as IDX (gzip when ``compress`` or the name ends in .gz): for tests and tools.

    Args:
        path: Where to write the file.
        array: The elements; their dtype must be one IDX holds (any byte order).
        compress: Gzip the file; None compresses when ``path`` ends in ``.gz``.

    Raises:
        ValueError: IDX has no element type for ``array.dtype``.
    """
    path = Path(path)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}
    dtype = np.dtype(array.dtype).newbyteorder("=")
    if dtype not in codes:
        raise ValueError(f"IDX holds no {array.dtype} elements")
    header = bytes([0, 0, codes[dtype], array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    body = header + np.ascontiguousarray(array).astype(IDX_TYPES[codes[dtype]]).tobytes()
    if compress or (compress is None and path.suffix == ".gz"):
        body = gzip.compress(body, mtime=0)
    path.write_bytes(body)
