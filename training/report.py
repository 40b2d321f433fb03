"""``firstspike report``: the paper's analyses for one model version, as report.json and PNGs.

- Table I: accuracy, mean decision timestep (inference time), firing rate (sparsity);
- Table II: energy per inference by (15)-(16) against the same-architecture ANN (and a
  rate-coded SNN when given), Table III: normalised energy by (17) on TrueNorth and SpiNNaker;
- Table IV: the 15 common corruptions at 5 severities (image data sets), error per corruption and
  mCE, against the rate-coded SNN when given;
- figures: decision timestep histogram, decision timestep vs difficulty (Fig. 5), temporal
  similarity matrices (18) of two layers (Fig. 3), mCE vs severity (Fig. 2a).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, cast, overload

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from training.analysis import plots
from training.analysis.similarity import TemporalSimilarity
from training.analysis.tables import ModelSummary, energy_table, normalized_energy_table
from training.contract.energy import ann_operation_counts
from training.contract.images.model_input import InputSpec, to_model_input
from training.contract.manifest import Manifest, SynapticLayer
from training.data import dataset_info, load_dataset
from training.data.info import DatasetInfo
from training.data.samples import Sample
from training.evaluate import EvaluationResult, decide, evaluate
from training.network.network import SpikingNetwork
from training.network.spec import NetworkSpec
from training.store.load import load_network


@dataclass
class LoadedModel:
    """A model-store version, loaded.

    Attributes:
        name: ``name/version``.
        network: The network, in eval mode.
        manifest: Its manifest.
    """

    name: str
    network: SpikingNetwork
    manifest: Manifest


class SampleAnalysis(TypedDict):
    """What ``per_sample_analysis`` finds, per sample of the test split."""

    difficulty: np.ndarray
    correct: np.ndarray
    timesteps: np.ndarray
    similarity: dict[str, np.ndarray]


class RobustnessRow(TypedDict):
    """One model's errors on the corrupted images (fractions)."""

    per_corruption: dict[str, float]
    per_severity: list[float]
    mce: float
    raw: dict[str, list[float]]


@overload
def _load(path: str | Path) -> LoadedModel: ...
@overload
def _load(path: str | Path | None) -> LoadedModel | None: ...
def _load(path: str | Path | None) -> LoadedModel | None:
    """The version at ``path``; None for None."""
    if path is None:
        return None
    network, manifest = load_network(path)
    return LoadedModel(manifest.name_and_version, network, manifest)


def summary(name: str, result: EvaluationResult) -> ModelSummary:
    """A model's row of the tables from its evaluation.

    Args:
        name: The row's label.
        result: The model's evaluation on the test split.

    Returns:
        The summary.
    """
    return ModelSummary(
        name,
        result.accuracy,
        result.mean_timesteps_run,
        result.spikes_per_sample,
        result.energy_joules_per_sample,
        result.firing_rate,
    )


def ann_summary(model: LoadedModel, ann: LoadedModel | None, dataset: Dataset[Sample]) -> ModelSummary:
    """The same-architecture ANN: its energy (15) from the architecture alone; its accuracy when
    a trained ANN is given.

    Args:
        model: The spiking model whose architecture the ANN shares.
        ann: A trained ANN of that architecture, or None.
        dataset: The test split, to evaluate ``ann`` on.

    Returns:
        The ANN's row; accuracy None without a trained ANN.
    """
    if ann is not None:
        result = evaluate(ann.network, dataset)
        return ModelSummary(f"ANN {ann.name}", result.accuracy, 1.0, 0.0, result.energy_joules_per_sample)
    spec = NetworkSpec.from_dict({**model.network.spec.to_dict(), "coding": "ann", "encoder": None})
    layers = [SynapticLayer.model_validate(layer) for layer in SpikingNetwork(spec).layout["synaptic_layers"]]
    return ModelSummary(
        "ANN (same architecture, untrained: energy only)",
        None,
        1.0,
        0.0,
        ann_operation_counts(layers).joules(),
    )


@torch.no_grad()
def per_sample_analysis(network: SpikingNetwork, dataset: Dataset[Sample], layers: int = 2) -> SampleAnalysis:
    """Difficulty (CE of the time-mean output) per sample and temporal similarity (18) of the
    first ``layers`` spiking layers.

    Args:
        network: The network to analyse.
        dataset: (input, label) samples.
        layers: How many spiking layers get a similarity matrix.

    Returns:
        Difficulty, correctness and decision timestep per sample, and the similarity matrices
        by panel title.
    """
    names = [layer["name"] for layer in network.layout["spiking_layers"]][:layers]
    similarity = {name: TemporalSimilarity(network.timesteps) for name in names}
    titles = {
        name: f"layer {i + 1} ({'encoder' if name == 'encoder' else 'spiking'})"
        for i, name in enumerate(names)
    }
    difficulty, correct, timesteps = [], [], []
    for images, labels in DataLoader(dataset, batch_size=256):
        output = network(images, record_spikes=True)
        difficulty.append(F.cross_entropy(output.current.mean(dim=0), labels, reduction="none"))
        decision = decide(network, output)
        correct.append(decision.class_index == labels)
        timesteps.append(decision.decision_timestep)
        for name in names:
            similarity[name].add(output.recorded[name])
    return {
        "difficulty": torch.cat(difficulty).numpy(),
        "correct": torch.cat(correct).numpy(),
        "timesteps": torch.cat(timesteps).numpy(),
        "similarity": {titles[n]: s.matrix() for n, s in similarity.items()},
    }


