"""A trained network to export or calibrate, from a training run or from the model store.

A run folder (or its ``checkpoint.pt``) gives the network with the config it was trained by; a
stored version (or a model folder: its latest) gives its weights again with what its manifest
recorded, so that exporting it again keeps the record of how it was trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from training.contract.manifest import MANIFEST, list_versions, resolve_version_dir
from training.data import DatasetInfo, load_split_for
from training.data.samples import Sample
from training.network.network import SpikingNetwork
from training.store.load import load_network
from training.trainer import CHECKPOINT, checkpoint_path, load_checkpoint_payload, network_from_payload


@dataclass(frozen=True)
class TrainedSource:
    """A trained network and what an export or a calibration needs to know about it.

    Attributes:
        network: the network, in eval mode.
        name: the run config's name, or the stored model's.
        dataset: the data set it was trained (or evaluated at export) on.
        data_root: where an on-disk data set was read from in training.
        training: the manifest's ``training`` record of an export from this source.
    """

    network: SpikingNetwork
    name: str
    dataset: str
    data_root: str | None
    training: dict[str, Any]

    def load_split(
        self, split: str | None = None, dataset: str | None = None, data_root: str | None = None
    ) -> tuple[Dataset[Sample], DatasetInfo, str]:
        """A split of its data set (or another), unaugmented, at the network's input.

        Args:
            split: The split; None for the one a model is reported on (``load_split_for``).
            dataset: Another data set than its own.
            data_root: Another folder than the one it was trained from.

        Returns:
            The samples, the data set's description and the split's name.
        """
        config = self.training.get("config") or {}
        return load_split_for(
            dataset or self.dataset,
            split,
            data_root or self.data_root,
            self.network.spec.input_shape,
            self.network.timesteps,
            seed=int(config.get("seed", 0)),  # an image folder's validation split is the run's
        )


def load_trained(path: str | Path) -> TrainedSource:
    """The network at ``path`` and what an export or a calibration needs to know about it.

    Args:
        path: a run folder written by ``firstspike train --out``, its ``checkpoint.pt``, a
            model-store version folder, or a model folder (its highest version).

    Returns:
        The network with its name, data set, data root and training record.

    Raises:
        FileNotFoundError: ``path`` is none of those.
        ModelStoreError: a stored version that does not verify.
    """
    path = Path(path)
    if path.suffix == ".pt" or (path / CHECKPOINT).is_file():
        return _from_checkpoint(checkpoint_path(path))
    if (path / MANIFEST).is_file() or list_versions(path):
        return _from_store(resolve_version_dir(path))
    raise FileNotFoundError(
        f"{path} is neither a training run (no {CHECKPOINT}) nor a model-store version (no {MANIFEST})"
    )


def _from_checkpoint(checkpoint: Path) -> TrainedSource:
    payload = load_checkpoint_payload(checkpoint)
    network, config, history = network_from_payload(payload)
    record = {"config": config.to_dict(), "epochs_trained": len(history), "run": payload.get("run")}
    if payload.get("best"):
        # chosen on the validation split: the epoch whose weights these are
        record["kept_epoch"] = payload["best"]["epoch"]
    if payload.get("calibration"):
        record["calibration"] = payload["calibration"]  # the output neurons chosen after training
    return TrainedSource(network, config.name, config.dataset, config.data_root, record)


def _from_store(version_dir: Path) -> TrainedSource:
    network, manifest = load_network(version_dir)
    recorded = manifest.training or {}
    config = recorded.get("config") or {}
    record = {**recorded, "exported_from": manifest.name_and_version}
    return TrainedSource(network, manifest.name, manifest.evaluation.dataset, config.get("data_root"), record)
