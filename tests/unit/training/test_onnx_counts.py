"""Spike counts by pooling in exported graphs: the same counts, checked on onnxruntime."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from training.network.network import SpikingNetwork
from training.network.spec import NetworkSpec
from training.store import onnx_export
from training.store.onnx_counts import count_is_exact, counts_by_pooling
from training.store.onnx_export import (
    FIRST_DECISION_FILE,
    FIRST_STEP_FILE,
    STEP_FILE,
    STEP_OUTPUTS,
    export_onnx,
)
from training.store.onnx_spikes import heaviside_as_hardsigmoid


def test_exactness_bound_by_hand():
    assert count_is_exact(64, 28, 28)  # 64 * 784 * 67 = 3,361,792 <= 2^23
    assert count_is_exact(256, 7, 7)  # 256 * 49 * 259 = 3,248,896
    assert not count_is_exact(512, 14, 14)  # 512 * 196 * 515 = 51,681,280
    assert count_is_exact(1, 1024, 2048) and not count_is_exact(1, 1025, 2048)  # 4 * H * W against 2^23


def _count_graph(shape: tuple[int, int, int], source: str = "spikes", pool: bool = False) -> onnx.ModelProto:
    """x [B, C, H, W] -> a per-sample count of ``source``: spikes (x >= 1), x itself, or a soft
    HardSigmoid of x."""
    channels, height, width = shape
    nodes = [
        helper.make_node("GreaterOrEqual", ["x", "threshold"], ["fired"]),
        helper.make_node("Cast", ["fired"], ["spikes"], to=TensorProto.FLOAT),
    ]
    if source == "soft":  # a HardSigmoid that is no step: values between 0 and 1
        nodes.append(helper.make_node("HardSigmoid", ["x"], ["soft"], alpha=0.2, beta=0.5))
    counted, elements = source, channels * height * width
    if pool:
        nodes.append(helper.make_node("MaxPool", [counted], ["pooled"], kernel_shape=[2, 2], strides=[2, 2]))
        counted, elements = "pooled", channels * (height // 2) * (width // 2)
    nodes += [
        helper.make_node("Reshape", [counted, "flat"], ["view"]),
        helper.make_node("ReduceSum", ["view", "axis"], ["count"], keepdims=1),
    ]
    graph = helper.make_graph(
        nodes,
        "count",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", *shape])],
        [
            helper.make_tensor_value_info("count", TensorProto.FLOAT, ["batch", 1]),
            helper.make_tensor_value_info("spikes", TensorProto.FLOAT, ["batch", *shape]),
        ],
        [
            numpy_helper.from_array(np.array(1.0, np.float32), "threshold"),
            numpy_helper.from_array(np.array([-1, elements], np.int64), "flat"),
            numpy_helper.from_array(np.array([1], np.int64), "axis"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["count"], {"x": x})[0]


def _inputs(shape: tuple[int, ...]) -> np.ndarray:
    """Rows from no spike to all spikes, with densities between, and values just either side of 1."""
    rng = np.random.default_rng(0)
    rows = [np.zeros(shape), np.full(shape, 2.0), np.full(shape, np.nextafter(np.float32(1), np.float32(0)))]
    rows += [rng.random(shape) + density for density in (0.01, 0.3, 0.5, 0.9)]
    rows += [np.where(rng.random(shape) < 0.5, np.float32(1), np.nextafter(np.float32(1), np.float32(0)))]
    return np.stack(rows).astype(np.float32)


# Largest maps the bound admits, one as wide as a Fashion-MNIST layer, and digits' smallest.
@pytest.mark.parametrize("shape", [(64, 44, 44), (64, 28, 28), (256, 7, 7), (4, 512, 512), (128, 2, 2)])
@pytest.mark.parametrize("as_hardsigmoid", [False, True])
def test_pooled_counts_equal_the_reduction(shape, as_hardsigmoid):
    x = _inputs(shape)
    original, rewritten = _count_graph(shape), _count_graph(shape)
    if as_hardsigmoid:
        assert heaviside_as_hardsigmoid(rewritten) == 1
    assert counts_by_pooling(rewritten) == 1
    ops = [node.op_type for node in rewritten.graph.node]
    assert "GlobalAveragePool" in ops and "Reshape" not in ops
    expected, got = _run(original, x), _run(rewritten, x)
    assert expected[1, 0] == np.prod(shape) and expected[0, 0] == 0 and expected[2, 0] == 0
    np.testing.assert_array_equal(got, expected)


def test_counts_of_pooled_spikes_are_rewritten_too():
    shape = (64, 28, 28)
    rewritten = _count_graph(shape, pool=True)
    assert counts_by_pooling(rewritten) == 1
    x = _inputs(shape)
    np.testing.assert_array_equal(_run(rewritten, x), _run(_count_graph(shape, pool=True), x))


@pytest.mark.parametrize(
    "shape, source",
    [
        ((128, 32, 32), "spikes"),  # 128 * 1024 * 131 > 2^23: pooling could round a count
        ((64, 28, 28), "x"),  # not 0s and 1s
        ((64, 28, 28), "soft"),
    ],
)
def test_counts_it_cannot_prove_are_left_alone(shape, source):
    assert not count_is_exact(*shape) or source != "spikes"
    model = _count_graph(shape, source)
    heaviside_as_hardsigmoid(model)  # as the exporter does first: the step is a HardSigmoid too
    before = model.SerializeToString()
    assert counts_by_pooling(model) == 0
    assert model.SerializeToString() == before


def _joined_counts_graph(shape: tuple[int, int, int]) -> onnx.ModelProto:
    """Counts as the exporter joins them: ``layers`` = [spikes, pooled spikes] and ``inputs`` =
    [x itself (not 0s and 1s), spikes], the spikes' count read by both."""
    channels, height, width = shape
    nodes = [
        helper.make_node("GreaterOrEqual", ["x", "threshold"], ["fired"]),
        helper.make_node("Cast", ["fired"], ["spikes"], to=TensorProto.FLOAT),
        helper.make_node("MaxPool", ["spikes"], ["pooled"], kernel_shape=[2, 2], strides=[2, 2]),
    ]
    for name, elements in (
        ("spikes", channels * height * width),
        ("pooled", channels * height * width // 4),
        ("x", channels * height * width),
    ):
        nodes += [
            helper.make_node("Reshape", [name, f"flat_{elements}"], [f"{name}_view"]),
            helper.make_node("ReduceSum", [f"{name}_view", "axis"], [f"{name}_count"], keepdims=1),
        ]
    nodes += [
        helper.make_node("Concat", ["spikes_count", "pooled_count"], ["layers"], axis=1),
        helper.make_node("Concat", ["x_count", "spikes_count"], ["inputs"], axis=1),
    ]
    sizes = {channels * height * width, channels * height * width // 4}
    graph = helper.make_graph(
        nodes,
        "joined",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", *shape])],
        [
            helper.make_tensor_value_info("layers", TensorProto.FLOAT, ["batch", 2]),
            helper.make_tensor_value_info("inputs", TensorProto.FLOAT, ["batch", 2]),
        ],
        [
            numpy_helper.from_array(np.array(1.0, np.float32), "threshold"),
            numpy_helper.from_array(np.array([1], np.int64), "axis"),
            *(numpy_helper.from_array(np.array([-1, size], np.int64), f"flat_{size}") for size in sizes),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_joined_counts_come_from_one_pooled_pass():
    shape = (64, 8, 8)
    original, rewritten = _joined_counts_graph(shape), _joined_counts_graph(shape)
    assert counts_by_pooling(rewritten) == 2  # the spikes' and the pooled spikes' counts
    ops = [node.op_type for node in rewritten.graph.node]
    assert ops.count("GlobalAveragePool") == 2 and ops.count("MatMul") == 1
    assert ops.count("ReduceSum") == 1, "x is not 0s and 1s: its count stays a reduction"
    split = next(node for node in rewritten.graph.node if node.op_type == "Split")
    assert list(split.output) == ["layers", "spikes_count"], "a join of counts only is a piece of the split"
    assert ops.count("Concat") == 2, "the averages side by side, and the join that has x's count in it"
    onnx.checker.check_model(rewritten)
    x = _inputs(shape)
    sessions = [
        ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        for m in (original, rewritten)
    ]
    want, got = (s.run(["layers", "inputs"], {"x": x}) for s in sessions)
    assert want[0][1, 0] == np.prod(shape)
    for expected, actual in zip(want, got):
        np.testing.assert_array_equal(actual, expected)


@pytest.mark.slow
def test_exported_steps_count_as_without_pooling(tmp_path, monkeypatch):
    """A network with Fashion-MNIST-sized maps: its exported graphs count every spike map in
    one pooled pass and give every output, counts included, bit for bit as the graphs without
    pooling do, at timestep 1 and at a later step from a running state."""
    torch.manual_seed(0)
    spec = NetworkSpec(
        "digits_net", (1, 28, 28), 10, arch_args={"channels": [16, 32]}, encoder="le", stem_channels=16
    )
    network = SpikingNetwork(spec).eval()
    with torch.no_grad():  # enough drive that the hidden layers fire
        for module in network.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.mul_(4)
    for kind in ("pooled", "reduced"):
        (tmp_path / kind).mkdir()
    export_onnx(network, tmp_path / "pooled")
    monkeypatch.setattr(onnx_export, "counts_by_pooling", lambda model: 0)
    export_onnx(network, tmp_path / "reduced")
    images = (torch.rand((16, 1, 28, 28)) * torch.linspace(0, 1, 16).reshape(16, 1, 1, 1)).numpy()
    first_step = None
    for graph in (FIRST_STEP_FILE, FIRST_DECISION_FILE, STEP_FILE):
        pooled = onnx.load(str(tmp_path / "pooled" / graph))
        ops = [node.op_type for node in pooled.graph.node]
        assert ops.count("GlobalAveragePool") >= 2 and ops.count("MatMul") == 1 and "ReduceSum" not in ops
        sessions = [
            ort.InferenceSession(str(tmp_path / kind / graph), providers=["CPUExecutionProvider"])
            for kind in ("pooled", "reduced")
        ]
        feeds = {"images": images}
        if graph == STEP_FILE:  # timestep 2 from timestep 1's state
            feeds["timestep"] = np.full(len(images), 2, np.float32)
            feeds.update(
                {
                    name[len("next_") :]: value
                    for name, value in first_step.items()
                    if name.startswith("next_")
                }
            )
        got, want = (dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds))) for s in sessions)
        assert got.keys() == want.keys() and set(STEP_OUTPUTS) <= got.keys()
        for name in got:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
        assert (got["layer_spikes"][:, 1:] > 0).any(), "the hidden layers fire"
        if graph == FIRST_STEP_FILE:
            first_step = got
