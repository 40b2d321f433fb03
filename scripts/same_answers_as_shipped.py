"""A stored version's answers with this checkout's ONNX graphs against its own shipped graphs.

    python scripts/same_answers_as_shipped.py model_store/fashion-mnist/2

Exports the version's weights again into a temporary store with this checkout's exporter, then
classifies every test input of the version's data set on the onnx runtime with both, with the
decision-only start off and forced on. Prints one JSON line per start: how many answers are
identical (class, decision timestep, exit reason, output and per-layer spike counts) and the
largest score difference.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sized
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch.utils.data import Dataset

from service.inference.early_exit import Outcome, Widths, classify
from service.inference.runtimes.onnx_runtime import OnnxRuntime
from training.contract.manifest import read_manifest, resolve_version_dir
from training.data import dataset_info, load_dataset
from training.evaluate import evaluate
from training.store.export import export_version
from training.store.load import load_network


def _key(outcome: Outcome) -> tuple[int, int, str, list[int], list[float]]:
    """What two answers must share to count as identical."""
    return (
        outcome.class_index,
        outcome.decision_timestep,
        outcome.exit_reason,
        outcome.output_spikes,
        outcome.layer_spikes,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "version_dir", help="a model-store version with ONNX graphs, e.g. model_store/fashion-mnist/2"
    )
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args(argv)
    source = resolve_version_dir(Path(args.version_dir))
    network, manifest = load_network(source)
    if manifest.onnx is None:
        raise SystemExit(f"same_answers_as_shipped: {source} has no ONNX graphs to compare with")
    if manifest.kind != "image":
        raise SystemExit(f"same_answers_as_shipped: {source} takes event streams; this compares image models")
    dataset = manifest.evaluation.dataset
    test = load_dataset(dataset, "test", timesteps=network.timesteps)
    size = len(cast(Sized, test))  # torch's Dataset type declares no __len__
    images = torch.stack([test[i][0] for i in range(size)]).numpy()
    widths = Widths.from_manifest(manifest)
    with tempfile.TemporaryDirectory() as scratch:
        sample = [test[i] for i in range(min(size, 8))]
        # evaluate batches any sequence of (input, label) through a DataLoader; it annotates Dataset.
        evaluation = evaluate(network, cast("Dataset[tuple[torch.Tensor, int]]", sample))
        again = export_version(
            network, scratch, manifest.name, dataset_info(dataset, network.timesteps), evaluation, onnx=True
        )
        shipped, current = OnnxRuntime(source, manifest), OnnxRuntime(again, read_manifest(again))
        for decision_first in (False, True):
            current.decides_first = decision_first
            before, after = [], []
            for start in range(0, len(images), args.batch):
                before += classify(shipped, images[start : start + args.batch], widths)
                after += classify(current, images[start : start + args.batch], widths)
            print(
                json.dumps(
                    {
                        "version": manifest.name_and_version,
                        "inputs": len(images),
                        "decision_only_start": decision_first,
                        "identical_answers": sum(_key(a) == _key(b) for a, b in zip(before, after)),
                        "largest_score_difference": max(
                            float(np.abs(np.subtract(a.scores, b.scores)).max())
                            for a, b in zip(before, after)
                        ),
                    }
                ),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
