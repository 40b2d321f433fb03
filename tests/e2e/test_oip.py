"""The Open Inference Protocol (KServe v2) endpoints: the wire codec as pure functions, then a
real server driven by the official client, ``tritonclient[http]``."""

from __future__ import annotations

import base64
import gzip
import io
import json
import re
import struct
import time
from importlib.metadata import version

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from PIL import Image
from tritonclient.utils import InferenceServerException, serialize_byte_tensor

from service.http.oip.codec import (
    TensorError,
    decode_bytes_elements,
    encode_bytes_elements,
    output_tensor,
    read_inputs,
    response_body,
    split_body,
)
from tests.helpers import MODEL_STORE, expected_runtime, start_server, stop_server
from training.contract.manifest import list_versions

INFER = "/v2/models/digits/infer"
LATEST = str(list_versions(MODEL_STORE / "digits")[-1])  # what a request naming no version gets
OUTPUT_NAMES = [
    "class_index",
    "label",
    "decision_timestep",
    "exit_reason",
    "scores",
    "output_spikes",
    "spikes_total",
    "synaptic_ops",
    "energy_joules",
]


# --- the codec, on hand-built bodies -------------------------------------------------------------
def _body(header: dict, *raws: bytes) -> tuple[bytes, str]:
    text = json.dumps(header).encode()
    return text + b"".join(raws), str(len(text))


def test_a_bytes_tensor_and_an_int64_tensor_from_binary_data():
    words = b"\x03\x00\x00\x00abc" + b"\x05\x00\x00\x00hello"
    numbers = struct.pack("<3q", 7, -2, 2**40)
    header = {
        "inputs": [
            {
                "name": "words",
                "datatype": "BYTES",
                "shape": [2],
                "parameters": {"binary_data_size": len(words)},
            },
            {"name": "numbers", "datatype": "INT64", "shape": [1, 3], "parameters": {"binary_data_size": 24}},
        ]
    }
    parsed, binary = split_body(*_body(header, words, numbers))
    first, second = read_inputs(parsed, binary)
    assert (first.name, first.datatype, first.shape, first.binary) == ("words", "BYTES", (2,), True)
    assert first.data.tolist() == [b"abc", b"hello"]
    assert (
        second.shape == (1, 3) and second.data.dtype == np.int64 and second.data.tolist() == [[7, -2, 2**40]]
    )
    # what tritonclient itself serializes reads the same
    assert decode_bytes_elements(
        serialize_byte_tensor(np.array([b"abc", b"hello"], dtype=object)).item()
    ) == [b"abc", b"hello"]


def test_json_tensors_flat_or_nested_and_a_header_without_binary_data():
    header = {
        "inputs": [
            {"name": "p", "datatype": "UINT8", "shape": [2, 2], "data": [[0, 255], [7, 8]]},
            {"name": "s", "datatype": "BYTES", "shape": [2], "data": ["a", "bc"]},
        ]
    }
    parsed, binary = split_body(json.dumps(header).encode(), None)
    pixels, strings = read_inputs(parsed, binary)
    assert pixels.data.dtype == np.uint8 and pixels.data.tolist() == [[0, 255], [7, 8]] and not pixels.binary
    assert strings.data.tolist() == [b"a", b"bc"]


