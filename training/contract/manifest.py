"""The model store's manifest, typed, and reading and verifying stored versions.

``read_manifest`` parses ``manifest.json`` once into a frozen ``Manifest`` and refuses a
malformed one with a one-line ``ModelStoreError`` that names the file and the first problem.
Sections the format can grow keep keys this release does not know (``extra="allow"``), so a
version written by an older or a newer release parses too; ``Manifest.as_stored`` is the JSON
object as it was written. Standard library and pydantic only: no torch, no numpy.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    StrictBool,
    StrictInt,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from training.contract.decisions import FIRST_SPIKE, TIME_MEAN

MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
MANIFEST_FORMAT = "firstspike-model/1"
NAME_REGEX = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
NAME_PATTERN = re.compile(NAME_REGEX)
SHA256_REGEX = r"^[0-9a-f]{64}$"

Count = Annotated[StrictInt, Field(ge=0)]
Positive = Annotated[StrictInt, Field(ge=1)]


class ModelStoreError(Exception):
    """A model version that is missing, malformed or whose files do not match the manifest."""


def is_valid_name(name: str) -> bool:
    """Whether ``name`` may name a model: a single path component, never ``.`` or ``..``.

    Args:
        name: the candidate; letters, digits, ``_``, ``-`` and ``.``, up to 64, the first a
            letter or digit.

    Returns:
        True if it matches ``NAME_REGEX``.
    """
    return bool(NAME_PATTERN.match(name))


class _Open(BaseModel):
    """A section the format may grow: keys this release does not know are kept, not refused."""

    model_config = ConfigDict(frozen=True, extra="allow")


class FileEntry(_Open):
    """A stored file's sha256 and size in bytes (an entry of ``files``)."""

    sha256: Annotated[str, Field(pattern=SHA256_REGEX)]
    bytes: Count


class Architecture(_Open):
    """The architecture's name and its builder's keyword arguments."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class NeuronParameters(_Open):
    """The LIF parameters of the hidden layers: leak tau of (2), threshold V_th of (3)-(4)."""

    leak: float
    threshold: float


class Normalization(_Open):
    """x = (pixel / pixel_max - mean) / std per channel."""

    pixel_max: float
    mean: tuple[float, ...]
    std: tuple[float, ...]


class ImageInput(_Open):
    """The input of an image model: its size, normalisation and resize policy."""

    channels: Positive
    height: Positive
    width: Positive
    normalization: Normalization
    # The resize policy's fields (``training.contract.images.resize.ResizePolicy`` checks them);
    # None: no policy recorded, the image is served with ``LEGACY_RESIZE``.
    resize: dict[str, Any] | None = None


class EventInput(_Open):
    """The sensor a ``dvs-events/1`` model was trained on and the duration of one timestep."""

    sensor_width: Positive
    sensor_height: Positive
    polarities: Positive
    bin_us: Positive


EVENT_INPUT_KEYS = frozenset(EventInput.model_fields)


def _input_tag(value: Any) -> str:
    """Which input a manifest's ``input`` describes: any event key makes it an event input, so
    that a missing one is named as such."""
    if isinstance(value, (ImageInput, EventInput)):
        return "events" if isinstance(value, EventInput) else "image"
    return "events" if isinstance(value, Mapping) and not EVENT_INPUT_KEYS.isdisjoint(value) else "image"


ModelInput = Annotated[
    Annotated[ImageInput, Tag("image")] | Annotated[EventInput, Tag("events")], Discriminator(_input_tag)
]


class SpikingLayer(_Open):
    """A spiking layer and its neurons (for the firing rate)."""

    name: str
    neurons: Count


class SynapticLayer(_Open):
    """One row of the energy table (``training.contract.energy``)."""

    name: str
    kind: Literal["mac", "sop"]
    flops: Annotated[float, Field(ge=0)]
    input_neurons: Positive
    static: StrictBool  # driven once by an analog input (the encoder), not every timestep


class Layers(_Open):
    """The layers as the firing rate, the energy estimate and the runtimes need them."""

    spiking: tuple[SpikingLayer, ...]
    output_neurons: Positive
    synaptic: tuple[SynapticLayer, ...]
    hidden_state_shapes: tuple[tuple[Positive, ...], ...]


class NeuromorphicCoefficients(_Open):
    """The static and dynamic coefficients of (17) for one neuromorphic chip."""

    static: float
    dynamic: float


class EnergyConstants(_Open):
    """The energy per operation of (15)-(16), in joules, and the coefficients of (17) by chip."""

    e_mac_joules: float
    e_ac_joules: float
    neuromorphic: dict[str, NeuromorphicCoefficients] = Field(default_factory=dict)


class Evaluation(_Open):
    """The version's evaluation at export; the figures beyond these are kept as they are."""

    dataset: str
    accuracy: float
    split: str | None = None
    samples: Count | None = None
    mean_decision_timestep: float | None = None
    firing_rate: float | None = None
    # decision timestep ("1" to "T") -> how many inputs were decided then
    decision_timestep_counts: dict[str, Count] = Field(default_factory=dict)


class OnnxGraph(_Open):
    """One exported graph: its file and the names of its inputs and outputs."""

    file: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


