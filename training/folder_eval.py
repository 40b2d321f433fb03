"""A stored model judged on a user's folder of labelled images (``firstspike eval --data``).

The folder is read as training reads one (class folders, optionally under train/, val/ and
test/) and each file is prepared by the model's own manifest, as the service prepares an upload.
Class folders are matched to the model's labels by name, so the folder may hold any subset of
them. Beside accuracy the report gives what helps a user find what goes wrong: per-class
accuracy, the confusion matrix, when decisions come (overall and per class), and the files the
network is least sure of, where mislabelled images tend to be.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.contract.images.model_input import InputSpec
from training.contract.manifest import Manifest
from training.data.image_folder import FolderError, ImageFolderDataset, scan_folder
from training.data.image_folder_cache import ImageCache
from training.evaluate import EvaluationResult, evaluate
from training.network.network import SpikingNetwork

LEAST_CONFIDENT = 20


@dataclass(frozen=True)
class UnsureFile:
    """One of the files the network was least sure of.

    Attributes:
        path: relative to the folder.
        label: its folder's class.
        predicted: the class decided.
        confidence: (12) at the decision timestep, 0 (no idea) to 1 (certain).
        decision_timestep: when it decided.
    """

    path: str
    label: str
    predicted: str
    confidence: float
    decision_timestep: int


@dataclass(frozen=True)
class FolderReport:
    """A model's results on an image folder.

    Attributes:
        model: ``name/version``.
        folder: the folder.
        split: the split evaluated (``all`` for a folder without split folders).
        labels: the model's labels: the rows and columns of ``confusion``.
        result: the overall figures (accuracy, decision time, activity, energy).
        per_class_accuracy: accuracy of each class present in the folder, by label.
        per_class_images: images of each class present, by label.
        confusion: ``confusion[true][predicted]`` counts, over the model's labels.
        decision_timesteps: samples by decision timestep (1..T), overall.
        decision_timesteps_per_class: the same for each class present.
        least_confident: the files decided with least confidence, least first.
        skipped: files left out of the folder, with reasons.
    """

    model: str
    folder: str
    split: str
    labels: list[str]
    result: EvaluationResult
    per_class_accuracy: dict[str, float]
    per_class_images: dict[str, int]
    confusion: list[list[int]]
    decision_timesteps: dict[int, int]
    decision_timesteps_per_class: dict[str, dict[int, int]]
    least_confident: list[UnsureFile]
    skipped: list[str]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (the overall figures under ``result``).

        Returns:
            Every field by name.
        """
        values = {key: value for key, value in asdict(self).items() if key != "result"}
        values["result"] = self.result.summary()
        return values

    def text(self) -> str:
        """The report for people: a few lines and two small tables.

        Returns:
            The text, without a trailing newline.
        """
        result = self.result
        lines = [
            f"{self.model} on {self.folder} ({self.split}): accuracy {result.accuracy:.4f} over "
            f"{result.samples} images, mean decision timestep {result.mean_decision_timestep:.3f} "
            f"of {result.timesteps}",
            "",
        ]
        width = max(len("class"), *(len(label) for label in self.per_class_accuracy))
        steps = list(self.decision_timesteps)
        lines.append(
            f"  {'class':<{width}}  {'images':>6}  {'acc':>6}  " + "  ".join(f"t={step:<3}" for step in steps)
        )
        for label, accuracy in self.per_class_accuracy.items():
            counts = self.decision_timesteps_per_class[label]
            lines.append(
                f"  {label:<{width}}  {self.per_class_images[label]:>6}  {accuracy:>6.3f}  "
                + "  ".join(f"{counts[step]:<5}" for step in steps)
            )
        present = [self.labels.index(label) for label in self.per_class_accuracy]
        # the classes present and those decided for them: a model of 100 labels stays readable
        decided = {column for row in present for column, count in enumerate(self.confusion[row]) if count}
        columns = sorted(decided | set(present))
        lines += ["", "confusion (rows: folder class, columns: decided class)"]
        cell = max(5, *(len(self.labels[index]) for index in columns))
        lines.append(f"  {'':<{width}}  " + " ".join(f"{self.labels[index]:>{cell}}" for index in columns))
        for row in present:
            lines.append(
                f"  {self.labels[row]:<{width}}  "
                + " ".join(f"{self.confusion[row][index]:>{cell}}" for index in columns)
            )
        lines += [
            "",
            f"least confident {len(self.least_confident)} (confidence, decided at, label -> decided):",
        ]
        lines += [
            f"  {item.confidence:.3f}  t={item.decision_timestep}  {item.label} -> {item.predicted}"
            f"  {item.path}"
            for item in self.least_confident
        ]
        if self.skipped:
            lines += ["", f"skipped {len(self.skipped)}:", *(f"  {item}" for item in self.skipped)]
        return "\n".join(line.rstrip() for line in lines)


