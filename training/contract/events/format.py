"""The ``dvs-events/1`` wire format (DESIGN.md): 16-byte little-endian records
``int64 t`` (microseconds), ``uint16 x`` (column), ``uint16 y`` (row), ``uint8 p``
(1 = ON, 0 = OFF), 3 zero bytes. Timestamps never decrease."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FORMAT = "dvs-events/1"
RECORD = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1"), ("pad", "V3")])
RECORD_BYTES = RECORD.itemsize  # 16
assert RECORD_BYTES == 16


def empty_events() -> np.ndarray:
    """No records: an empty array of the record dtype."""
    return np.zeros(0, dtype=RECORD)


def make_events(t: npt.ArrayLike, x: npt.ArrayLike, y: npt.ArrayLike, p: npt.ArrayLike) -> np.ndarray:
    """Records from four equally long sequences.

    Args:
        t: timestamps in microseconds, never decreasing.
        x: columns.
        y: rows.
        p: polarities (1 = ON, 0 = OFF).

    Returns:
        The records, in the order given.

    Raises:
        ValueError: the sequences differ in length.
    """
    t, x, y, p = (np.asarray(v) for v in (t, x, y, p))
    if not (len(t) == len(x) == len(y) == len(p)):
        raise ValueError(f"t, x, y and p must be equally long, got {len(t)}, {len(x)}, {len(y)}, {len(p)}")
    events = np.zeros(len(t), dtype=RECORD)
    events["t"], events["x"], events["y"], events["p"] = t, x, y, p
    return events


def encode(events: np.ndarray) -> bytes:
    """The wire bytes of ``events``.

    Args:
        events: records (any array convertible to the record dtype).

    Returns:
        16 bytes per record, little-endian.
    """
    return np.ascontiguousarray(events, dtype=RECORD).tobytes()


def decode(data: bytes) -> np.ndarray:
    """Records from wire bytes.

    Args:
        data: a whole number of 16-byte records.

    Returns:
        The records, a writable copy.

    Raises:
        ValueError: ``data`` is not a whole number of records.
    """
    if len(data) % RECORD_BYTES:
        raise ValueError(f"{len(data)} bytes is not a whole number of {RECORD_BYTES}-byte records")
    return np.frombuffer(data, dtype=RECORD).copy()
