"""The shipped fashion-mnist model as users meet it: ``firstspike eval`` over the real test split,
and a real server answering real PNG and JPEG files (Debian's dataset-fashion-mnist, which
``make test`` installs)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from torch.utils.data import Subset

from tests.helpers import MODEL_STORE, firstspike, png_bytes
from training.config import TrainConfig, load_config
from training.data import load_dataset
from training.data.fashion_mnist import fashion_mnist_split
from training.evaluate import evaluate
from training.robustness.input_forms import PRODUCT_PHOTO_FORMS
from training.store.load import load_network

MODEL = MODEL_STORE / "fashion-mnist"
SAMPLES = 1000  # the first 1,000 test images (100 per class, near enough): fixed, so no test is flaky
# The goal, above every published time-to-first-spike result (93.14%); fashion-mnist/2 gets 94.07%
# (docs/models.md, "Fashion-MNIST").
MIN_ACCURACY = 0.932


@pytest.fixture(scope="module")
def first_test_images():
    pixels, labels = fashion_mnist_split("test")
    return pixels[:SAMPLES], labels[:SAMPLES].tolist()


@pytest.fixture(scope="module")
def reference():
    network, _ = load_network(MODEL)
    return evaluate(network, Subset(load_dataset("fashion-mnist", "test"), range(SAMPLES)))


def _classify(server, files: list[bytes], content_type: str) -> list[dict]:
    answers = []
    with server.client() as client:
        for body in files:
            response = client.post(
                "/classify",
                params={"model": "fashion-mnist"},
                content=body,
                headers={"content-type": content_type},
            )
            assert response.status_code == 200, response.text
            answers.append(response.json())
    return answers


@pytest.mark.slow
def test_shipped_model_meets_its_targets_on_all_10000_test_images():
    completed = firstspike("eval", str(MODEL), "--dataset", "fashion-mnist", "--split", "test", "--json")
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["samples"] == 10_000 and result["timesteps"] == 4
    manifest = json.loads((sorted(MODEL.iterdir())[-1] / "manifest.json").read_text())
    assert result["accuracy"] == pytest.approx(manifest["evaluation"]["accuracy"])
    assert result["accuracy"] >= MIN_ACCURACY
    assert result["mean_decision_timestep"] <= 1.5
    # adaptive: some images wait beyond timestep 1
    assert sum(n for t, n in result["decision_timestep_counts"].items() if int(t) > 1) > 0


def test_28px_pngs_over_http_get_the_evals_answers(server, first_test_images, reference):
    pixels, labels = first_test_images
    answers = _classify(server, [png_bytes(image) for image in pixels], "image/png")
    assert [a["class_index"] for a in answers] == reference.per_sample["class_index"]
    assert [a["decision_timestep"] for a in answers] == reference.per_sample["decision_timestep"]
    names = load_dataset("fashion-mnist", "test").info.labels
    assert [a["label"] for a in answers] == [names[a["class_index"]] for a in answers]
    assert answers[0]["label"] == "Ankle boot" and answers[0]["model"]["name"] == "fashion-mnist"


@pytest.mark.parametrize("form", PRODUCT_PHOTO_FORMS, ids=lambda form: form.name)
def test_112px_rgb_jpegs_stay_accurate(server, first_test_images, form):
    """112 px RGB JPEGs, as a shop's thumbnails of the garments would come: on Fashion-MNIST's black
    and (as shops mostly shoot) on white."""
    pixels, labels = first_test_images
    answers = _classify(server, [form.encode(image) for image in pixels], "image/jpeg")
    accuracy = np.mean([a["class_index"] == y for a, y in zip(answers, labels)])
    assert accuracy >= 0.90, accuracy


def test_the_shipped_model_was_trained_with_the_shipped_config():
    """``firstspike train --config fashion_mnist_vgg`` is the recipe of the latest version: the same
    settings, except where the training machine kept the data."""
    manifest = json.loads((sorted(MODEL.iterdir())[-1] / "manifest.json").read_text())
    # settings added since take their defaults, as they did in the run
    trained = TrainConfig.from_dict(dict(manifest["training"]["config"], data_root=None)).to_dict()
    assert trained == load_config("fashion_mnist_vgg").to_dict()
    assert manifest["training"]["epochs_trained"] == trained["epochs"]