def evaluate_folder(
    network: SpikingNetwork,
    manifest: Manifest,
    folder: str | Path,
    split: str | None = None,
    *,
    strict: bool = False,
    least_confident: int = LEAST_CONFIDENT,
    batch_size: int = 256,
    cache: ImageCache | None = None,
) -> FolderReport:
    """Evaluate a stored model on an image folder.

    Args:
        network: the model's network (``training.store.load.load_network``).
        manifest: its manifest: labels and input preparation.
        folder: class folders, or train/ (val/, test/) above them.
        split: with split folders, the one to evaluate (default ``test``, else ``val``); a
            folder without them is evaluated whole.
        strict: refuse, rather than skip, a file that is not a readable image.
        least_confident: how many of the least confident files to name.
        batch_size: images per forward pass.
        cache: where decoded pixels are kept; None for the default folder.

    Returns:
        The report.

    Raises:
        FolderError: a missing or empty folder, a class folder the model has no label for, or a
            split the folder does not have.
    """
    if manifest.kind != "image":
        raise FolderError(f"{manifest.name_and_version} reads {manifest.kind}, not images")
    cache = cache if cache is not None else ImageCache()
    scan = scan_folder(folder, strict, cache=cache, for_training=False)
    if scan.split_by == "stratified":
        if split not in (None, "all"):
            raise FolderError(f"{folder} has no split folders; leave out the split to evaluate it whole")
        entries, split = sorted(scan.splits["train"] + scan.splits["val"]), "all"
    else:
        split = split or ("test" if scan.splits["test"] else "val")
        if split not in scan.splits or not scan.splits[split]:
            raise FolderError(f"{folder} has no {split}/ images")
        entries = scan.splits[split]
    labels = list(manifest.labels)
    unknown = [name for name in scan.classes if name not in labels]
    if unknown:
        raise FolderError(
            f"class folder {unknown[0]!r} is not one of {manifest.name_and_version}'s labels "
            f"({', '.join(labels[:10])}{', ...' if len(labels) > 10 else ''})"
        )
    to_model_label = [labels.index(name) for name in scan.classes]
    entries = [(path, to_model_label[label]) for path, label in entries]
    dataset = ImageFolderDataset(scan.root, entries, InputSpec.from_manifest(manifest), cache=cache)
    result = evaluate(network, dataset, batch_size=batch_size)
    return _report(manifest, scan.root, split, labels, entries, result, least_confident, scan.skipped)


def _report(
    manifest: Manifest,
    root: Path,
    split: str,
    labels: list[str],
    entries: list[tuple[str, int]],
    result: EvaluationResult,
    least_confident: int,
    skipped: tuple[Any, ...],
) -> FolderReport:
    """The per-class, confusion, timing and confidence figures from the per-sample columns."""
    columns = result.per_sample
    steps = range(1, result.timesteps + 1)
    confusion = [[0] * len(labels) for _ in labels]
    present = sorted({label for _, label in entries})
    per_class_timesteps = {labels[label]: dict.fromkeys(steps, 0) for label in present}
    for true, predicted, step in zip(
        columns["label"], columns["class_index"], columns["decision_timestep"], strict=True
    ):
        confusion[true][predicted] += 1
        per_class_timesteps[labels[true]][step] += 1
    images = {labels[label]: sum(confusion[label]) for label in present}
    order = sorted(range(len(entries)), key=lambda index: (columns["confidence"][index], entries[index][0]))
    return FolderReport(
        model=manifest.name_and_version,
        folder=str(root),
        split=split,
        labels=labels,
        result=result,
        per_class_accuracy={
            labels[label]: confusion[label][label] / images[labels[label]] for label in present
        },
        per_class_images=images,
        confusion=confusion,
        decision_timesteps=dict(result.decision_timestep_counts),
        decision_timesteps_per_class=per_class_timesteps,
        least_confident=[
            UnsureFile(
                path=entries[index][0],
                label=labels[columns["label"][index]],
                predicted=labels[columns["class_index"][index]],
                confidence=round(columns["confidence"][index], 4),
                decision_timestep=columns["decision_timestep"][index],
            )
            for index in order[:least_confident]
        ],
        skipped=[f"{item.path}: {item.reason}" for item in skipped],
    )
