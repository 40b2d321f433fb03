"""The typed manifest: every shipped version parses, the stored JSON is kept as it was, and a
malformed manifest is refused in one line naming the file and the first problem. No torch."""

from __future__ import annotations

import copy
import json
import shutil

import pytest

from tests.helpers import MODEL_STORE
from training.contract.decisions import FIRST_SPIKE
from training.contract.manifest import (
    EventInput,
    ImageInput,
    Manifest,
    ModelStoreError,
    discover,
    is_valid_name,
    parse_manifest,
    read_manifest,
)

SHIPPED = [
    MODEL_STORE / name / str(version)
    for name, versions in discover(MODEL_STORE).items()
    for version in versions
]
DIGITS_3 = MODEL_STORE / "digits" / "3"


def _stored(version_dir=DIGITS_3) -> dict:
    return json.loads((version_dir / "manifest.json").read_text())


@pytest.mark.parametrize("version_dir", SHIPPED, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_shipped_version_parses_and_keeps_its_json(version_dir):
    manifest = read_manifest(version_dir)
    assert manifest.as_stored() == _stored(version_dir)
    assert manifest.name_and_version == f"{version_dir.parent.name}/{version_dir.name}"
    assert isinstance(manifest.input, ImageInput if manifest.kind == "image" else EventInput)
    assert len(manifest.labels) == manifest.layers.output_neurons
    assert set(manifest.named_files()) <= set(manifest.files)
    assert manifest.decoding == FIRST_SPIKE


def test_the_model_is_frozen_and_as_stored_is_a_copy():
    manifest = read_manifest(DIGITS_3)
    with pytest.raises(ValueError):
        manifest.name = "other"
    manifest.as_stored()["name"] = "other"
    assert manifest.as_stored()["name"] == "digits"


def test_keys_this_release_does_not_know_are_kept():
    stored = _stored()
    stored["notes"] = "kept"
    stored["input"]["colour_space"] = "srgb"
    stored["onnx"]["future_role"] = {"file": "step.onnx", "inputs": [], "outputs": []}
    manifest = parse_manifest(stored, "m.json")
    assert manifest.as_stored()["notes"] == "kept"
    assert manifest.image_input.model_extra == {"colour_space": "srgb"}
    assert manifest.onnx is not None and "future_role" in manifest.onnx.by_role()


def test_image_and_event_inputs_are_told_apart():
    assert read_manifest(DIGITS_3).image_input.channels == 1
    events = read_manifest(MODEL_STORE / "digits-dvs" / "1")
    assert events.event_input.bin_us > 0
    with pytest.raises(ValueError, match="not images"):
        _ = events.image_input


def _damaged(change) -> dict:
    stored = copy.deepcopy(_stored())
    change(stored)
    return stored


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: [m.pop(key) for key in ("labels", "files")], "missing keys labels, files"),
        (lambda m: m.__setitem__("format", "firstspike-model/9"), "format 'firstspike-model/9', expected"),
        (
            lambda m: m["files"].__setitem__("step.onnx", "0" * 64),
            r"files\['step.onnx'\]: Input should be a valid dict",
        ),
        (lambda m: m["files"]["step.onnx"].__setitem__("sha256", "xyz"), r"files\['step.onnx'\].sha256"),
        (lambda m: m["files"]["step.onnx"].__setitem__("bytes", -1), r"files\['step.onnx'\].bytes"),
        (lambda m: m["files"].pop("step.onnx"), "step.onnx is used but not listed in 'files'"),
        (lambda m: m.__setitem__("name", "../up"), "not a model name"),
        (lambda m: m.__setitem__("kind", "events"), "kind 'events'"),
        (lambda m: m.__setitem__("labels", ["only one"]), "1 labels for 10 output neurons"),
        (lambda m: m["layers"]["synaptic"][0].__setitem__("kind", "fma"), r"layers.synaptic\[0\].kind"),
        (lambda m: m["onnx"].__setitem__("extra", {"inputs": []}), "onnx.extra.file"),
    ],
)
def test_a_malformed_manifest_is_refused_in_one_line(change, message):
    with pytest.raises(ModelStoreError, match=message) as refused:
        parse_manifest(_damaged(change), "store/x/1/manifest.json")
    assert str(refused.value).startswith("store/x/1/manifest.json: ") and "\n" not in str(refused.value)


def test_read_manifest_names_the_file(tmp_path):
    version_dir = tmp_path / "digits" / "3"
    shutil.copytree(DIGITS_3, version_dir)
    (version_dir / "manifest.json").write_text("[]")
    with pytest.raises(ModelStoreError, match="manifest.json: must hold a JSON object"):
        read_manifest(version_dir)


@pytest.mark.parametrize(
    "name, valid",
    [
        ("digits", True),
        ("fashion-mnist", True),
        ("a.b_c", True),
        ("../up", False),
        (".hidden", False),
        ("", False),
        ("x" * 65, False),
    ],
)
def test_model_names_are_single_path_components(name, valid):
    assert is_valid_name(name) is valid


def test_validating_a_manifest_directly_keeps_what_it_was_given():
    stored = _stored()
    assert Manifest.model_validate(stored).as_stored() == stored
