"""An image model as an Open Inference Protocol model: which tensors it takes and gives.

Inputs, exactly one per request: ``image`` BYTES [B] (encoded image files, decoded as POST
/classify decodes them; in JSON ``data`` each is base64 text) or ``pixels`` UINT8 [B, C, H, W]
(0..255 at the model's size). Outputs: one row per input row, from the /classify answer.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.http.errors import ApiError, bad_request
from service.http.oip.codec import BYTES, Tensor, TensorError, parameters
from service.http.schemas import Classification, OipTensorMetadata
from service.inference.preprocessing import ImageLimits, InputSpec, preprocess, preprocess_pixels
from service.inference.work import Deadline
from training.contract.images.decode import ImageRejected, ImageTooLarge, read_header

IMAGE, PIXELS = "image", "pixels"

# name -> (datatype, one value per class)
OUTPUTS = {
    "class_index": ("INT64", False),
    "label": (BYTES, False),
    "decision_timestep": ("INT64", False),
    "exit_reason": (BYTES, False),
    "scores": ("FP32", True),
    "output_spikes": ("INT64", True),
    "spikes_total": ("INT64", False),
    "synaptic_ops": ("FP64", False),
    "energy_joules": ("FP64", False),
}


def input_metadata(spec: InputSpec) -> list[OipTensorMetadata]:
    """The inputs an image model takes, of which a request sends one.

    Args:
        spec: the model's input spec.

    Returns:
        ``image`` BYTES [-1] and ``pixels`` UINT8 [-1, C, H, W].
    """
    return [
        OipTensorMetadata(name=IMAGE, datatype=BYTES, shape=[-1]),
        OipTensorMetadata(name=PIXELS, datatype="UINT8", shape=[-1, spec.channels, spec.height, spec.width]),
    ]


def output_metadata(classes: int) -> list[OipTensorMetadata]:
    """The outputs, one row per input row.

    Args:
        classes: the model's classes, the width of the per-class outputs.

    Returns:
        Every output of ``OUTPUTS``.
    """
    return [
        OipTensorMetadata(name=name, datatype=datatype, shape=[-1, classes] if per_class else [-1])
        for name, (datatype, per_class) in OUTPUTS.items()
    ]


@dataclass(frozen=True)
class InferRows:
    """A request's rows, checked but not decoded: image files or raw pixels.

    Attributes:
        files: the image files, where the request sent ``image``.
        pixels: uint8 [B, C, H, W], where the request sent ``pixels``; None otherwise.
    """

    files: list[bytes] = field(default_factory=list)
    pixels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.pixels) if self.pixels is not None else len(self.files)


def read_rows(tensors: list[Tensor], spec: InputSpec) -> InferRows:
    """The rows of a request's one input, checked against the model.

    Args:
        tensors: the request's inputs.
        spec: the model's input spec.

    Returns:
        The rows.

    Raises:
        TensorError: not exactly one known input, or one of the wrong type or shape, or no rows.
    """
    names = [t.name for t in tensors]
    unknown = sorted(set(names) - {IMAGE, PIXELS})
    if unknown:
        raise TensorError(f"unknown input {unknown[0]!r}: send either {IMAGE!r} or {PIXELS!r}")
    if len(tensors) != 1:
        raise TensorError(f"send exactly one input, {IMAGE!r} or {PIXELS!r}, not {names}")
    tensor = tensors[0]
    if tensor.name == IMAGE:
        rows = InferRows(files=_image_files(tensor))
    else:
        rows = InferRows(pixels=_pixels(tensor, spec))
    if len(rows) == 0:
        raise TensorError(f"input {tensor.name!r} has no rows")
    return rows


def _image_files(tensor: Tensor) -> list[bytes]:
    """The image files of an ``image`` input (base64-decoded where they came as JSON)."""
    if tensor.datatype != BYTES or len(tensor.shape) != 1:
        raise TensorError(f"input 'image' must be BYTES [B], not {tensor.datatype} {list(tensor.shape)}")
    files = list(tensor.data)
    if tensor.binary:
        return files
    try:  # JSON strings cannot carry image bytes as they are
        return [base64.b64decode(text, validate=True) for text in files]
    except (binascii.Error, ValueError):
        raise TensorError("input 'image' in JSON data must be base64 text, one image file per row") from None


def _pixels(tensor: Tensor, spec: InputSpec) -> np.ndarray:
    """The pixels of a ``pixels`` input, checked to be at the model's size."""
    expected = [-1, spec.channels, spec.height, spec.width]
    shape = list(tensor.shape)
    if tensor.datatype != "UINT8" or len(shape) != 4 or shape[1:] != expected[1:]:
        raise TensorError(f"input 'pixels' must be UINT8 {expected} (B rows), not {tensor.datatype} {shape}")
    return tensor.data