def decision_time_by_correctness(
    timesteps: np.ndarray, correct: np.ndarray
) -> dict[str, dict[str, int | float | None]]:
    """Samples and mean decision timestep of right and of wrong answers: decisions are adaptive
    (paper, Fig. 5) when wrong answers, the harder inputs, take longer.

    Args:
        timesteps: Per sample, the decision timestep.
        correct: Per sample, whether the decision was right.

    Returns:
        For ``right`` and ``wrong``: samples, and their mean decision timestep (None without any).
    """
    timesteps, correct = np.asarray(timesteps, dtype=np.float64), np.asarray(correct, dtype=bool)
    return {
        kind: {
            "samples": int(mask.sum()),
            "mean_decision_timestep": float(timesteps[mask].mean()) if mask.any() else None,
        }
        for kind, mask in (("right", correct), ("wrong", ~correct))
    }


def to_uint8_images(dataset: Dataset[Sample], info: DatasetInfo) -> tuple[np.ndarray, np.ndarray]:
    """The data set's images as 8-bit [N, H, W, C], undoing its normalisation.

    Args:
        dataset: Normalised images [C, H, W] and labels.
        info: The data set's description (its mean and std).

    Returns:
        The images uint8 [N, H, W, C] and the labels [N].
    """
    images, labels = [], []
    for image, label in DataLoader(dataset, batch_size=512):
        mean = torch.tensor(info.mean).view(1, -1, 1, 1)
        std = torch.tensor(info.std).view(1, -1, 1, 1)
        pixels = ((image * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)
        images.append(pixels.permute(0, 2, 3, 1).numpy())
        labels.append(label.numpy())
    return np.concatenate(images), np.concatenate(labels)


def from_uint8_images(images: np.ndarray, spec: InputSpec) -> torch.Tensor:
    """8-bit images [N, H, W, C] -> the model's input, through the service's own preprocessing.

    Args:
        images: uint8 [N, H, W, C].
        spec: The model's input, from its manifest.

    Returns:
        float32 [N, C', H', W'] as the model reads it.
    """
    return torch.from_numpy(
        np.stack(
            [
                to_model_input(Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image), spec)
                for image in images
            ]
        )
    )


@torch.no_grad()
def robustness(
    models: dict[str, SpikingNetwork], images: np.ndarray, labels: np.ndarray, spec: InputSpec, seed: int = 0
) -> dict[str, RobustnessRow]:
    """Error per (corruption, severity) for every model, on the same corrupted images.

    Args:
        models: The networks by name.
        images: uint8 [N, H, W, C].
        labels: [N].
        spec: The input of the models, from the manifest: the corrupted images go through it.
        seed: Seeds the corruptions (image i with ``seed + i``).

    Returns:
        Per model: the mean error per corruption and per severity, the mCE, and every
        (corruption, severity) error as ``raw``.
    """
    from training.robustness import CORRUPTIONS, corrupt

    errors: dict[str, dict[str, list[float]]] = {name: {} for name in models}
    for corruption in CORRUPTIONS:
        for severity in range(1, 6):
            corrupted = np.stack(
                [corrupt(image, corruption, severity, seed + index) for index, image in enumerate(images)]
            )
            batch = from_uint8_images(corrupted.reshape(images.shape), spec)
            # A list of samples serves DataLoader as a data set; torch types only Dataset.
            dataset = cast(Dataset[Sample], list(zip(batch, labels.tolist())))
            for name, network in models.items():
                result = evaluate(network, dataset)
                errors[name].setdefault(corruption, []).append(1.0 - result.accuracy)
    table: dict[str, RobustnessRow] = {}
    for name, per_corruption in errors.items():
        table[name] = {
            "per_corruption": {c: float(np.mean(e)) for c, e in per_corruption.items()},
            "per_severity": [float(np.mean([e[s] for e in per_corruption.values()])) for s in range(5)],
            "mce": float(np.mean([np.mean(e) for e in per_corruption.values()])),
            "raw": per_corruption,
        }
    return table