@pytest.mark.parametrize(
    "header, raws, header_length, message",
    [
        ({"inputs": []}, [], "999", "body has only"),
        ({"inputs": []}, [], "-1", "byte count"),
        ({"inputs": []}, [], None, "non-empty 'inputs'"),
        ([1, 2], [], None, "JSON object"),
        (
            {
                "inputs": [
                    {"name": "x", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 6}}
                ]
            },
            [b"\x09\x00\x00\x00ab"],
            None,
            "overruns",
        ),
        (
            {
                "inputs": [
                    {"name": "x", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": 6}}
                ]
            },
            [b"\x01\x00\x00\x00a\x00"],
            None,
            "4-byte length",
        ),
        (
            {
                "inputs": [
                    {"name": "x", "datatype": "BYTES", "shape": [3], "parameters": {"binary_data_size": 5}}
                ]
            },
            [b"\x01\x00\x00\x00a"],
            None,
            "1 BYTES elements for shape [3]",
        ),
        (
            {
                "inputs": [
                    {"name": "x", "datatype": "UINT8", "shape": [2, 4], "parameters": {"binary_data_size": 7}}
                ]
            },
            [b"\x00" * 7],
            None,
            "needs 8",
        ),
        (
            {
                "inputs": [
                    {"name": "x", "datatype": "INT64", "shape": [1], "parameters": {"binary_data_size": 16}}
                ]
            },
            [b"\x00" * 8],
            None,
            "only 8 bytes",
        ),
        (
            {
                "inputs": [
                    {"name": "x", "datatype": "UINT8", "shape": [1], "parameters": {"binary_data_size": 1}}
                ]
            },
            [b"\x00\x00"],
            None,
            "1 bytes of binary data follow",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "x",
                        "datatype": "UINT8",
                        "shape": [1],
                        "data": [1],
                        "parameters": {"binary_data_size": 1},
                    }
                ]
            },
            [b"\x00"],
            None,
            "both",
        ),
        ({"inputs": [{"name": "x", "datatype": "UINT8", "shape": [1]}]}, [], None, "needs 'data'"),
        (
            {"inputs": [{"name": "x", "datatype": "UINT8", "shape": [1], "data": [256]}]},
            [],
            None,
            "not UINT8",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "UINT8", "shape": [1], "data": [True]}]},
            [],
            None,
            "not UINT8",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [10**400]}]},
            [],
            None,
            "not FP64",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "UINT8", "shape": [3], "data": [1, 2]}]},
            [],
            None,
            "2 elements",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1], "data": [1]}]},
            [],
            None,
            "must be strings",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "UINT8", "shape": [-1], "data": []}]},
            [],
            None,
            "non-negative",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "UINT8", "shape": [0, 10**30], "data": []}]},
            [],
            None,
            "not possible",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "COMPLEX", "shape": [1], "data": [1]}]},
            [],
            None,
            "unknown datatype",
        ),
        (
            {"inputs": [{"name": "x", "datatype": {}, "shape": [1], "data": [1]}]},
            [],
            None,
            "unknown datatype",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "UINT8", "shape": [1], "data": [1], "parameters": []}]},
            [],
            None,
            "parameters must be an object",
        ),
    ],
)
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
    arrays = {
        "n": ("INT64", np.array([3, -1], dtype=np.int64)),
        "s": ("BYTES", np.array([b"first_spike", b"no_spike"], dtype=object)),
        "f": ("FP32", np.array([[0.5, -2.0]], dtype=np.float32)),
    }
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


# --- a real server, through tritonclient ----------------------------------------------------------
@pytest.fixture(scope="module")
def client(server):
    connection = triton.InferenceServerClient(url=server.url.removeprefix("http://"), network_timeout=120)
    yield connection
    connection.close()


def _pixels(pngs) -> np.ndarray:
    """uint8 [B, 1, 8, 8]: the pixels of the PNG files."""
    return np.stack([np.asarray(Image.open(io.BytesIO(png))) for png in pngs])[:, None]


def _image_input(pngs, binary: bool = True) -> triton.InferInput:
    tensor = triton.InferInput("image", [len(pngs)], "BYTES")
    # JSON carries text only, so there each file is base64
    rows = pngs if binary else [base64.b64encode(png) for png in pngs]
    tensor.set_data_from_numpy(np.array(rows, dtype=object), binary_data=binary)
    return tensor


def _pixels_input(pixels: np.ndarray, binary: bool = True) -> triton.InferInput:
    tensor = triton.InferInput("pixels", list(pixels.shape), "UINT8")
    tensor.set_data_from_numpy(pixels, binary_data=binary)
    return tensor