def model_input(
    rows: InferRows,
    spec: InputSpec,
    limits: ImageLimits,
    max_request_pixels: int,
    deadline: Deadline | None = None,
) -> np.ndarray:
    """The rows as the model's input, by the service's own preprocessing (as /classify). Every
    header is read first: the images' pixels together must be within ``max_request_pixels``
    before any is decoded.

    Args:
        rows: the request's rows.
        spec: the model's input spec.
        limits: the service's per-image limits.
        max_request_pixels: the most pixels of all the images together.
        deadline: checked between rows.

    Returns:
        float32 [B, C, H, W].

    Raises:
        ImageRejected: an image refused (its message names the row), or too many pixels.
        DeadlineExceeded: the request's time is up.
    """
    if rows.pixels is not None:
        return preprocess_pixels(rows.pixels, spec)
    total = 0
    for i, data in enumerate(rows.files):
        with _naming_row(i):
            width, height = read_header(data, limits).size
        total += width * height
    if total > max_request_pixels:
        raise ImageTooLarge(
            f"the request's {len(rows.files)} images have {total} pixels together; at most "
            f"{max_request_pixels} are accepted in one request"
        )
    images = []
    for i, data in enumerate(rows.files):
        if deadline is not None:
            deadline.check()
        with _naming_row(i):
            images.append(preprocess(data, spec, limits, deadline))
    return np.stack(images)


@contextmanager
def _naming_row(index: int) -> Iterator[None]:
    """An image refused in row ``index`` says which row it was."""
    try:
        yield
    except ImageRejected as error:
        raise error.prefixed(f"image[{index}]: ") from None


def requested_outputs(header: dict[str, Any]) -> list[tuple[str, bool]]:
    """The outputs to return, in order: those the request lists, else all. An output's
    ``binary_data`` parameter wins over the request's ``binary_data_output``.

    Args:
        header: the request's JSON header.

    Returns:
        (name, as binary) for each output.

    Raises:
        TensorError: an unknown or repeated output, or a bad parameter.
    """
    default = parameters(header, "request").get("binary_data_output", False)
    if type(default) is not bool:
        raise TensorError("parameters.binary_data_output must be true or false")
    listed = header.get("outputs")
    if listed is not None and not isinstance(listed, list):
        raise TensorError("'outputs' must be a list")
    if not listed:
        return [(name, default) for name in OUTPUTS]
    chosen: list[tuple[str, bool]] = []
    for i, output in enumerate(listed):
        name = output.get("name") if isinstance(output, dict) else None
        if not isinstance(name, str) or name not in OUTPUTS:
            raise TensorError(f"outputs[{i}]: unknown output {name!r}; outputs are {list(OUTPUTS)}")
        if any(name == seen for seen, _ in chosen):
            raise TensorError(f"outputs[{i}]: output {name!r} is asked for twice")
        params = parameters(output, f"output {name!r}")
        if "classification" in params:
            raise TensorError(
                "the classification extension is not supported: ask for 'class_index' and 'scores'"
            )
        binary = params.get("binary_data", default)
        if type(binary) is not bool:
            raise TensorError(f"output {name!r}: parameters.binary_data must be true or false")
        chosen.append((name, binary))
    return chosen


def output_arrays(answers: list[Classification]) -> dict[str, np.ndarray]:
    """Every output, one row per answer.

    Args:
        answers: the rows' answers, in order.

    Returns:
        Output name -> its array.
    """
    return {
        "class_index": np.array([a.class_index for a in answers], dtype=np.int64),
        "label": np.array([a.label.encode() for a in answers], dtype=object),
        "decision_timestep": np.array([a.decision_timestep for a in answers], dtype=np.int64),
        "exit_reason": np.array([a.exit_reason.encode() for a in answers], dtype=object),
        "scores": np.array([a.scores for a in answers], dtype=np.float32),
        "output_spikes": np.array([a.spikes.output for a in answers], dtype=np.int64),
        "spikes_total": np.array([a.spikes.total for a in answers], dtype=np.int64),
        "synaptic_ops": np.array([a.energy.synaptic_ops for a in answers], dtype=np.float64),
        "energy_joules": np.array([a.energy.joules for a in answers], dtype=np.float64),
    }


def bad_tensor(error: TensorError) -> ApiError:
    """The 400 ``invalid_tensor`` answer for a protocol error.

    Args:
        error: what broke the protocol.

    Returns:
        The error, for the caller to raise.
    """
    return bad_request(str(error), "invalid_tensor")
