"""Writing a trained network into the model store as a new version."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from training.contract.energy import E_AC_JOULES, E_MAC_JOULES, NEUROMORPHIC_COEFFICIENTS
from training.contract.manifest import (
    MANIFEST,
    MANIFEST_FORMAT,
    WEIGHTS,
    is_valid_name,
    list_versions,
    parse_manifest,
    sha256_file,
)
from training.data.info import DatasetInfo
from training.evaluate import EvaluationResult
from training.network.network import SpikingNetwork


def _input_spec(info: DatasetInfo, input_shape: tuple[int, int, int]) -> dict[str, Any]:
    channels, height, width = input_shape
    if info.kind == "events":
        # dvs-events/1 streams: the sensor the model was trained on and the duration of a timestep
        return {"sensor_width": width, "sensor_height": height, "polarities": channels, "bin_us": info.bin_us}
    return {
        "channels": channels,
        "height": height,
        "width": width,
        # x = (pixel / pixel_max - mean) / std per channel, pixels as 8-bit values
        "normalization": {"pixel_max": 255, "mean": list(info.mean), "std": list(info.std)},
        # how images of other sizes and aspect ratios are brought to height x width
        "resize": info.resize.to_dict(),
    }


def build_manifest(
    network: SpikingNetwork,
    name: str,
    version: int,
    info: DatasetInfo,
    evaluation: EvaluationResult,
    split: str,
    training: dict[str, Any],
) -> dict[str, Any]:
    """The manifest of a new version, without its ``files`` (and ``onnx``) yet.

    Args:
        network: the trained network.
        name: the model's name.
        version: the version's number.
        info: the data set it was trained on.
        evaluation: its evaluation on ``split``.
        split: the split evaluated.
        training: how it was trained (the manifest's free-form ``training`` record).

    Returns:
        The manifest as a JSON object.
    """
    spec = network.spec
    return {
        "format": MANIFEST_FORMAT,
        "name": name,
        "version": version,
        "kind": info.kind,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "architecture": {"name": spec.architecture, "args": spec.arch_args},
        "network": spec.to_dict(),
        "coding": spec.coding,
        "encoder": spec.encoder,
        "timesteps": spec.timesteps,
        "neuron": spec.neuron.to_dict(),
        "input": _input_spec(info, spec.input_shape),
        "labels": list(info.labels),
        "layers": {
            "spiking": network.layout["spiking_layers"],
            "output_neurons": network.layout["output_neurons"],
            "synaptic": network.layout["synaptic_layers"],
            "hidden_state_shapes": [list(s) for s in network.layout["hidden_state_shapes"]],
        },
        "energy": {
            "e_mac_joules": E_MAC_JOULES,
            "e_ac_joules": E_AC_JOULES,
            "neuromorphic": {
                k: {"static": s, "dynamic": d} for k, (s, d) in NEUROMORPHIC_COEFFICIENTS.items()
            },
        },
        "evaluation": {"dataset": info.name, "split": split, **evaluation.summary()},
        "training": training,
        "files": {},
    }


def export_version(
    network: SpikingNetwork,
    store_root: str | Path,
    name: str,
    info: DatasetInfo,
    evaluation: EvaluationResult,
    split: str = "test",
    training: dict[str, Any] | None = None,
    version: int | None = None,
    onnx: bool = False,
) -> Path:
    """Write ``<store_root>/<name>/<version>/`` atomically.

    An existing version is never overwritten.

    Args:
        network: the trained network.
        store_root: the model store's root folder.
        name: the model's name.
        info: the data set it was trained on.
        evaluation: its evaluation on ``split``.
        split: the split evaluated.
        training: how it was trained (the manifest's ``training`` record).
        version: the version's number; None: one past the highest existing one.
        onnx: also write the single-timestep ONNX graphs beside the weights.

    Returns:
        The version's folder.

    Raises:
        ValueError: an invalid model name or version number.
        FileExistsError: the version exists already.
    """
    if not is_valid_name(name):
        raise ValueError(f"invalid model name {name!r}: use letters, digits, '_', '-', '.'")
    model_dir = Path(store_root) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    existing = list_versions(model_dir)
    version = version if version is not None else (existing[-1] + 1 if existing else 1)
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    target = model_dir / str(version)
    if target.exists():
        raise FileExistsError(f"{target} already exists; model versions are immutable")
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=model_dir))
    try:
        state = {key: value.detach().cpu().contiguous() for key, value in network.state_dict().items()}
        save_file(state, str(staging / WEIGHTS), metadata={"format": MANIFEST_FORMAT})
        manifest = build_manifest(network, name, version, info, evaluation, split, training or {})
        if onnx:
            from training.store.onnx_export import export_onnx

            manifest["onnx"] = export_onnx(network, staging)
        manifest["files"] = {
            path.name: {"sha256": sha256_file(path), "bytes": path.stat().st_size}
            for path in sorted(staging.iterdir())
        }
        text = json.dumps(manifest, indent=2) + "\n"
        parse_manifest(json.loads(text), target / MANIFEST)  # never store a manifest that readers refuse
        (staging / MANIFEST).write_text(text)
        # mkdtemp makes a private folder; a model store is read by other users (a container's
        # non-root service user), so open it up before it becomes visible.
        for path in staging.iterdir():
            path.chmod(0o644)
        staging.chmod(0o755)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
