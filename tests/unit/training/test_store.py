"""Model store: export, verified loading, refusal of modified files."""

import json

import pytest
import torch

from training.contract.manifest import ModelStoreError, discover, read_manifest, resolve_version_dir
from training.data import dataset_info
from training.evaluate import evaluate
from training.network.network import SpikingNetwork
from training.network.spec import NetworkSpec
from training.store.export import export_version
from training.store.load import load_network


@pytest.fixture(scope="module")
def small_network():
    torch.manual_seed(0)
    network = SpikingNetwork(NetworkSpec("digits_net", (1, 8, 8), 10, arch_args={"channels": [8, 16]})).eval()
    network.head.module.weight.data.mul_(8.0)
    return network


def _export(network, root, **kwargs):
    images = torch.rand(8, 1, 8, 8)
    result = evaluate(network, list(zip(images, range(8))))
    return export_version(
        network, root, "tiny", dataset_info("digits"), result, training={"note": "test"}, **kwargs
    )


def test_export_then_load_gives_the_same_network(tmp_path, small_network):
    path = _export(small_network, tmp_path)
    assert path == tmp_path / "tiny" / "1"
    manifest = read_manifest(path)
    assert {
        "name",
        "version",
        "kind",
        "architecture",
        "timesteps",
        "neuron",
        "input",
        "labels",
        "layers",
        "energy",
        "evaluation",
        "files",
    } <= manifest.as_stored().keys()
    assert manifest.files["weights.safetensors"].sha256
    assert manifest.layers.synaptic[0].kind == "mac"
    assert (manifest.name_and_version, manifest.training) == ("tiny/1", {"note": "test"})
    loaded, _ = load_network(path)
    images = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(images).membrane, small_network(images).membrane)


def test_versions_increase_and_are_never_overwritten(tmp_path, small_network):
    _export(small_network, tmp_path)
    second = _export(small_network, tmp_path)
    assert second.name == "2"
    assert discover(tmp_path) == {"tiny": [1, 2]}
    assert resolve_version_dir(tmp_path / "tiny") == second
    with pytest.raises(FileExistsError):
        _export(small_network, tmp_path, version=1)


def test_modified_weights_are_refused(tmp_path, small_network):
    path = _export(small_network, tmp_path)
    weights = path / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelStoreError, match="sha256"):
        load_network(path)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: (p / "weights.safetensors").unlink(), "missing"),
        (lambda p: (p / "manifest.json").write_text("{not json"), "not valid JSON"),
        (lambda p: (p / "manifest.json").write_text(json.dumps({"name": "x"})), "missing keys"),
        (lambda p: (p / "weights.safetensors").write_bytes(b"short"), "bytes"),
    ],
)
def test_damaged_versions_are_refused_with_a_clear_message(tmp_path, small_network, damage, message):
    path = _export(small_network, tmp_path)
    damage(path)
    with pytest.raises(ModelStoreError, match=message):
        load_network(path)


def test_manifest_paths_cannot_escape_the_version_folder(tmp_path, small_network):
    path = _export(small_network, tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"]["../../etc/passwd"] = {"sha256": "0" * 64, "bytes": 1}
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelStoreError, match="outside"):
        read_manifest(path)


@pytest.mark.parametrize("name", ["../up", "a/b", "", ".hidden", "x" * 80])
def test_invalid_model_names_are_refused(tmp_path, small_network, name):
    with pytest.raises(ValueError):
        export_version(small_network, tmp_path, name, dataset_info("digits"), None)


def test_exported_files_are_readable_by_other_users(tmp_path, small_network):
    path = _export(small_network, tmp_path)
    assert path.stat().st_mode & 0o777 == 0o755
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in path.iterdir())