def _classify(client: httpx.Client, png: bytes, **params) -> dict:
    response = client.post("/classify", content=png, headers={"content-type": "image/png"}, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _rows(result) -> list[dict]:
    """One dict per row with the /classify fields the outputs carry."""
    arrays = {name: result.as_numpy(name) for name in OUTPUT_NAMES}
    return [
        {
            "class_index": int(arrays["class_index"][i]),
            "label": _text(arrays["label"][i]),
            "decision_timestep": int(arrays["decision_timestep"][i]),
            "exit_reason": _text(arrays["exit_reason"][i]),
            "scores": arrays["scores"][i].tolist(),
            "output": arrays["output_spikes"][i].tolist(),
            "total": int(arrays["spikes_total"][i]),
            "synaptic_ops": float(arrays["synaptic_ops"][i]),
            "joules": float(arrays["energy_joules"][i]),
        }
        for i in range(len(arrays["class_index"]))
    ]


def _text(element) -> str:
    """tritonclient gives BYTES elements as bytes from binary data, as str from JSON."""
    return element.decode() if isinstance(element, bytes) else element


def _as_rows(answers: list[dict]) -> list[dict]:
    return [
        {
            "class_index": a["class_index"],
            "label": a["label"],
            "decision_timestep": a["decision_timestep"],
            "exit_reason": a["exit_reason"],
            "scores": a["scores"],
            "output": a["spikes"]["output"],
            "total": a["spikes"]["total"],
            "synaptic_ops": a["energy"]["synaptic_ops"],
            "joules": a["energy"]["joules"],
        }
        for a in answers
    ]


def _assert_same(rows: list[dict], expected: list[dict]) -> None:
    def exact(row):
        return (
            row["class_index"],
            row["label"],
            row["decision_timestep"],
            row["exit_reason"],
            row["output"],
            row["total"],
        )

    assert [exact(r) for r in rows] == [exact(r) for r in expected]
    # batched convolutions may sum in another order: float32 rounding
    assert np.allclose([r["scores"] for r in rows], [r["scores"] for r in expected], rtol=1e-5, atol=1e-5)
    for key in ("synaptic_ops", "joules"):
        assert [r[key] for r in rows] == pytest.approx([r[key] for r in expected], rel=1e-6)


def test_the_server_says_the_package_version(server):
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/v2").json()["version"] == version("firstspike")  # pyproject.toml's
        assert http.get("/openapi.json").json()["info"]["version"] == version("firstspike")


def test_server_and_model_metadata_and_readiness(client, server):
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata() == {
        "name": "firstspike",
        "version": version("firstspike"),
        "extensions": ["binary_tensor_data"],
    }
    shipped = sorted(p.name for p in (MODEL_STORE / "digits").iterdir() if p.name.isdigit())
    metadata = client.get_model_metadata("digits")
    assert metadata["name"] == "digits" and metadata["versions"] == shipped
    assert metadata["platform"] == f"firstspike_{expected_runtime()}"
    assert metadata["inputs"] == [
        {"name": "image", "datatype": "BYTES", "shape": [-1]},
        {"name": "pixels", "datatype": "UINT8", "shape": [-1, 1, 8, 8]},
    ]
    assert [(o["name"], o["datatype"], o["shape"]) for o in metadata["outputs"]] == [
        ("class_index", "INT64", [-1]),
        ("label", "BYTES", [-1]),
        ("decision_timestep", "INT64", [-1]),
        ("exit_reason", "BYTES", [-1]),
        ("scores", "FP32", [-1, 10]),
        ("output_spikes", "INT64", [-1, 10]),
        ("spikes_total", "INT64", [-1]),
        ("synaptic_ops", "FP64", [-1]),
        ("energy_joules", "FP64", [-1]),
    ]
    assert client.get_model_metadata("digits", "1")["inputs"] == metadata["inputs"]
    assert client.is_model_ready("digits") and client.is_model_ready("digits", "1")
    assert not client.is_model_ready("cifar") and not client.is_model_ready("digits", "99")
    assert not client.is_model_ready("digits-dvs")
    with pytest.raises(InferenceServerException) as unknown:
        client.get_model_metadata("cifar")
    assert unknown.value.status() == "404" and "cifar" in unknown.value.message()
    with server.client() as http:
        for path, status, code in [
            ("/v2/models/cifar/ready", 404, "unknown_model"),
            ("/v2/models/digits/versions/99/ready", 404, "unknown_version"),
            ("/v2/models/digits/versions/one", 404, "unknown_version"),
            ("/v2/models/digits-dvs", 400, "wrong_model_kind"),
        ]:
            response = http.get(path)
            assert response.status_code == status, (path, response.text)
            assert response.json()["code"] == code and set(response.json()) == {"error", "code", "request_id"}
        ready = http.get("/v2/models/digits/versions/1/ready")
        assert ready.status_code == 200 and ready.json() == {"name": "digits", "version": "1", "ready": True}


@pytest.mark.parametrize(
    "binary_in, binary_out", [(True, True), (False, False), (True, False), (False, True)]
)
def test_image_and_pixels_inputs_answer_as_classify(client, server, digits_test_pngs, binary_in, binary_out):
    pngs = digits_test_pngs[0][:40]
    with server.client() as http:
        expected = _as_rows([_classify(http, png) for png in pngs])
    outputs = [triton.InferRequestedOutput(name, binary_data=binary_out) for name in OUTPUT_NAMES]
    by_image = client.infer("digits", [_image_input(pngs, binary_in)], outputs=outputs, request_id="batch-7")
    by_pixels = client.infer("digits", [_pixels_input(_pixels(pngs), binary_in)], outputs=outputs)
    for result in (by_image, by_pixels):
        response = result.get_response()
        assert response["model_name"] == "digits" and response["model_version"] == LATEST
        assert [o["name"] for o in response["outputs"]] == OUTPUT_NAMES
        assert all(("parameters" in o) == binary_out for o in response["outputs"])
        _assert_same(_rows(result), expected)
    assert by_image.get_response()["id"] == "batch-7" and "id" not in by_pixels.get_response()


def test_defaults_and_a_chosen_subset_of_outputs(client, server, digits_test_pngs):
    pngs = digits_test_pngs[0][:3]
    everything = client.infer("digits", [_image_input(pngs)], model_version="1")  # no outputs: all, binary
    response = everything.get_response()
    assert response["model_version"] == "1" and [o["name"] for o in response["outputs"]] == OUTPUT_NAMES
    assert all("binary_data_size" in o["parameters"] for o in response["outputs"])
    with server.client() as http:
        _assert_same(_rows(everything), _as_rows([_classify(http, png, version=1) for png in pngs]))
    chosen = [
        triton.InferRequestedOutput("scores", binary_data=False),
        triton.InferRequestedOutput("class_index"),
    ]
    subset = client.infer("digits", [_image_input(pngs)], outputs=chosen).get_response()
    assert [(o["name"], "data" in o) for o in subset["outputs"]] == [("scores", True), ("class_index", False)]
    # gzip request bodies, as tritonclient's request_compression_algorithm sends them
    packed = client.infer(
        "digits", [_image_input(pngs)], model_version="1", request_compression_algorithm="gzip"
    )
    assert packed.as_numpy("class_index").tolist() == everything.as_numpy("class_index").tolist()


def test_errors_reach_tritonclient_with_the_message(client, digits_test_pngs):
    with pytest.raises(InferenceServerException) as stream_model:
        client.infer("digits-dvs", [_image_input(digits_test_pngs[0][:1])])
    assert stream_model.value.status() == "400" and "/classify/stream" in stream_model.value.message()
    with pytest.raises(InferenceServerException) as broken:
        client.infer("digits", [_image_input([b"not an image"])])
    assert broken.value.status() == "400" and "image[0]" in broken.value.message()


def _pixels_header(shape, size=None, datatype="UINT8", **extra) -> dict:
    spec = {
        "name": "pixels",
        "datatype": datatype,
        "shape": shape,
        "parameters": {"binary_data_size": size if size is not None else int(np.prod(shape))},
    }
    return {"inputs": [spec], **extra}


def _malformed_cases(png: bytes):
    """(name, path, body, headers, status, code): raw posts, the binary cases by hand."""
    one = _pixels_header([1, 1, 8, 8])
    pixels = b"\x10" * 64
    image = {
        "name": "image",
        "datatype": "BYTES",
        "shape": [1],
        "parameters": {"binary_data_size": 4 + len(png)},
    }
    framed = struct.pack("<I", len(png)) + png

    def binary(header, *raws, length=None):
        text = json.dumps(header).encode()
        return text + b"".join(raws), {
            "Inference-Header-Content-Length": str(len(text) if length is None else length)
        }

    def plain(header):
        return json.dumps(header).encode(), {"content-type": "application/json"}

    return [
        ("header length beyond the body", INFER, *binary(one, pixels, length=10_000), 400, "invalid_tensor"),
        ("header length not a number", INFER, *binary(one, pixels, length="12abc"), 400, "invalid_tensor"),
        (
            "header not JSON",
            INFER,
            b"\x89PNG\r\n\x1a\n" + pixels,
            {"Inference-Header-Content-Length": "8"},
            400,
            "invalid_tensor",
        ),
        ("empty body", INFER, b"", {}, 400, "invalid_tensor"),
        ("JSON not an object", INFER, *plain([1, 2, 3]), 400, "invalid_tensor"),
        ("JSON nested beyond the stack", INFER, b"[" * 100_000 + b"]" * 100_000, {}, 400, "invalid_tensor"),
        ("no inputs", INFER, *plain({"inputs": []}), 400, "invalid_tensor"),
        (
            "both inputs",
            INFER,
            *binary({"inputs": [one["inputs"][0], image]}, pixels, framed),
            400,
            "invalid_tensor",
        ),
        (
            "unknown input",
            INFER,
            *plain({"inputs": [{"name": "x", "datatype": "UINT8", "shape": [1], "data": [1]}]}),
            400,
            "invalid_tensor",
        ),
        (
            "image as UINT8",
            INFER,
            *binary({"inputs": [{**image, "datatype": "UINT8"}]}, framed),
            400,
            "invalid_tensor",
        ),
        (
            "image of shape [1, 1]",
            INFER,
            *binary({"inputs": [{**image, "shape": [1, 1]}]}, framed),
            400,
            "invalid_tensor",
        ),
        (
            "pixels at 28x28",
            INFER,
            *binary(_pixels_header([1, 1, 28, 28]), b"\x00" * 784),
            400,
            "invalid_tensor",
        ),
        (
            "pixels as FP32",
            INFER,
            *binary(_pixels_header([1, 1, 8, 8], size=256, datatype="FP32"), b"\x00" * 256),
            400,
            "invalid_tensor",
        ),
        (
            "pixels size not the shape's",
            INFER,
            *binary(_pixels_header([2, 1, 8, 8], size=64), pixels),
            400,
            "invalid_tensor",
        ),
        (
            "pixels out of range",
            INFER,
            *plain(
                {
                    "inputs": [
                        {"name": "pixels", "datatype": "UINT8", "shape": [1, 1, 8, 8], "data": [300] * 64}
                    ]
                }
            ),
            400,
            "invalid_tensor",
        ),
        ("zero rows", INFER, *binary(_pixels_header([0, 1, 8, 8])), 400, "invalid_tensor"),
        (
            "BYTES element overruns",
            INFER,
            *binary({"inputs": [image]}, struct.pack("<I", len(png) + 50) + png),
            400,
            "invalid_tensor",
        ),
        (
            "BYTES count not the shape's",
            INFER,
            *binary({"inputs": [{**image, "shape": [2]}]}, framed),
            400,
            "invalid_tensor",
        ),
        ("bytes after the inputs", INFER, *binary(one, pixels, b"extra"), 400, "invalid_tensor"),
        (
            "not an image",
            INFER,
            *binary(
                {"inputs": [{**image, "parameters": {"binary_data_size": 9}}]},
                struct.pack("<I", 5) + b"hello",
            ),
            400,
            "undecodable_image",
        ),
        (
            "JSON image not base64",
            INFER,
            *plain({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["@@@"]}]}),
            400,
            "invalid_tensor",
        ),
        (
            "unknown output",
            INFER,
            *binary({**one, "outputs": [{"name": "probabilities"}]}, pixels),
            400,
            "invalid_tensor",
        ),
        (
            "output name a list",
            INFER,
            *binary({**one, "outputs": [{"name": ["scores"]}]}, pixels),
            400,
            "invalid_tensor",
        ),
        (
            "datatype an object",
            INFER,
            *plain({"inputs": [{"name": "image", "datatype": {}, "shape": [], "data": None}]}),
            400,
            "invalid_tensor",
        ),
        (
            "binary_data not a bool",
            INFER,
            *binary({**one, "outputs": [{"name": "scores", "parameters": {"binary_data": "yes"}}]}, pixels),
            400,
            "invalid_tensor",
        ),
        (
            "classification extension",
            INFER,
            *binary({**one, "outputs": [{"name": "scores", "parameters": {"classification": 3}}]}, pixels),
            400,
            "invalid_tensor",
        ),
        ("id not a string", INFER, *binary({**one, "id": 7}, pixels), 400, "invalid_tensor"),
        (
            "too many rows",
            INFER,
            *binary(_pixels_header([300, 1, 8, 8]), b"\x00" * 300 * 64),
            413,
            "too_many_rows",
        ),
        (
            "786,432 empty image files",
            INFER,
            *binary(
                {"inputs": [{**image, "shape": [3 * 2**18], "parameters": {"binary_data_size": 3 * 2**20}}]},
                b"\x00" * 3 * 2**20,
            ),
            413,
            "too_many_rows",
        ),
        (
            "oversized body",
            INFER,
            *binary(one, pixels, b"\x00" * (5 * 1024 * 1024)),
            413,
            "payload_too_large",
        ),
        (
            "gzip bomb",
            INFER,
            gzip.compress(b" " * (6 * 1024 * 1024)),
            {"content-encoding": "gzip"},
            413,
            "payload_too_large",
        ),
        (
            "unknown content encoding",
            INFER,
            *plain(one)[:1],
            {"content-encoding": "br"},
            415,
            "unsupported_content_encoding",
        ),
        ("unknown model", "/v2/models/cifar/infer", *binary(one, pixels), 404, "unknown_model"),
        (
            "unknown version",
            "/v2/models/digits/versions/9/infer",
            *binary(one, pixels),
            404,
            "unknown_version",
        ),
        (
            "version not a number",
            "/v2/models/digits/versions/latest/infer",
            *binary(one, pixels),
            404,
            "unknown_version",
        ),
        ("model name with ..", "/v2/models/..digits/infer", *binary(one, pixels), 400, "invalid_model_name"),
        ("event-stream model", "/v2/models/digits-dvs/infer", *binary(one, pixels), 400, "wrong_model_kind"),
    ]