class OnnxGraphs(_Open):
    """The single-timestep graphs by role; roles beyond these are graphs too."""

    __pydantic_extra__: dict[str, OnnxGraph] = Field(init=False)

    opset: Positive
    step: OnnxGraph
    encoder: OnnxGraph | None = None  # runs before step in versions whose step takes features
    first_step: OnnxGraph | None = None  # encoder and timestep 1 from rest in one graph
    first_decision: OnnxGraph | None = None  # first_step without the state: decisions only

    def by_role(self) -> dict[str, OnnxGraph]:
        """Every graph, by role."""
        known = {role: getattr(self, role) for role in ("encoder", "step", "first_step", "first_decision")}
        graphs: dict[str, OnnxGraph] = {role: graph for role, graph in known.items() if graph is not None}
        return {**graphs, **(self.model_extra or {})}


class Manifest(_Open):
    """A stored version's ``manifest.json``: everything needed to serve it without training code."""

    _stored: dict[str, Any] = PrivateAttr(default_factory=dict)

    format: str
    name: str
    version: Positive
    kind: Literal["image", "events"]
    created_at: str | None = None
    architecture: Architecture
    network: dict[str, Any] | None = None  # the network spec the torch runtime rebuilds
    coding: Literal["latency", "rate", "ann"] = "latency"
    encoder: str | None = None
    timesteps: Positive
    neuron: NeuronParameters
    input: ModelInput
    labels: Annotated[tuple[str, ...], Field(min_length=1)]
    layers: Layers
    energy: EnergyConstants
    evaluation: Evaluation
    training: dict[str, Any] | None = None
    files: dict[str, FileEntry]
    onnx: OnnxGraphs | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _keep_stored(cls, data: Any, handler: ModelWrapValidatorHandler[Manifest]) -> Manifest:
        if isinstance(data, Mapping) and data.get("format", MANIFEST_FORMAT) != MANIFEST_FORMAT:
            # Another format's fields mean other things: say so before anything else.
            raise ValueError(f"format {data['format']!r}, expected {MANIFEST_FORMAT!r}")
        manifest = handler(data)
        if isinstance(data, Mapping):
            manifest._stored = copy.deepcopy(dict(data))
        return manifest

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        if not is_valid_name(name):
            raise ValueError(f"{name!r} is not a model name (letters, digits, '_', '-', '.'; up to 64)")
        return name

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if self.kind == "image" and not isinstance(self.input, ImageInput):
            raise ValueError("kind 'image' but 'input' describes an event sensor")
        if self.kind == "events" and not isinstance(self.input, EventInput):
            raise ValueError("kind 'events' but 'input' describes images")
        if len(self.labels) != self.layers.output_neurons:
            raise ValueError(f"{len(self.labels)} labels for {self.layers.output_neurons} output neurons")
        for relative in self.named_files():
            if relative not in self.files:
                raise ValueError(f"{relative} is used but not listed in 'files' (with its sha256)")
        return self

    def as_stored(self) -> dict[str, Any]:
        """A copy of the JSON object this manifest was validated from, exactly as stored."""
        return copy.deepcopy(self._stored)

    def named_files(self) -> list[str]:
        """Every file a reader opens: the weights and each ONNX graph."""
        graphs = self.onnx.by_role().values() if self.onnx is not None else ()
        return [WEIGHTS, *(graph.file for graph in graphs)]

    @property
    def name_and_version(self) -> str:
        """``digits/3``."""
        return f"{self.name}/{self.version}"

    @property
    def decoding(self) -> str:
        """How the model decides: at the first output spike (latency coding), else by the
        time-mean output current at T."""
        return FIRST_SPIKE if self.coding == "latency" else TIME_MEAN

    @property
    def image_input(self) -> ImageInput:
        """The input of an image model (``ValueError`` for an event model)."""
        if isinstance(self.input, ImageInput):
            return self.input
        raise ValueError(f"{self.name_and_version} takes {self.kind}, not images")

    @property
    def event_input(self) -> EventInput:
        """The input of an event model (``ValueError`` for an image model)."""
        if isinstance(self.input, EventInput):
            return self.input
        raise ValueError(f"{self.name_and_version} takes {self.kind}, not events")


def parse_manifest(stored: object, source: str | Path) -> Manifest:
    """Validate a manifest's JSON value.

    Args:
        stored: the parsed ``manifest.json`` (or the dict an export is about to write).
        source: where it comes from, for the message.

    Returns:
        The typed manifest, which keeps ``stored`` for ``Manifest.as_stored``.

    Raises:
        ModelStoreError: one line naming ``source`` and the first problem.
    """
    if not isinstance(stored, dict):
        raise ModelStoreError(f"{source}: must hold a JSON object")
    try:
        return Manifest.model_validate(stored)
    except ValidationError as error:
        raise ModelStoreError(f"{source}: {first_problem(error)}") from None


