"""A short real training run on digits, checkpoint + resume, and the configs."""

import json

import pytest

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
def test_resume_continues_where_the_checkpoint_stopped(tmp_path):
    straight = train(load_config("digits", ["epochs=2", "network.arch_args.channels=[8, 16]"]), progress=False)
    first = train(load_config("digits", ["epochs=2", "network.arch_args.channels=[8, 16]"]), run_dir=tmp_path,
                  progress=False)
    assert len(first.history) == 2
    resumed = train(load_config("digits", ["epochs=3", "network.arch_args.channels=[8, 16]"]), run_dir=tmp_path,
                    resume=True, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert resumed.history[:2] == first.history
    network, config, history = network_from_checkpoint(tmp_path)
    assert config.epochs == 3 and len(history) == 3
    assert straight.history[0]["loss"] == pytest.approx(first.history[0]["loss"])  # seeded


def test_every_shipped_config_builds_its_network():
    names = shipped_configs()
    assert {"digits", "cifar10_vgg11", "cifar10_vgg16", "cifar10_sew_resnet18", "cifar100_vgg11",
            "cifar100_sew_resnet18", "tiny_imagenet_sew_resnet18"} <= set(names)
    for name in names:
        config = load_config(name)
        spec = config.network_spec()
        if name != "digits":
            assert (config.epochs, config.lr, spec.timesteps, config.loss) == (200, 1e-3, 4, {"name": "tad", "temperature": 2.0})


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