def test_malformed_requests_get_4xx_with_the_error_body_and_the_server_stays_ready(server, digits_test_pngs):
    png = digits_test_pngs[0][0]
    with server.client() as http:
        for name, path, body, headers, status, code in _malformed_cases(png):
            response = http.post(path, content=body, headers=headers)
            assert response.status_code == status, (name, response.status_code, response.text)
            error = response.json()
            assert set(error) == {"error", "code", "request_id"} and error["error"], name
            assert error["code"] == code, (name, error)
            assert error["request_id"] == response.headers["x-request-id"], name
            assert http.get("/v2/health/ready").status_code == 200, name
        assert http.get("/v2/models/digits/ready").status_code == 200
        good, headers = _body(_pixels_header([1, 1, 8, 8]), _pixels([png]).tobytes())
        assert (
            http.post(INFER, content=good, headers={"Inference-Header-Content-Length": headers}).status_code
            == 200
        )


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", ["32", "1"])
def test_a_batch_of_rows_gets_each_rows_solo_answer(
    tmp_path, mixed_store, mixed_indices, digits_test_pngs, batch_size
):
    """Rows deciding at different timesteps: with the batcher each row leaves at its own first
    spike (exit compaction: timestep-rows computed = the sum of decision timesteps); without one
    they run one by one."""
    pngs = [digits_test_pngs[0][i] for i in mixed_indices[::2][:30]]
    server = start_server(tmp_path, env={"FIRSTSPIKE_MAX_BATCH_SIZE": batch_size}, store=mixed_store)
    try:
        client = triton.InferenceServerClient(url=server.url.removeprefix("http://"), network_timeout=120)
        alone = [_rows(client.infer("mixed", [_image_input([png])]))[0] for png in pngs]
        with server.client() as http:
            before = http.get("/metrics").text
            together = _rows(client.infer("mixed", [_image_input(pngs)]))
            after = http.get("/metrics").text
        client.close()
    finally:
        stop_server(server)
    assert len({r["decision_timestep"] for r in alone}) >= 3
    _assert_same(together, alone)
    rows_stepped = _metric(after, "firstspike_batch_size_sum") - _metric(before, "firstspike_batch_size_sum")
    steps = _metric(after, "firstspike_batch_size_count") - _metric(before, "firstspike_batch_size_count")
    assert rows_stepped == sum(r["decision_timestep"] for r in alone)
    if batch_size == "32":  # the 30 rows started together and stepped as one batch
        assert steps == max(r["decision_timestep"] for r in alone)
    else:
        assert steps == rows_stepped