def build_report(
    model_dir: str | Path,
    dataset_name: str | None,
    out_dir: str | Path,
    rate_model: str | None = None,
    ann_model: str | None = None,
    data_root: str | None = None,
    with_robustness: bool = True,
    seed: int = 0,
    robustness_samples: int | None = None,
) -> dict[str, Any]:
    """Tables I-IV and the figures for one latency model (with its rate-coded and ANN twins when
    given), written to ``out_dir`` as report.json and PNGs.

    Args:
        model_dir: The latency model's model-store version (or its name's folder: the latest).
        dataset_name: The data set to test on; None for the manifest's.
        out_dir: The folder for report.json and the figures.
        rate_model: A rate-coded model of the same architecture, for Tables II-IV.
        ann_model: A trained same-architecture ANN, for the accuracies of Table II.
        data_root: The folder of an on-disk data set.
        with_robustness: Run Table IV (image data sets).
        seed: Seeds the corruptions and the robustness subset.
        robustness_samples: Run Table IV on a seeded subset of this many test images: the
            corruptions go through the service's preprocessing image by image, all 75 of them.

    Returns:
        The report, as written to report.json.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = _load(model_dir)
    rate, ann = _load(rate_model), _load(ann_model)
    dataset_name = dataset_name or model.manifest.evaluation.dataset
    info = dataset_info(dataset_name, model.network.timesteps)
    test = load_dataset(dataset_name, "test", data_root, timesteps=model.network.timesteps)
    main = evaluate(model.network, test)
    full = evaluate(model.network, test, early_exit=False)
    summaries = [summary(f"latency {model.name}", main)]
    if rate is not None:
        summaries.append(summary(f"rate {rate.name}", evaluate(rate.network, test)))
    ann_row = ann_summary(model, ann, test)
    baseline = (
        summaries[1] if rate is not None else summary(f"latency {model.name}, all T (no early exit)", full)
    )
    report: dict[str, Any] = {
        "model": model.name,
        "dataset": dataset_name,
        "samples": main.samples,
        "table_1": [
            {
                "model": s.name,
                "accuracy": s.accuracy,
                "inference_time": s.mean_timesteps,
                "sparsity": s.firing_rate,
            }
            for s in summaries
        ],
        "evaluation": main.summary(),
        "table_2": energy_table(summaries, ann_row),
        "table_3": normalized_energy_table([s for s in summaries if s is not baseline], baseline),
        "table_3_baseline": baseline.name,
        "figures": {},
    }
    figures = report["figures"]
    figures["decision_histogram"] = plots.decision_histogram(
        main.decision_timestep_counts, out / "decision_histogram.png", f"{model.name}: decision timesteps"
    )
    analysis = per_sample_analysis(model.network, test)
    report["decision_time_by_correctness"] = decision_time_by_correctness(
        analysis["timesteps"], analysis["correct"]
    )
    figures["difficulty"] = plots.difficulty_scatter(
        analysis["difficulty"],
        analysis["timesteps"],
        analysis["correct"],
        out / "difficulty.png",
        f"{model.name}: first-spike time vs difficulty",
    )
    matrices = {f"latency: {name}": m for name, m in analysis["similarity"].items()}
    if rate is not None:
        matrices |= {
            f"rate: {name}": m for name, m in per_sample_analysis(rate.network, test)["similarity"].items()
        }
    report["temporal_similarity"] = {name: m.tolist() for name, m in matrices.items()}
    figures["temporal_similarity"] = plots.similarity_matrices(matrices, out / "temporal_similarity.png")
    if with_robustness and info.kind == "image":
        images, labels = to_uint8_images(test, info)
        if robustness_samples is not None and robustness_samples < len(labels):
            chosen = np.random.default_rng(seed).permutation(len(labels))[:robustness_samples]
            images, labels = images[chosen], labels[chosen]
        models = {"latency": model.network} | ({"rate": rate.network} if rate is not None else {})
        spec = InputSpec.from_manifest(model.manifest)
        table = robustness(models, images, labels, spec, seed)
        # A list of samples serves DataLoader as a data set; torch types only Dataset.
        clean = cast(Dataset[Sample], list(zip(from_uint8_images(images, spec), labels.tolist())))
        report["table_4_samples"] = len(labels)
        report["table_4"] = {
            name: {
                "clean_error": 1.0 - evaluate(models[name], clean).accuracy,
                **{k: v for k, v in t.items() if k != "raw"},
            }
            for name, t in table.items()
        }
        report["robustness_raw"] = {name: t["raw"] for name, t in table.items()}
        figures["mce_vs_severity"] = plots.mce_vs_severity(
            {name: t["per_severity"] for name, t in table.items()},
            out / "mce_vs_severity.png",
            f"{dataset_name}: mCE vs severity",
        )
    elif with_robustness:
        report["table_4"] = f"not applicable: {dataset_name} is an event data set"
    report["seconds"] = time.perf_counter() - started
    (out / "report.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    return report
