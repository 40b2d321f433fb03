"""FIRSTSPIKE_RUNTIME=auto, the default: each model version is served by onnx where it has its
ONNX graphs and by torch where it has none; /models and firstspike_model_info say which."""

from __future__ import annotations

import sys

import pytest

from service.inference.registry import make_runtime, resolve_runtime
from service.settings import Settings
from tests.helpers import MODEL_STORE, start_server, stop_server
from training.contract.manifest import ModelStoreError, read_manifest

PNG = {"content-type": "image/png"}


def test_auto_takes_onnx_only_where_the_version_has_graphs():
    with_graphs = read_manifest(MODEL_STORE / "digits" / "1")
    without = with_graphs.model_copy(update={"onnx": None})
    assert resolve_runtime("auto", with_graphs) == "onnx"
    assert resolve_runtime("auto", without) == "torch"
    assert resolve_runtime("torch", with_graphs) == "torch"
    assert resolve_runtime("onnx", without) == "onnx"  # which then refuses the version


@pytest.mark.parametrize(
    "setting, runtimes",
    [("auto", {"1": "onnx", "2": "torch"}), ("torch", {"1": "torch", "2": "torch"}), ("onnx", {"1": "onnx"})],
)
def test_each_version_reports_the_runtime_serving_it(
    tmp_path, graphs_and_none_store, digits_test_pngs, setting, runtimes
):
    server = start_server(tmp_path, env={"FIRSTSPIKE_RUNTIME": setting}, store=graphs_and_none_store)
    try:
        with server.client() as client:
            listing = client.get("/models").json()
            detail = client.get("/models/digits").json()
            info = sorted(
                line
                for line in client.get("/metrics").text.splitlines()
                if line.startswith("firstspike_model_info{")
            )
            answers = {
                version: client.post(
                    "/classify", params={"version": version}, content=digits_test_pngs[0][0], headers=PNG
                )
                for version in ("1", "2")
            }
    finally:
        stop_server(server)
    [summary] = listing["models"]
    assert summary["runtimes"] == detail["runtimes"] == runtimes
    assert summary["versions"] == [int(v) for v in runtimes]
    assert summary["runtime"] == runtimes[max(runtimes)]  # the default version's, as before
    assert info == [
        f'firstspike_model_info{{model="digits",runtime="{runtime}",timesteps="4",version="{version}"}} 1.0'
        for version, runtime in runtimes.items()
    ]
    if setting == "onnx":
        assert (
            list(listing["errors"]) == ["digits/2"] and "has no ONNX graphs" in listing["errors"]["digits/2"]
        )
        assert answers["2"].status_code == 404
    else:
        assert listing["errors"] == {}
        # the same weights give the same answer on either runtime
        assert answers["1"].json()["class_index"] == answers["2"].json()["class_index"]
    assert answers["1"].status_code == 200


@pytest.mark.parametrize("setting", ["auto", "torch"])
def test_without_torch_the_refusal_names_the_extra(monkeypatch, graphs_and_none_store, setting):
    """What the slim install says (tests/slim runs it for real): torch fails to import here."""
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ModuleNotFoundError
    for module in ("service.inference.runtimes.torch_runtime", "training.network.inference"):
        monkeypatch.delitem(sys.modules, module, raising=False)  # imported again, they meet the missing torch
    version_dir = graphs_and_none_store / "digits" / "2"
    with pytest.raises(ModelStoreError) as refused:
        make_runtime(Settings(runtime=setting), version_dir, read_manifest(version_dir))
    message = str(refused.value)
    assert message.startswith(
        f"{version_dir}: the torch runtime needs PyTorch: pip install 'firstspike[torch]'"
    )
    assert ("has no ONNX graphs" in message) == (setting == "auto")  # auto says why it took torch
    assert "No module named" not in message
