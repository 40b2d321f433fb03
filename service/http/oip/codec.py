"""Open Inference Protocol (KServe v2) tensors on the wire, as pure functions.

A request or response body is a JSON header, optionally followed by raw tensor bytes (the binary
tensor data extension): ``Inference-Header-Content-Length`` gives the header's length, and each
tensor sent as binary carries ``parameters.binary_data_size``; their bytes follow the header in
the order the tensors are listed. Binary data is little-endian, row-major; a BYTES element is a
4-byte little-endian length followed by that many bytes.

Anything that does not follow the protocol raises ``TensorError`` (the client's fault).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
BYTES = "BYTES"
LENGTH = struct.Struct("<I")


class TensorError(ValueError):
    """A body or tensor that breaks the protocol."""


@dataclass(frozen=True)
class Tensor:
    """One input tensor of a request.

    Attributes:
        name: the tensor's name.
        datatype: its OIP datatype (``FP32``, ``BYTES``, ...).
        shape: its shape.
        data: the values, of ``shape``; for BYTES an object array of ``bytes``.
        binary: it came as binary data rather than JSON ``data``.
    """

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray
    binary: bool = False


def split_body(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """The JSON header and the binary section after it.

    Args:
        body: the request body.
        header_length: the ``Inference-Header-Content-Length`` header, if sent.

    Returns:
        The header (a JSON object) and the bytes after it.

    Raises:
        TensorError: a bad header length, or a header that is not a JSON object.
    """
    if header_length is None:
        size = len(body)
    else:
        text = header_length.strip()
        if not (text.isascii() and text.isdigit()):
            raise TensorError(f"Inference-Header-Content-Length must be a byte count, not {header_length!r}")
        size = int(text)
        if size > len(body):
            raise TensorError(
                f"Inference-Header-Content-Length is {size} but the body has only {len(body)} bytes"
            )
    try:
        header = json.loads(body[:size])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise TensorError("the inference header is not valid JSON") from None
    if not isinstance(header, dict):
        raise TensorError("the inference header must be a JSON object")
    return header, body[size:]


def parameters(obj: dict[str, Any], where: str) -> dict[str, Any]:
    """The ``parameters`` object of a request, input or output.

    Args:
        obj: the JSON object that may hold them.
        where: names ``obj`` in the error message.

    Returns:
        The parameters, empty if there are none.

    Raises:
        TensorError: ``parameters`` is not an object.
    """
    value = obj.get("parameters", {})
    if not isinstance(value, dict):
        raise TensorError(f"{where}: parameters must be an object")
    return value


def read_inputs(header: dict[str, Any], binary: bytes) -> list[Tensor]:
    """Every tensor of ``header["inputs"]``, its data from JSON ``data`` or from ``binary``.

    Args:
        header: the request's JSON header.
        binary: the binary section after it.

    Returns:
        The tensors, in order.

    Raises:
        TensorError: an input that breaks the protocol, or binary data left over.
    """
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise TensorError("the request needs a non-empty 'inputs' list")
    tensors, offset = [], 0
    for i, spec in enumerate(inputs):
        if not isinstance(spec, dict):
            raise TensorError(f"inputs[{i}] must be an object")
        tensor, offset = _read_input(spec, f"inputs[{i}]", binary, offset)
        tensors.append(tensor)
    if offset != len(binary):
        raise TensorError(f"{len(binary) - offset} bytes of binary data follow the inputs' binary_data_size")
    return tensors


def _read_input(spec: dict[str, Any], where: str, binary: bytes, offset: int) -> tuple[Tensor, int]:
    """One input, and the offset in ``binary`` after its data."""
    name, datatype, shape = spec.get("name"), spec.get("datatype"), spec.get("shape")
    if not isinstance(name, str) or not name:
        raise TensorError(f"{where}: 'name' must be a non-empty string")
    where = f"input {name!r}"
    if not isinstance(datatype, str) or (datatype != BYTES and datatype not in DTYPES):
        raise TensorError(f"{where}: unknown datatype {datatype!r}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise TensorError(f"{where}: 'shape' must be a list of non-negative integers")
    params = parameters(spec, where)
    if any(key.startswith("shared_memory") for key in params):
        raise TensorError(f"{where}: shared memory is not supported")
    size = params.get("binary_data_size")
    if size is None:
        if "data" not in spec:
            raise TensorError(f"{where}: needs 'data' or parameters.binary_data_size")
        return Tensor(
            name, datatype, tuple(shape), tensor_from_json(datatype, shape, spec["data"], where)
        ), offset
    if "data" in spec:
        raise TensorError(f"{where}: has both 'data' and parameters.binary_data_size")
    if type(size) is not int or size < 0:
        raise TensorError(f"{where}: binary_data_size must be a non-negative integer")
    if offset + size > len(binary):
        raise TensorError(
            f"{where}: binary_data_size is {size} but only {len(binary) - offset} bytes of binary data remain"
        )
    raw = binary[offset : offset + size]
    tensor = Tensor(
        name, datatype, tuple(shape), tensor_from_binary(datatype, shape, raw, where), binary=True
    )
    return tensor, offset + size


def tensor_from_binary(datatype: str, shape: list[int], raw: bytes, where: str = "tensor") -> np.ndarray:
    """A tensor from its binary data.

    Args:
        datatype: the OIP datatype.
        shape: the tensor's shape.
        raw: its bytes: little-endian, row-major; BYTES as length-prefixed elements.
        where: names the tensor in error messages.

    Returns:
        The tensor (for BYTES an object array of ``bytes``).

    Raises:
        TensorError: the bytes do not make that shape.
    """
    count = math.prod(shape)
    if datatype == BYTES:
        elements = decode_bytes_elements(raw, where)
        if len(elements) != count:
            raise TensorError(f"{where}: {len(elements)} BYTES elements for shape {list(shape)} ({count})")
        array = np.empty(count, dtype=object)
        array[:] = elements
        return _reshape(array, shape, where)
    dtype = DTYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise TensorError(
            f"{where}: {len(raw)} bytes of binary data, but shape {list(shape)} of {datatype} "
            f"needs {count * dtype.itemsize}"
        )
    return _reshape(np.frombuffer(raw, dtype=dtype), shape, where)


def tensor_from_json(datatype: str, shape: list[int], data: object, where: str = "tensor") -> np.ndarray:
    """A tensor from JSON ``data``.

    Args:
        datatype: the OIP datatype.
        shape: the tensor's shape.
        data: flat or nested (row-major); only its element count must match ``shape``.
        where: names the tensor in error messages.

    Returns:
        The tensor (for BYTES an object array of ``bytes``).

    Raises:
        TensorError: values that are not of ``datatype``, or not as many as ``shape`` holds.
    """
    values = flatten(data)
    count = math.prod(shape)
    if len(values) != count:
        raise TensorError(f"{where}: {len(values)} elements in 'data' for shape {list(shape)} ({count})")
    if datatype == BYTES:
        if not all(isinstance(v, str) for v in values):
            raise TensorError(f"{where}: BYTES data must be strings")
        strings = np.empty(count, dtype=object)
        strings[:] = [v.encode() for v in values]
        return _reshape(strings, shape, where)
    dtype = DTYPES[datatype]
    if dtype.kind == "b":
        valid = all(type(v) is bool for v in values)
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        valid = all(type(v) is int and info.min <= v <= info.max for v in values)
    else:
        valid = all(type(v) in (int, float) for v in values)
    array: np.ndarray | None
    try:
        array = np.array(values, dtype=dtype) if valid else None
    except OverflowError:  # an integer beyond any float
        array = None
    if array is None:
        raise TensorError(f"{where}: 'data' holds values that are not {datatype}")
    return _reshape(array, shape, where)


def _reshape(array: np.ndarray, shape: list[int], where: str) -> np.ndarray:
    """``array`` in ``shape`` (``TensorError`` where numpy cannot make it)."""
    try:  # numpy's own limits (rank, size), e.g. for shape [0, 10**30]
        return array.reshape(shape)
    except ValueError as error:
        raise TensorError(f"{where}: shape {list(shape)} is not possible ({error})") from None


def flatten(data: object) -> list[Any]:
    """Nested JSON lists in row-major order; a scalar is one element. Iterative, so no nesting
    depth can exhaust the stack.

    Args:
        data: parsed JSON.

    Returns:
        Its scalars, in order.
    """
    values: list[Any] = []
    stack: list[Iterator[Any]] = [iter([data])]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            values.append(item)
        else:
            stack.pop()
    return values


def decode_bytes_elements(raw: bytes, where: str = "tensor") -> list[bytes]:
    """BYTES elements from binary data: each a 4-byte little-endian length, then its bytes.

    Args:
        raw: the tensor's binary data.
        where: names the tensor in error messages.

    Returns:
        The elements.

    Raises:
        TensorError: the data ends inside an element.
    """
    elements: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + LENGTH.size > len(raw):
            raise TensorError(f"{where}: BYTES data ends inside an element's 4-byte length")
        (length,) = LENGTH.unpack_from(raw, offset)
        offset += LENGTH.size
        if offset + length > len(raw):
            raise TensorError(
                f"{where}: a BYTES element of {length} bytes overruns the data ({len(raw) - offset} left)"
            )
        elements.append(bytes(raw[offset : offset + length]))
        offset += length
    return elements


def encode_bytes_elements(elements: Iterable[bytes]) -> bytes:
    """BYTES elements as binary data, each a 4-byte little-endian length, then its bytes.

    Args:
        elements: the elements.

    Returns:
        The binary data.
    """
    return b"".join(LENGTH.pack(len(e)) + e for e in elements)


def output_tensor(
    name: str, datatype: str, array: np.ndarray, binary: bool
) -> tuple[dict[str, Any], bytes | None]:
    """The response's JSON for one output, and its raw bytes when sent as binary.

    Args:
        name: the output's name.
        datatype: its OIP datatype.
        array: its values.
        binary: send it as binary data rather than JSON ``data``.

    Returns:
        The output's JSON, and its bytes (None for JSON ``data``).
    """
    meta: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
    if datatype == BYTES:
        elements = [bytes(e) for e in array.reshape(-1)]
        if binary:
            raw = encode_bytes_elements(elements)
        else:
            meta["data"] = [e.decode("utf-8", "replace") for e in elements]
    elif binary:
        raw = np.ascontiguousarray(array, dtype=DTYPES[datatype]).tobytes()
    else:
        meta["data"] = np.asarray(array, dtype=DTYPES[datatype]).reshape(-1).tolist()
    if not binary:
        return meta, None
    meta["parameters"] = {"binary_data_size": len(raw)}
    return meta, raw


def response_body(header: dict[str, Any], raws: list[bytes]) -> tuple[bytes, int | None]:
    """A response body: the JSON header, then any binary data.

    Args:
        header: the response's JSON header.
        raws: the outputs' binary data, in the order of ``header["outputs"]``.

    Returns:
        The body, and the JSON header's length when binary data follows it.
    """
    text = json.dumps(header, separators=(",", ":")).encode()
    if not raws:
        return text, None
    return b"".join([text, *raws]), len(text)