def _metric(text: str, name: str, **labels) -> float:
    for line in text.splitlines():
        if (line.startswith(name + "{") or line.startswith(name + " ")) and all(
            f'{key}="{value}"' in line for key, value in labels.items()
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_oip_requests_under_their_endpoint(client, server, digits_test_pngs):
    pngs = digits_test_pngs[0][40:52]
    with server.client() as http:
        before = http.get("/metrics").text
        results = [client.infer("digits", [_image_input(pngs[i : i + 4])]) for i in range(0, 12, 4)]
        results.append(client.infer("digits", [_pixels_input(_pixels(pngs[:2]))], model_version=LATEST))
        http.post(INFER, content=b"{}", headers={"content-type": "application/json"})
        after = http.get("/metrics").text
    rows = [r for result in results for r in _rows(result)]
    labels = {"model": "digits", "version": LATEST, "endpoint": "/v2/infer"}

    def delta(name, **extra):
        return _metric(after, name, **labels, **extra) - _metric(before, name, **labels, **extra)

    assert delta("firstspike_requests_total", status="200") == 4  # both infer paths, one label
    assert delta("firstspike_requests_total", status="400") == 1
    assert delta("firstspike_decision_timestep_count") == 14  # one decision per row
    assert delta("firstspike_decision_latency_seconds_count") == 14
    assert (
        delta("firstspike_exits_total", reason="first_spike")
        + delta("firstspike_exits_total", reason="no_spike")
        == 14
    )
    assert delta("firstspike_spikes_per_request_sum") == sum(r["total"] for r in rows)
    assert delta("firstspike_decision_timestep_sum") == sum(r["decision_timestep"] for r in rows)
    assert delta("firstspike_energy_joules_count") == 14
    assert 'endpoint="/v2/models/{name}/infer"' not in after
    assert _metric(after, "firstspike_inflight_requests", endpoint="/v2/infer") == 0


def test_timeout_row_limit_and_draining_as_for_classify(tmp_path, digits_test_pngs):
    import signal

    pngs = digits_test_pngs[0][:9]
    server = start_server(
        tmp_path,
        env={
            "FIRSTSPIKE_REQUEST_TIMEOUT_S": "0.000001",
            "FIRSTSPIKE_MAX_QUEUE": "8",
            "FIRSTSPIKE_DRAIN_DELAY_S": "30",
            "FIRSTSPIKE_DEFAULT_MODELS": "digits",
        },
    )
    try:
        client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
        with pytest.raises(InferenceServerException) as late:
            client.infer("digits", [_image_input(pngs[:8])])
        assert late.value.status() == "504"
        with pytest.raises(InferenceServerException) as many:
            client.infer("digits", [_image_input(pngs)])
        assert many.value.status() == "413" and "at most 8" in many.value.message()
        server.process.send_signal(signal.SIGTERM)  # answers 503 for the drain delay, then closes
        deadline = time.monotonic() + 10
        while client.is_server_ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not client.is_model_ready("digits")
        with pytest.raises(InferenceServerException) as draining:
            client.infer("digits", [_image_input(pngs[:1])])
        assert draining.value.status() == "503"
        with server.client() as http:
            assert http.get("/v2/models/digits/ready").json()["code"] == "draining"
        client.close()
    finally:
        stop_server(server)
