"""A short real training run on digits, checkpoint + resume, and the configs."""

import json

import pytest
import torch

from training.config import TrainConfig, apply_override, load_config, shipped_configs
from training.trainer import network_from_checkpoint, train


@pytest.mark.slow
def test_short_digits_training_reaches_90_percent(tmp_path):
    config = load_config("digits", ["epochs=8", "eval_every=8"])
    result = train(config, run_dir=tmp_path, progress=False)
    final = result.history[-1]
    assert final["test_accuracy"] >= 0.90, final
    assert 1.0 <= final["test_mean_decision_timestep"] <= 4.0
    assert (tmp_path / "checkpoint.pt").exists()
    assert json.loads((tmp_path / "history.json").read_text())[-1]["epoch"] == 8


@pytest.mark.slow
@pytest.mark.parametrize("subset", [[], ["train_images=300"]])
def test_interrupted_and_resumed_run_equals_a_straight_run(tmp_path, subset):
    config = load_config(
        "digits", ["epochs=3", "network.arch_args.channels=[8, 16]", "eval_every=100", *subset]
    )
    straight = train(config, progress=False)
    partial = train(config, run_dir=tmp_path, progress=False, until_epoch=2)
    assert [h["epoch"] for h in partial.history] == [1, 2]
    resumed = train(config, run_dir=tmp_path, resume=True, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    deterministic = ("loss", "train_accuracy", "train_mean_decision_timestep", "lr")
    for a, b in zip(straight.history, resumed.history):
        assert {k: a[k] for k in deterministic} == {k: b[k] for k in deterministic}
    assert resumed.history[-1]["test_accuracy"] == straight.history[-1]["test_accuracy"]
    for (name, a), b in zip(straight.network.state_dict().items(), resumed.network.state_dict().values()):
        assert torch.equal(a, b), name
    network, config, history = network_from_checkpoint(tmp_path)
    assert len(history) == 3


def test_every_shipped_config_builds_its_network():
    names = shipped_configs()
    assert {
        "digits",
        "cifar10_vgg11",
        "cifar10_vgg16",
        "cifar10_sew_resnet18",
        "cifar100_vgg11",
        "cifar100_sew_resnet18",
        "tiny_imagenet_sew_resnet18",
        "cifar10_dvs_vgg11",
        "digits_dvs",
        "fashion_mnist",
        "fashion_mnist_vgg",
    } <= set(names)
    for name in names:
        config = load_config(name)
        spec = config.network_spec()
        if name not in (
            "digits",
            "digits_dvs",
            "fashion_mnist",
            "fashion_mnist_vgg",
        ):  # the paper's runs; these are ours
            assert (config.epochs, config.lr, spec.timesteps, config.loss) == (
                200,
                1e-3,
                4,
                {"name": "tad", "temperature": 2.0},
            )


def test_overrides_and_bad_configs(tmp_path):
    values = {"network": {"coding": "latency"}}
    apply_override(values, "network.coding=rate")
    apply_override(values, "epochs=5")
    assert values == {"network": {"coding": "rate"}, "epochs": 5}
    with pytest.raises(ValueError):
        apply_override(values, "no-equals-sign")
    with pytest.raises(ValueError, match="unknown config keys"):
        TrainConfig.from_dict({"name": "x", "dataset": "digits", "network": {}, "epoch": 3})
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError):
        load_config(bad)
    with pytest.raises(ValueError, match="unknown loss"):
        train(load_config("digits", ["epochs=1", "loss={name: focal}"]), progress=False)


def test_checkpoint_missing_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        network_from_checkpoint(tmp_path)


@pytest.mark.slow
def test_bf16_channels_last_training_keeps_float32_weights_and_learns(tmp_path):
    config = load_config("digits", ["epochs=6", "eval_every=6", "precision=bf16", "channels_last=true"])
    result = train(config, run_dir=tmp_path, progress=False)
    assert result.history[-1]["test_accuracy"] >= 0.85
    state = result.network.state_dict()
    assert all(value.dtype == torch.float32 for value in state.values() if value.is_floating_point())
    # The exported model is the usual float32 one, evaluated without autocast.
    from training.data import dataset_info, load_dataset
    from training.evaluate import evaluate
    from training.store.export import export_version

    evaluation = evaluate(result.network, load_dataset("digits", "test"))
    export_version(result.network, tmp_path / "store", "bf16", dataset_info("digits"), evaluation)
    assert (tmp_path / "store" / "bf16" / "1" / "weights.safetensors").exists()


def test_precision_and_subset_must_be_valid():
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        load_config("digits", ["precision=fp16"])
    for bad in ("0", "-5", "1.5", "many"):
        with pytest.raises(ValueError, match="train_images must be a positive whole number"):
            load_config("digits", [f"train_images={bad}"])
