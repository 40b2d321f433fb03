"""The firstspike command as users run it, including the shipped digits model."""

import json
from importlib.metadata import version

import pytest

from tests.helpers import ROOT, firstspike
from training.contract.extras import needs

SHIPPED = ROOT / "model_store" / "digits" / "1"


@pytest.mark.parametrize("command", [[], ["train"], ["eval"], ["export"], ["serve"]])
def test_help(command):
    completed = firstspike(*command, "--help")
    assert completed.returncode == 0 and "usage: firstspike" in completed.stdout


def test_version():
    completed = firstspike("--version")
    assert completed.returncode == 0 and completed.stdout == f"firstspike {version('firstspike')}\n"


@pytest.mark.parametrize(
    "module, extra, hint",
    [
        ("torch", "train", "train needs PyTorch: pip install 'firstspike[train]'"),
        ("onnxscript", "train", "train needs onnxscript: pip install 'firstspike[train]'"),
        ("matplotlib", "train", "train needs matplotlib: pip install 'firstspike[train]'"),
        ("safetensors", None, "train needs safetensors: pip install 'firstspike[torch]'"),
        ("onnxruntime", None, "train needs onnxruntime: pip install firstspike"),  # the core install has it
    ],
)
def test_a_missing_optional_module_is_named_with_its_extra(module, extra, hint):
    assert (
        needs("train", ModuleNotFoundError(f"No module named '{module}'", name=f"{module}.sub"), extra)
        == hint
    )


def test_other_import_errors_are_not_dressed_up_as_a_missing_extra():
    assert needs("train", ModuleNotFoundError("No module named 'numpy'", name="numpy")) is None
    assert (
        needs("train", ImportError("cannot import name 'x' from 'training.data'", name="training.data"))
        is None
    )


@pytest.mark.slow
def test_shipped_digits_model_meets_its_targets():
    completed = firstspike("eval", str(SHIPPED), "--dataset", "digits", "--split", "test", "--json")
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert {"accuracy", "mean_decision_timestep", "firing_rate", "samples"} <= result.keys()
    assert result["samples"] == 360
    assert result["accuracy"] >= 0.98
    assert result["mean_decision_timestep"] <= 1.2
    assert result["timesteps"] == 4
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    assert result["accuracy"] == pytest.approx(manifest["evaluation"]["accuracy"])


@pytest.mark.slow
def test_train_export_eval_round_trip(tmp_path):
    run = tmp_path / "run"
    trained = firstspike(
        "train",
        "--config",
        "digits",
        "--set",
        "epochs=1",
        "--set",
        "network.arch_args.channels=[8, 16]",
        "--out",
        str(run),
        "--quiet",
    )
    assert trained.returncode == 0, trained.stderr
    exported = firstspike("export", str(run), "--store", str(tmp_path / "store"), "--name", "mini")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["exported"].endswith("mini/1")
    evaluated = firstspike("eval", str(tmp_path / "store" / "mini"), "--json")
    assert evaluated.returncode == 0 and json.loads(evaluated.stdout)["model"] == {
        "name": "mini",
        "version": 1,
    }
    # calibrate replays the output neuron on one pass over training images and names export flags
    calibrated = firstspike(
        "calibrate",
        str(run),
        "--samples",
        "200",
        "--max-mean-timestep",
        "4",
        "--leaks",
        "1",
        "--thresholds",
        "0.1,1,100",
    )
    assert calibrated.returncode == 0, calibrated.stderr
    scan = json.loads(calibrated.stdout)
    assert scan["split"] == "train" and scan["samples"] == 200 and len(scan["rules"]) == 3
    assert scan["chosen"]["accuracy"] == max(rule["accuracy"] for rule in scan["rules"])
    never = scan["rules"][2]  # a threshold no current reaches: every sample waits for T and the membrane
    assert never["no_spike_share"] == 1.0 and never["mean_decision_timestep"] == 4.0
    assert scan["export_flags"] == f"--output-leak 1 --output-threshold {scan['chosen']['threshold']:g}"
    # The decision rule can be set at export; the hidden neurons stay as trained.
    exported = firstspike(
        "export",
        str(run),
        "--store",
        str(tmp_path / "store"),
        "--name",
        "mini",
        "--output-leak",
        "1.0",
        "--output-threshold",
        "3",
    )
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads((tmp_path / "store" / "mini" / "2" / "manifest.json").read_text())
    assert (
        manifest["network"]["output_neuron"]["leak"] == 1.0
        and manifest["network"]["output_neuron"]["threshold"] == 3.0
    )
    assert manifest["network"]["neuron"]["leak"] == 0.5 and manifest["network"]["neuron"]["threshold"] == 1.0
    refused = firstspike("export", str(run), "--store", str(tmp_path / "store"), "--output-threshold", "-1")
    assert (
        refused.returncode == 2
        and refused.stderr.strip() == "firstspike export: error: threshold must be positive, got -1.0"
    )
    assert sorted(p.name for p in (tmp_path / "store" / "mini").iterdir()) == [
        "1",
        "2",
    ]  # nothing half-written


@pytest.mark.slow
def test_a_stored_version_exports_again_as_a_new_version_with_this_releases_graphs(tmp_path):
    source = ROOT / "model_store" / "digits" / "2"
    exported = firstspike("export", str(source), "--store", str(tmp_path / "store"), "--onnx")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["exported"].endswith("digits/1")
    old = json.loads((source / "manifest.json").read_text())
    new = json.loads((tmp_path / "store" / "digits" / "1" / "manifest.json").read_text())
    assert new["files"]["weights.safetensors"] == old["files"]["weights.safetensors"], "the same weights"
    assert new["evaluation"] == old["evaluation"], "so the same answers on the test set"
    assert (
        new["training"]["exported_from"] == "digits/2"
        and new["training"]["config"] == old["training"]["config"]
    )
    assert set(new["onnx"]) >= {"encoder", "step", "first_step", "first_decision"}
    from training.network.spec import NetworkSpec  # the same network (the old manifest leaves defaults out)

    assert NetworkSpec.from_dict(new["network"]) == NetworkSpec.from_dict(old["network"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["eval", "/nonexistent/model"],
        ["eval", str(SHIPPED), "--dataset", "imagenet"],
        ["eval", str(SHIPPED), "--split", "validation"],
        ["eval", str(SHIPPED), "--dataset", "cifar10"],
        ["train", "--config", "no-such-config"],
        ["train", "--config", "digits", "--set", "epochs"],
        ["train", "--config", "digits", "--set", "network.coding=phase"],
        ["export", "/nonexistent/run"],
        ["calibrate", "/nonexistent/run", "--max-mean-timestep", "2"],
        ["calibrate", str(SHIPPED), "--max-mean-timestep", "0.5"],
        ["calibrate", str(SHIPPED), "--max-mean-timestep", "2", "--thresholds", "1,-2"],
        ["serve", "--model-store", "/nonexistent/store"],
        ["serve", "--threads", "0"],
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(args):
    completed = firstspike(*args)
    assert completed.returncode != 0
    assert "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr
    assert completed.stderr.startswith("firstspike")
