"""Training configuration: a YAML or JSON file, optionally overridden by ``key.sub=value`` pairs."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from training.contract.known_fields import refuse_unknown
from training.data import dataset_info
from training.network.spec import NetworkSpec
from training.neurons.lif import LIFParameters

CONFIG_DIR = Path(__file__).parent / "configs"
PRECISIONS = ("fp32", "bf16")
# A network's ANN twin: the same layers with ReLU in one pass, fed the image directly, fitted by
# cross-entropy. Its parameters have the spiking network's names and shapes.
ANN_TWIN_OVERRIDES = ("network.coding=ann", "network.encoder=direct", "loss={name: mean_ce}")
ANN_PRETRAINING_KEYS = frozenset({"epochs", "epochs_factor", "lr"})
EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


@dataclass
class TrainConfig:
    """One training run's settings, as a config file holds them.

    Attributes:
        name: The model's name (the model store's folder).
        dataset: A registry name (``training.data.DATASETS``).
        network: The ``NetworkSpec`` fields; ``neuron`` and ``output_neuron`` as mappings, the
            latter as changes to ``neuron``. Input shape and classes default to the data set's.
        loss: ``name`` of a loss in ``training.losses.LOSSES`` and its keyword arguments.
        epochs: Epochs of the cosine schedule.
        batch_size: The global batch: under torchrun each of N processes takes batch_size / N
            of it, so the optimisation (and the learning rate that suits it) is the
            single-process run's.
        lr: AdamW's peak learning rate.
        weight_decay: AdamW's weight decay.
        seed: Seeds the global random generators (initialisation) and the shuffling.
        augment: Augment the training split.
        augmentation: Settings of the data set's training augmentation (digits:
            training/data/image_augment.py; digits-dvs: the camera randomisation); empty for its
            defaults.
        data_root: The folder of an on-disk data set.
        workers: Data loader worker processes.
        train_images: Train on the first N training images only (ablations on a subset).
        precision: ``"bf16"`` runs convolutions and linear layers in bfloat16 under autocast
            (for CPUs with bfloat16 units, and GPUs), neuron state stays float32; ``"fp32"`` is
            exact. The weights and the exported model are float32 either way.
        channels_last: NHWC convolutions (suits oneDNN on CPUs).
        eval_every: Evaluate on the test split every this many epochs (and after the last).
        bins: Event data sets: frames per recording. They follow network.timesteps (one frame
            per timestep, each covering 4/T of the default frames' span); given, it must equal T.
        sync_batchnorm: With several processes: BatchNorm statistics over the global batch (as
            on the paper's one GPU) instead of each process's share. Ignored by a single process.
        max_mean_timestep: After training, choose the output neurons' leak and threshold on the
            validation split for this latency budget (``training.calibration``); runs that
            evaluate on a validation split (image folders) and are latency-coded only. None:
            keep the trained output neurons.
        ann_pretraining: ``{epochs: N, lr: X}`` or ``{epochs_factor: F, lr: X}``, each
            optional: first train the network's ANN twin (``ann_twin``) for N epochs (or F
            times ``epochs``, rounded; ``epochs`` when neither is given) at peak learning rate X
            (``lr`` when left out), and start from its weights (the best on the validation
            split where the run has one, else the last) instead of random ones. Spiking
            networks whose encoder has the twin's parameters (LE or direct) only. None: from
            random weights.
    """

    name: str
    dataset: str
    network: dict[str, Any]
    loss: dict[str, Any] = field(default_factory=lambda: {"name": "tad", "temperature": 2.0})
    epochs: int = 200
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    seed: int = 0
    augment: bool = True
    augmentation: dict[str, Any] = field(default_factory=dict)
    data_root: str | None = None
    workers: int = 0
    train_images: int | None = None
    precision: str = "fp32"
    channels_last: bool = False
    eval_every: int = 1
    bins: int | None = None
    sync_batchnorm: bool = False
    max_mean_timestep: float | None = None
    ann_pretraining: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """A config from its mapping, checked.

        Args:
            values: The config's keys; ``name``, ``dataset`` and ``network`` are required.

        Returns:
            The config.

        Raises:
            ValueError: Unknown or missing keys, or a value out of range.
        """
        refuse_unknown(values, cls, "config keys")
        missing = {"name", "dataset", "network"} - set(values)
        if missing:
            raise ValueError(f"config is missing: {', '.join(sorted(missing))}")
        config = cls(**values)
        if config.train_images is not None and (
            not isinstance(config.train_images, int) or config.train_images < 1
        ):
            raise ValueError(f"train_images must be a positive whole number, not {config.train_images!r}")
        for key in ("epochs", "batch_size"):
            if not _is_number(getattr(config, key), whole=True) or getattr(config, key) < 1:
                raise ValueError(f"{key} must be a positive whole number, not {getattr(config, key)!r}")
        if not _is_number(config.lr) or not config.lr > 0:
            raise ValueError(f"lr must be a positive number, not {config.lr!r}")
        if not _is_number(config.weight_decay) or config.weight_decay < 0:
            raise ValueError(f"weight_decay must be a number of at least 0, not {config.weight_decay!r}")
        if config.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {config.precision!r}")
        if config.bins is not None:
            config._check_bins()
        if config.max_mean_timestep is not None and not (
            isinstance(config.max_mean_timestep, (int, float)) and config.max_mean_timestep >= 1
        ):
            raise ValueError(f"max_mean_timestep must be at least 1, not {config.max_mean_timestep!r}")
        if config.ann_pretraining is not None:
            config._check_ann_pretraining()
        return config

    def per_process_batch_size(self, world_size: int) -> int:
        """Each process's share of the global batch.

        Args:
            world_size: The number of processes.

        Returns:
            ``batch_size / world_size``.

        Raises:
            ValueError: The batch does not split evenly.
        """
        if self.batch_size % world_size:
            raise ValueError(
                f"batch_size {self.batch_size} (the global batch) does not split evenly over "
                f"{world_size} processes"
            )
        return self.batch_size // world_size

    def ann_twin(self) -> TrainConfig:
        """The config that trains this network's ANN twin for ``ann_pretraining``.

        Returns:
            The same run with ``ANN_TWIN_OVERRIDES``, the pretraining's epochs and learning
            rate, and no calibration (an ANN has no output spikes) or pretraining of its own.

        Raises:
            ValueError: No ``ann_pretraining`` is set.
        """
        if self.ann_pretraining is None:
            raise ValueError("ann_twin needs ann_pretraining ({} for the run's epochs and lr)")
        settings = self.ann_pretraining
        values = self.to_dict()
        for override in ANN_TWIN_OVERRIDES:
            apply_override(values, override)
        values.update(
            epochs=settings.get("epochs", max(1, round(settings.get("epochs_factor", 1) * self.epochs))),
            lr=settings.get("lr", self.lr),
            max_mean_timestep=None,
            ann_pretraining=None,
        )
        return TrainConfig.from_dict(values)

    def _check_ann_pretraining(self) -> None:
        """Refuse pretraining settings other than ``{epochs: N >= 1 or epochs_factor: F > 0,
        lr: X > 0}`` (each optional), or a network without an ANN twin to start from."""
        settings = self.ann_pretraining
        if (
            not isinstance(settings, dict)
            or not ANN_PRETRAINING_KEYS >= set(settings)
            or {"epochs", "epochs_factor"} <= set(settings)
        ):
            raise ValueError(
                "ann_pretraining must be {epochs: N or epochs_factor: F, lr: X} (each optional), "
                f"not {settings!r}"
            )
        epochs, lr = settings.get("epochs", 1), settings.get("lr", self.lr)
        if not _is_number(epochs, whole=True) or epochs < 1:
            raise ValueError(f"ann_pretraining.epochs must be a positive whole number, not {epochs!r}")
        factor = settings.get("epochs_factor", 1)
        if not _is_number(factor) or not factor > 0:
            raise ValueError(f"ann_pretraining.epochs_factor must be a positive number, not {factor!r}")
        if not _is_number(lr) or not lr > 0:
            raise ValueError(f"ann_pretraining.lr must be a positive number, not {lr!r}")
        spec = self.network_spec()
        if spec.coding == "ann" or spec.encoder not in ("le", "direct"):
            raise ValueError(
                "ann_pretraining starts a spiking network with an LE or direct encoder from its "
                f"ANN twin; this one is {spec.coding} coded with the {spec.encoder} encoder"
            )

    def _check_bins(self) -> None:
        """Refuse ``bins`` on image data or when it differs from the network's T."""
        if dataset_info(self.dataset).kind != "events":
            raise ValueError(f"bins applies to event data sets; {self.dataset} holds images")
        timesteps = self.network_spec().timesteps
        if self.bins != timesteps:
            raise ValueError(
                f"bins={self.bins} does not fit network.timesteps={timesteps}: the frames encoder "
                "feeds one frame per timestep (leave bins out to follow T)"
            )

    def to_dict(self) -> dict[str, Any]:
        """The config as a mapping ``from_dict`` reads back.

        Returns:
            Every field, by name.
        """
        return asdict(self)

    def network_spec(self) -> NetworkSpec:
        """The network this config trains, its input and classes filled in from the data set.

        Returns:
            The network's spec.
        """
        values = dict(self.network)
        values["neuron"] = LIFParameters.from_dict(values.get("neuron", {}))
        if values.get("output_neuron") is not None:
            # Given as changes to ``neuron`` (e.g. {leak: 1.0, threshold: 4.0}).
            values["output_neuron"] = LIFParameters.from_dict(
                {**values["neuron"].to_dict(), **values["output_neuron"]}
            )
        intensity = values.get("encoder") == "intensity"
        # A user's image folder has no registry entry: its recipe gives input and classes itself.
        if "input_shape" not in values or "num_classes" not in values or intensity:
            info = dataset_info(self.dataset)
            values.setdefault("input_shape", info.input_shape)
            values.setdefault("num_classes", info.num_classes)
            if intensity:
                # the intensity encoder turns the data set's normalised images back into raw pixels
                values.setdefault("input_mean", info.mean)
                values.setdefault("input_std", info.std)
        values["input_shape"] = tuple(values["input_shape"])
        return NetworkSpec(**values)


def _is_number(value: object, whole: bool = False) -> bool:
    """An int (or, unless ``whole``, a float) and not a bool (which Python counts as an int)."""
    return not isinstance(value, bool) and isinstance(value, int if whole else (int, float))


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a config file (a path, or a name of a shipped config such as ``digits``).

    Args:
        path: A YAML or JSON file, or the name of a shipped config.
        overrides: ``key.sub=value`` pairs applied on top, in order.

    Returns:
        The config, checked.

    Raises:
        FileNotFoundError: No such file or shipped config.
        ValueError: The file is not a mapping, or an override or value is wrong.
    """
    values = read_config_values(path)
    for override in overrides:
        apply_override(values, override)
    return TrainConfig.from_dict(values)


def read_config_values(path: str | Path) -> dict[str, Any]:
    """A config file's mapping, unchecked (a path, or a name of a shipped config).

    Args:
        path: A YAML or JSON file, or the name of a shipped config.

    Returns:
        The mapping as the file holds it.

    Raises:
        FileNotFoundError: No such file or shipped config.
        ValueError: The file is not a mapping.
    """
    path = Path(path)
    if not path.exists() and (CONFIG_DIR / f"{path}.yaml").exists():
        path = CONFIG_DIR / f"{path}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"config {path} not found (shipped configs: {', '.join(shipped_configs())})")
    text = path.read_text()
    values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(values, dict):
        raise ValueError(f"config {path} must hold a mapping at the top level")
    return values


def apply_override(values: dict[str, Any], override: str) -> None:
    """Set ``a.b.c=value`` in a nested dict; the value is parsed as YAML (numbers, lists, ...).

    Args:
        values: The config mapping, changed in place (missing parents are created).
        override: ``key.sub=value``.

    Raises:
        ValueError: Not of that form, or a parent that is not a mapping.
    """
    key, sep, raw = override.partition("=")
    if not sep or not key:
        raise ValueError(f"override {override!r} is not of the form key.sub=value")
    *parents, leaf = key.split(".")
    target = values
    for part in parents:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ValueError(f"override {override!r}: {part} is not a mapping")
    value = yaml.safe_load(raw)
    # YAML 1.1 reads 1e-3 (no dot) as a string; on a command line it is meant as a number.
    target[leaf] = float(value) if isinstance(value, str) and EXPONENT_NUMBER.fullmatch(value) else value


def shipped_configs() -> list[str]:
    """The names of the configs under ``training/configs``, sorted."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