def first_problem(error: ValidationError) -> str:
    """One line for a manifest's validation error.

    Args:
        error: pydantic's error for the manifest.

    Returns:
        Every missing top-level key, or else the first problem where it lies
        (``files['step.onnx'].sha256: ...``).
    """
    problems = error.errors(include_url=False)
    missing = [
        str(problem["loc"][0])
        for problem in problems
        if problem["type"] == "missing" and len(problem["loc"]) == 1
    ]
    if missing:
        return f"missing keys {', '.join(missing)}"
    problem = problems[0]
    message = str(problem["msg"]).removeprefix("Value error, ")
    where = _location(problem["loc"])
    return f"{where}: {message}" if where else message


def _location(loc: tuple[int | str, ...]) -> str:
    parts = []
    for index, part in enumerate(loc):
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part.isidentifier():
            parts.append(part if index == 0 else f".{part}")
        else:
            parts.append(f"[{part!r}]")
    return "".join(parts)


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, read in blocks.

    Args:
        path: the file.

    Returns:
        The hex digest.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_versions(model_dir: Path) -> list[int]:
    """The versions of a model folder.

    Args:
        model_dir: the model's folder (``store/digits``).

    Returns:
        Its positive integer version folders, ascending; none if it is not a folder.

    Raises:
        ModelStoreError: the folder cannot be listed.
    """
    try:
        if not model_dir.is_dir():
            return []
        return sorted(
            int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit() and int(p.name) > 0
        )
    except OSError as error:
        raise ModelStoreError(f"{model_dir}: cannot be listed ({error.strerror or error})") from None


def discover(store_root: Path) -> dict[str, list[int]]:
    """Every model in the store with its versions.

    Args:
        store_root: the model store's root folder.

    Returns:
        Each valid model name that has a version, with its versions ascending.

    Raises:
        ModelStoreError: the root is not a folder or cannot be listed.
    """
    store_root = Path(store_root)
    if not store_root.is_dir():
        raise ModelStoreError(f"model store {store_root} is not a directory")
    found: dict[str, list[int]] = {}
    try:
        folders = sorted(store_root.iterdir())
    except OSError as error:
        raise ModelStoreError(
            f"model store {store_root} cannot be listed ({error.strerror or error})"
        ) from None
    for model_dir in folders:
        if model_dir.is_dir() and is_valid_name(model_dir.name):
            versions = list_versions(model_dir)
            if versions:
                found[model_dir.name] = versions
    return found


def resolve_version_dir(path: Path) -> Path:
    """The version folder that ``path`` names.

    Args:
        path: a version folder (``store/digits/1``) or a model folder (``store/digits``).

    Returns:
        ``path`` itself if it holds a manifest, else the model folder's highest version.

    Raises:
        ModelStoreError: ``path`` is neither.
    """
    path = Path(path)
    if (path / MANIFEST).exists():
        return path
    versions = list_versions(path)
    if versions:
        return path / str(versions[-1])
    raise ModelStoreError(
        f"{path} is neither a model version (no {MANIFEST}) nor a model folder with versions"
    )


def read_manifest(version_dir: Path, verify: bool = True) -> Manifest:
    """Parse and validate a version's ``manifest.json``.

    Args:
        version_dir: the version folder (``store/digits/1``).
        verify: also check every listed file's size and sha256.

    Returns:
        The typed manifest.

    Raises:
        ModelStoreError: the manifest is missing, unreadable or malformed, or a file does not
            match it.
    """
    version_dir = Path(version_dir)
    manifest_path = version_dir / MANIFEST
    if not manifest_path.is_file():
        raise ModelStoreError(f"{version_dir}: no {MANIFEST}")
    try:
        stored = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise ModelStoreError(f"{manifest_path}: not valid JSON ({error})") from None
    except OSError as error:
        raise ModelStoreError(f"{manifest_path}: cannot be read ({error.strerror or error})") from None
    manifest = parse_manifest(stored, manifest_path)
    if verify:
        verify_files(version_dir, manifest)
    return manifest


def verify_files(version_dir: Path, manifest: Manifest) -> None:
    """Check the files a manifest lists against the version folder.

    Each must lie in ``version_dir`` and match its size and sha256.

    Args:
        version_dir: the version folder.
        manifest: its manifest.

    Raises:
        ModelStoreError: naming the first file that does not.
    """
    for relative, expected in manifest.files.items():
        path = (version_dir / relative).resolve()
        if version_dir.resolve() not in path.parents:
            raise ModelStoreError(f"{version_dir}: manifest lists {relative!r} outside the version folder")
        if not path.is_file():
            raise ModelStoreError(f"{version_dir}: {relative} is listed in the manifest but missing")
        try:
            size = path.stat().st_size
            digest = sha256_file(path) if size == expected.bytes else ""
        except OSError as error:
            raise ModelStoreError(
                f"{version_dir}: {relative} cannot be read ({error.strerror or error})"
            ) from None
        if size != expected.bytes:
            raise ModelStoreError(
                f"{version_dir}: {relative} has {size} bytes, manifest says {expected.bytes}"
            )
        if digest != expected.sha256:
            raise ModelStoreError(
                f"{version_dir}: {relative} does not match its sha256 (manifest {expected.sha256[:12]}..., "
                f"file {digest[:12]}...); refusing to load a modified or corrupted model"
            )
