"""The Open Inference Protocol (KServe v2) wire codec as pure functions."""

from __future__ import annotations

import json
import re
import struct

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import serialize_byte_tensor

from service.oip.codec import (TensorError, decode_bytes_elements, encode_bytes_elements, output_tensor, read_inputs,
                               response_body, split_body)


# --- the codec, on hand-built bodies -------------------------------------------------------------
def _body(header: dict, *raws: bytes) -> tuple[bytes, str]:
    text = json.dumps(header).encode()
    return text + b"".join(raws), str(len(text))


def test_a_bytes_tensor_and_an_int64_tensor_from_binary_data():
    words = b"\x03\x00\x00\x00abc" + b"\x05\x00\x00\x00hello"
    numbers = struct.pack("<3q", 7, -2, 2**40)
    header = {"inputs": [
        {"name": "words", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": len(words)}},
        {"name": "numbers", "datatype": "INT64", "shape": [1, 3], "parameters": {"binary_data_size": 24}},
    ]}
    parsed, binary = split_body(*_body(header, words, numbers))
    first, second = read_inputs(parsed, binary)
    assert (first.name, first.datatype, first.shape, first.binary) == ("words", "BYTES", (2,), True)
    assert first.data.tolist() == [b"abc", b"hello"]
    assert second.shape == (1, 3) and second.data.dtype == np.int64 and second.data.tolist() == [[7, -2, 2**40]]
    # what tritonclient itself serializes reads the same
    assert decode_bytes_elements(serialize_byte_tensor(np.array([b"abc", b"hello"], dtype=object)).item()) == \
        [b"abc", b"hello"]


def test_json_tensors_flat_or_nested_and_a_header_without_binary_data():
    header = {"inputs": [{"name": "p", "datatype": "UINT8", "shape": [2, 2], "data": [[0, 255], [7, 8]]},
                         {"name": "s", "datatype": "BYTES", "shape": [2], "data": ["a", "bc"]}]}
    parsed, binary = split_body(json.dumps(header).encode(), None)
    pixels, strings = read_inputs(parsed, binary)
    assert pixels.data.dtype == np.uint8 and pixels.data.tolist() == [[0, 255], [7, 8]] and not pixels.binary
    assert strings.data.tolist() == [b"a", b"bc"]


@pytest.mark.parametrize("header, raws, header_length, message", [
    ({"inputs": []}, [], "999", "body has only"),
    ({"inputs": []}, [], "-1", "byte count"),
    ({"inputs": []}, [], None, "non-empty 'inputs'"),
    ([1, 2], [], None, "JSON object"),
    ({"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 6}}]},
     [b"\x09\x00\x00\x00ab"], None, "overruns"),
    ({"inputs": [{"name": "x", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": 6}}]},
     [b"\x01\x00\x00\x00a\x00"], None, "4-byte length"),
    ({"inputs": [{"name": "x", "datatype": "BYTES", "shape": [3], "parameters": {"binary_data_size": 5}}]},
     [b"\x01\x00\x00\x00a"], None, "1 BYTES elements for shape [3]"),
    ({"inputs": [{"name": "x", "datatype": "UINT8", "shape": [2, 4], "parameters": {"binary_data_size": 7}}]},
     [b"\x00" * 7], None, "needs 8"),
    ({"inputs": [{"name": "x", "datatype": "INT64", "shape": [1], "parameters": {"binary_data_size": 16}}]},
     [b"\x00" * 8], None, "only 8 bytes"),
    ({"inputs": [{"name": "x", "datatype": "UINT8", "shape": [1], "parameters": {"binary_data_size": 1}}]},
     [b"\x00\x00"], None, "1 bytes of binary data follow"),
    ({"inputs": [{"name": "x", "datatype": "UINT8", "shape": [1], "data": [1],
                  "parameters": {"binary_data_size": 1}}]}, [b"\x00"], None, "both"),
    ({"inputs": [{"name": "x", "datatype": "UINT8", "shape": [1]}]}, [], None, "needs 'data'"),
    ({"inputs": [{"name": "x", "datatype": "UINT8", "shape": [1], "data": [256]}]}, [], None, "not UINT8"),
    ({"inputs": [{"name": "x", "datatype": "UINT8", "shape": [1], "data": [True]}]}, [], None, "not UINT8"),
    ({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [10**400]}]}, [], None, "not FP64"),
    ({"inputs": [{"name": "x", "datatype": "UINT8", "shape": [3], "data": [1, 2]}]}, [], None, "2 elements"),
    ({"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1], "data": [1]}]}, [], None, "must be strings"),
    ({"inputs": [{"name": "x", "datatype": "UINT8", "shape": [-1], "data": []}]}, [], None, "non-negative"),
    ({"inputs": [{"name": "x", "datatype": "UINT8", "shape": [0, 10**30], "data": []}]}, [], None, "not possible"),
    ({"inputs": [{"name": "x", "datatype": "COMPLEX", "shape": [1], "data": [1]}]}, [], None, "unknown datatype"),
    ({"inputs": [{"name": "x", "datatype": "UINT8", "shape": [1], "data": [1], "parameters": []}]}, [], None,
     "parameters must be an object"),
])
def test_broken_bodies_raise_tensor_error(header, raws, header_length, message):
    text = json.dumps(header).encode()
    length = header_length if header_length is not None else (str(len(text)) if raws else None)
    with pytest.raises(TensorError, match=re.escape(message)):
        read_inputs(*split_body(text + b"".join(raws), length))


def test_header_that_is_not_json_or_nested_beyond_any_stack():
    with pytest.raises(TensorError, match="not valid JSON"):
        split_body(b"\x89PNG\r\n", "4")
    with pytest.raises(TensorError, match="not valid JSON"):
        split_body(b"[" * 200_000 + b"]" * 200_000, None)
    deep = {"inputs": [{"name": "x", "datatype": "UINT8", "shape": [1], "data": 1}]}
    text = json.dumps(deep).replace('"data": 1', '"data": ' + "[" * 900 + "1" + "]" * 900)
    (tensor,) = read_inputs(*split_body(text.encode(), None))  # nesting is only row-major structure
    assert tensor.data.tolist() == [1]


def test_outputs_encode_as_tritonclient_decodes_them():
    arrays = {"n": ("INT64", np.array([3, -1], dtype=np.int64)),
              "s": ("BYTES", np.array([b"first_spike", b"no_spike"], dtype=object)),
              "f": ("FP32", np.array([[0.5, -2.0]], dtype=np.float32))}
    metas, raws = [], []
    for name, (datatype, array) in arrays.items():
        meta, raw = output_tensor(name, datatype, array, binary=name != "f")
        metas.append(meta)
        raws += [raw] if raw is not None else []
    assert metas[0]["parameters"] == {"binary_data_size": 16} and metas[2]["data"] == [0.5, -2.0]
    assert raws[1] == encode_bytes_elements([b"first_spike", b"no_spike"])
    body, header_length = response_body({"outputs": metas}, raws)
    result = triton.InferResult.from_response_body(body, header_length=header_length)
    assert result.as_numpy("n").tolist() == [3, -1]
    assert result.as_numpy("s").tolist() == [b"first_spike", b"no_spike"]
    assert result.as_numpy("f").tolist() == [[0.5, -2.0]]
    assert response_body({"outputs": []}, []) == (b'{"outputs":[]}', None)
