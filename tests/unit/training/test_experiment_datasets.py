"""``firstspike experiment`` runs the paper's comparisons on any image data set it can load: here
CIFAR-10 (a tiny stand-in of the real pickle files) through the paper's own config."""

from __future__ import annotations

import json

import pytest
from test_data_loaders import write_cifar10

from tests.helpers import firstspike
from training.data.cifar import CIFAR10_INFO
from training.experiment import VARIANTS


@pytest.mark.slow
def test_the_experiment_runs_on_cifar10_from_the_paper_config(tmp_path):
    write_cifar10(tmp_path / "data")
    completed = firstspike(
        "experiment",
        "--config",
        "cifar10_vgg11",
        "--set",
        f"data_root={tmp_path / 'data'}",
        "--set",
        "network.arch_args.width=0.0625",
        "--set",
        "batch_size=4",
        "--set",
        "workers=0",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "docs"),
        "--page",
        "results-cifar10.md",
        "--work",
        str(tmp_path / "work"),
        "--robustness-samples",
        "4",
        "--events-model",
        "",
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    text = (tmp_path / "docs" / "results-cifar10.md").read_text()
    assert text.startswith("# Results on cifar10")
    for table in (
        "Table I",
        "Table II",
        "Table III",
        "Table IV",
        "Ablations: LE module and TAD loss",
        "Time scalability",
    ):
        assert table in text, table
    assert sorted(path.name for path in (tmp_path / "work" / "store").iterdir()) == sorted(VARIANTS)
    # the LE ablation's encoder reads raw pixels: the manifest carries CIFAR-10's normalisation
    manifest = json.loads(
        (tmp_path / "work" / "store" / "latency-intensity-tad" / "1" / "manifest.json").read_text()
    )
    assert manifest["network"]["input_mean"] == list(CIFAR10_INFO.mean)
