"""Energy tables (15)-(17) by hand, temporal similarity (18), and the report on a real model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.helpers import MODEL_STORE
from training.analysis.similarity import TemporalSimilarity
from training.analysis.tables import ModelSummary, energy_table, normalized_energy_table
from training.decoding import first_spike_decision
from training.evaluate import evaluate
from training.network.network import SpikingNetwork
from training.network.spec import NetworkSpec


def test_tables_2_and_3_by_hand():
    ann = ModelSummary("ann", 0.99, 1.0, 0.0, 10e-9)
    rate = ModelSummary("rate", 0.98, 4.0, 2000.0, 3e-9)
    latency = ModelSummary("latency", 0.97, 1.25, 500.0, 0.5e-9)
    table_2 = energy_table([latency, rate], ann)
    assert [r["ratio_to_ann"] for r in table_2] == [1.0, 0.05, 0.3]
    assert table_2[1]["delta_accuracy"] == pytest.approx(-0.02)
    table_3 = normalized_energy_table([latency], rate)
    # (17) on normalised values: T' = 1.25 / 4, S' = 500 / 2000
    assert table_3[0]["truenorth"] == pytest.approx(1.0) and table_3[0]["spinnaker"] == pytest.approx(1.0)
    assert table_3[1]["truenorth"] == pytest.approx(0.6 * 0.3125 + 0.4 * 0.25)
    assert table_3[1]["spinnaker"] == pytest.approx(0.36 * 0.3125 + 0.64 * 0.25)


@torch.no_grad()
def test_energy_of_a_tiny_network_from_its_spikes_by_hand():
    torch.manual_seed(0)
    network = SpikingNetwork(
        NetworkSpec("digits_net", (1, 8, 8), 10, arch_args={"channels": [4]}, stem_channels=2, timesteps=3)
    ).eval()
    network.head.module.weight.data.mul_(20)
    images = torch.rand(5, 1, 8, 8)
    result = evaluate(network, list(zip(images, [0] * 5)))
    output = network(images, record_spikes=True)
    decision = first_spike_decision(output.spikes, output.membrane)
    total = 0.0
    for b in range(5):
        ran = int(decision.decision_timestep[b])
        encoder_spikes = float(output.recorded["encoder"][:ran, b].sum())  # into conv 1 (2x8x8 neurons)
        hidden = output.recorded["body.layers.0.layers.2"][:ran, b]  # 4x8x8, max-pooled into the head
        pooled = float(torch.nn.functional.max_pool2d(hidden, 2).sum())
        macs = 8 * 8 * 1 * 2 * 9  # Phi: H_out W_out C_in C_out K^2, once
        sops = encoder_spikes / (2 * 8 * 8) * (8 * 8 * 2 * 4 * 9) + pooled / (4 * 4 * 4) * (4 * 4 * 4 * 10)
        total += 4.6e-12 * macs + 0.9e-12 * sops
    assert result.energy_joules_per_sample == pytest.approx(total / 5, rel=1e-12)


def test_temporal_similarity_18_by_hand():
    maps = torch.tensor(
        [
            [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]],  # t=1: sample a, sample b (silent)
            [[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]],
        ]
    )  # t=2
    similarity = TemporalSimilarity(2)
    similarity.add(maps)
    matrix = similarity.matrix()
    # sample a: cos = 1 / (sqrt 2 * sqrt 2) = 0.5; sample b has no spike at t=1: counted 0
    assert matrix[0, 1] == pytest.approx((0.5 + 0.0) / 2) and matrix[1, 0] == matrix[0, 1]
    assert np.allclose(np.diag(matrix), 1.0)


@pytest.mark.slow
def test_report_on_the_shipped_digits_model(tmp_path):
    from training.contract.manifest import read_manifest, resolve_version_dir
    from training.report import build_report

    report = build_report(MODEL_STORE / "digits", "digits", tmp_path, seed=0)
    saved = json.loads((tmp_path / "report.json").read_text())
    manifest = read_manifest(resolve_version_dir(MODEL_STORE / "digits"))
    assert saved["table_1"][0]["accuracy"] == pytest.approx(manifest.evaluation.accuracy)
    assert {"table_1", "table_2", "table_3", "table_4", "temporal_similarity", "figures"} <= saved.keys()
    assert len(saved["table_4"]["latency"]["per_corruption"]) == 15
    assert len(saved["table_4"]["latency"]["per_severity"]) == 5
    # the shipped model is trained on inputs as users send them: mean error over 15 x 5 <= 15%
    assert saved["table_4"]["latency"]["mce"] <= 0.15
    for name in report["figures"].values():
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert saved["table_2"][1]["ratio_to_ann"] < 1


@pytest.mark.slow
def test_table_iv_on_a_seeded_subset_reports_its_own_clean_error(tmp_path):
    from training.contract.images.model_input import InputSpec
    from training.data import dataset_info, load_dataset
    from training.evaluate import evaluate
    from training.report import build_report, from_uint8_images, to_uint8_images
    from training.store.load import load_network

    first = build_report(MODEL_STORE / "digits", "digits", tmp_path / "a", seed=3, robustness_samples=40)
    again = build_report(MODEL_STORE / "digits", "digits", tmp_path / "b", seed=3, robustness_samples=40)
    assert first["table_4_samples"] == 40 and first["samples"] == 360  # Tables I-III stay on the whole split
    assert first["table_4"] == again["table_4"]  # the subset and the corruptions follow the seed
    network, manifest = load_network(MODEL_STORE / "digits")
    images, labels = to_uint8_images(load_dataset("digits", "test"), dataset_info("digits"))
    chosen = np.random.default_rng(3).permutation(len(labels))[:40]
    clean = list(
        zip(from_uint8_images(images[chosen], InputSpec.from_manifest(manifest)), labels[chosen].tolist())
    )
    assert first["table_4"]["latency"]["clean_error"] == pytest.approx(1 - evaluate(network, clean).accuracy)


@pytest.mark.slow
def test_experiment_writes_the_results_page_from_real_runs(tmp_path):
    from training.experiment import VARIANTS, run_experiment

    page = run_experiment(tmp_path / "docs", tmp_path / "work", epochs=1, robustness=False)
    text = page.read_text()
    for heading in ("Table I", "Table II", "Table III", "Ablations", "Time scalability", "Against the paper"):
        assert heading in text
    for image in (
        "results/digits/time_scan.png",
        "results/digits/difficulty.png",
        "results/digits/temporal_similarity.png",
    ):
        assert (page.parent / image).exists() and f"({image})" in text
    assert sorted(p.name for p in (tmp_path / "work" / "store").iterdir()) == sorted(VARIANTS)


def test_decision_time_of_right_and_wrong_answers_by_hand():
    from training.report import decision_time_by_correctness

    split = decision_time_by_correctness([1, 1, 2, 4, 3], [True, True, True, False, False])
    assert split == {
        "right": {"samples": 3, "mean_decision_timestep": 4 / 3},
        "wrong": {"samples": 2, "mean_decision_timestep": 3.5},
    }
    assert decision_time_by_correctness([1, 2], [True, True])["wrong"] == {
        "samples": 0,
        "mean_decision_timestep": None,
    }
