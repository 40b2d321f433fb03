"""Your own images, measured: Fashion-MNIST written out as a folder of class folders of PNGs,
trained with ``firstspike train --data`` and its default recipe, served, and asked over HTTP.

    python -m benchmarks.image_folder [--work DIR] [--train-images 6000] [--test-images 1000]
                                      [--skip-builtin] [--skip-cnn] [--json FILE]

Side by side, on the same training images:
  * folder: ``firstspike train --data`` (default recipe, 10% stratified validation split, the best
    epoch on it kept, output neurons calibrated on it for 1.5 timesteps), exported with ONNX.
  * built-in: the same recipe through the ``fashion-mnist`` data set path (``train_images``: the
    same first images; it evaluates on test and keeps its last epoch), calibrated on its
    training split for the same budget.
  * plain CNN: the same network as an ANN (ReLU, one pass, mean cross-entropy), trained on the
    folder's split for as many epochs as the folder run's ANN twin (the SNN's where it had
    none): what a conventional model of the same size reaches.
Each SNN is served by ``firstspike serve`` and sent the held-out test images (the first of the
test split, as PNGs) over HTTP; the CNN is judged by ``firstspike eval --data`` on the same
files. Training runs as a user runs it, one process each, timed by the wall clock; the image
cache starts empty, so the folder's time includes decoding every file once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks.common import png, post_all, start_service
from training.config import ANN_TWIN_OVERRIDES
from training.data.fashion_mnist import FASHION_MNIST_INFO, fashion_mnist_split
from training.trainer import PRETRAINING_DIR


def folder_name(label: str) -> str:
    """A Fashion-MNIST label as a folder name: ``T-shirt/top`` is ``t-shirt-top``."""
    return label.lower().replace("/", "-").replace(" ", "-")


CLASS_FOLDERS = [folder_name(label) for label in FASHION_MNIST_INFO.labels]


def write_folder(root: Path, pixels: np.ndarray, labels: np.ndarray) -> None:
    """One PNG per image under ``root/<class>/``, named by its index in the split."""
    for name in CLASS_FOLDERS:
        (root / name).mkdir(parents=True, exist_ok=True)
    for index, (image, label) in enumerate(zip(pixels, labels, strict=True)):
        (root / CLASS_FOLDERS[int(label)] / f"{index:05d}.png").write_bytes(png(image))


def firstspike(*args: str, env: dict[str, str]) -> tuple[float, str]:
    """Run ``firstspike`` as a user does; its wall seconds and its stdout (exit on failure)."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "training.cli", *args], env=env, capture_output=True, text=True, check=False
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"benchmark: firstspike {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return seconds, result.stdout


def over_http(store: Path, model: str, files: list[Path], truth: list[str]) -> dict[str, Any]:
    """Accuracy, mean decision timestep and per-class accuracy of ``model`` over HTTP."""
    server = start_service(store)
    try:
        requests = [({"model": model}, path.read_bytes(), "image/png") for path in files]
        answers = post_all(server.url, "/classify", requests, clients=2)
    finally:
        server.stop()
    # the built-in data set's labels are Fashion-MNIST's own, the folder's are their folder names
    right = [folder_name(answer["label"]) == label for answer, label in zip(answers, truth, strict=True)]
    per_class = {
        name: float(np.mean([ok for ok, label in zip(right, truth, strict=True) if label == name]))
        for name in sorted(set(truth))
    }
    return {
        "accuracy": float(np.mean(right)),
        "mean_decision_timestep": float(np.mean([answer["decision_timestep"] for answer in answers])),
        "per_class_accuracy": per_class,
    }


def pretraining_figures(run: Path) -> dict[str, Any] | None:
    """The ANN twin's run inside a folder run: epochs, seconds and best validation accuracy."""
    history_file = run / "history.json"
    if not history_file.exists():
        return None
    history = json.loads(history_file.read_text())
    accuracies = [row["val_accuracy"] for row in history if row.get("val_accuracy") is not None]
    return {
        "epochs": len(history),
        "seconds": round(sum(row["seconds"] for row in history), 1),
        "best_val_accuracy": max(accuracies, default=None),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", help="folder for the images, runs and store (default: a temporary one)")
    parser.add_argument("--train-images", type=int, default=6000, help="first N training images")
    parser.add_argument("--test-images", type=int, default=1000, help="first N test images, held out")
    parser.add_argument("--skip-builtin", action="store_true", help="leave out the built-in data set path")
    parser.add_argument("--skip-cnn", action="store_true", help="leave out the plain CNN")
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs (a quick check)")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args(argv)
    quick = ["--set", f"epochs={args.epochs}"] if args.epochs else []

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="firstspike-folder-bench-"))
    env = {**os.environ, "XDG_CACHE_HOME": str(work / "cache")}
    train_pixels, train_labels = fashion_mnist_split("train")
    test_pixels, test_labels = fashion_mnist_split("test")
    train_pixels, train_labels = train_pixels[: args.train_images], train_labels[: args.train_images]
    folder, held_out = work / "fashion-folder", work / "held-out"
    if not folder.exists():
        write_folder(folder, train_pixels, train_labels)
        write_folder(held_out, test_pixels[: args.test_images], test_labels[: args.test_images])
    files = sorted(held_out.rglob("*.png"))
    truth = [path.parent.name for path in files]
    figures: dict[str, Any] = {
        "train_images": len(train_labels),
        "per_class": dict(zip(CLASS_FOLDERS, np.bincount(train_labels, minlength=10).tolist(), strict=True)),
        "test_images": len(files),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(figures), flush=True)
    store = work / "store"

    run = work / "run-folder"
    seconds, stdout = firstspike(
        "train", "--data", str(folder), "--out", str(run), "--quiet", *quick, env=env
    )
    recipe = yaml.safe_load((run / "config.yaml").read_text())
    firstspike("export", str(run), "--store", str(store), "--name", "folder", "--onnx", env=env)
    manifest = json.loads((store / "folder" / "1" / "manifest.json").read_text())
    row = {
        "path": "folder",
        "train_seconds": seconds,
        "recipe": {
            key: recipe[key] for key in ("epochs", "batch_size", "lr", "ann_pretraining", "max_mean_timestep")
        }
        | {"input_shape": recipe["network"]["input_shape"], "channels": recipe["network"]["arch_args"]},
        "pretraining": pretraining_figures(run / PRETRAINING_DIR),
        "kept_epoch": manifest["training"].get("kept_epoch"),
        "calibration": manifest["training"].get("calibration"),
        "validation": {k: manifest["evaluation"][k] for k in ("accuracy", "mean_decision_timestep")},
        "http": over_http(store, "folder", files, truth),
    }
    figures["folder"] = row
    print(json.dumps(row), flush=True)

    if not args.skip_builtin:
        builtin = {
            key: value for key, value in recipe.items() if key not in ("data_root", "max_mean_timestep")
        }
        builtin |= {"name": "builtin", "dataset": "fashion-mnist", "train_images": args.train_images}
        builtin["network"] = {
            k: v for k, v in recipe["network"].items() if k not in ("input_shape", "num_classes")
        }
        config = work / "builtin.yaml"
        config.write_text(yaml.safe_dump(builtin))
        run = work / "run-builtin"
        seconds, _ = firstspike(
            "train", "--config", str(config), "--out", str(run), "--quiet", *quick, env=env
        )
        _, calibration = firstspike(
            "calibrate",
            str(run),
            "--max-mean-timestep",
            str(recipe["max_mean_timestep"]),
            "--thresholds",
            "0.25,0.5,0.75,1,1.5,2,2.5,3,4",
            env=env,
        )
        flags = json.loads(calibration)["export_flags"].split()
        firstspike("export", str(run), "--store", str(store), "--name", "builtin", *flags, env=env)
        row = {"path": "built-in", "train_seconds": seconds, "calibration": json.loads(calibration)["chosen"]}
        row["http"] = over_http(store, "builtin", files, truth)
        figures["builtin"] = row
        print(json.dumps(row), flush=True)

    if not args.skip_cnn:
        run = work / "run-cnn"
        overrides = [
            *ANN_TWIN_OVERRIDES,
            "ann_pretraining=null",
            "max_mean_timestep=null",
            # the ANN twin's epochs where the folder run had one (it trains longer than the spiking
            # net), else the spiking net's: the same schedule, not a budget probed again
            f"epochs={max(recipe['epochs'], (figures['folder']['pretraining'] or {}).get('epochs', 0))}",
        ]
        seconds, _ = firstspike(
            "train",
            "--data",
            str(folder),
            "--out",
            str(run),
            "--quiet",
            *[item for override in overrides for item in ("--set", override)],
            env=env,
        )
        firstspike("export", str(run), "--store", str(store), "--name", "cnn", env=env)
        manifest = json.loads((store / "cnn" / "1" / "manifest.json").read_text())
        _, report = firstspike("eval", str(store / "cnn"), "--data", str(held_out), "--json", env=env)
        evaluation = json.loads(report)
        row = {
            "path": "plain CNN (ANN, same network)",
            "train_seconds": seconds,
            "kept_epoch": manifest["training"].get("kept_epoch"),
            "validation_accuracy": manifest["evaluation"]["accuracy"],
            "accuracy": evaluation["result"]["accuracy"],
            "per_class_accuracy": evaluation["per_class_accuracy"],
        }
        figures["cnn"] = row
        print(json.dumps(row), flush=True)

    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
