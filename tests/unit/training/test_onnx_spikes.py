"""Spikes as HardSigmoid in exported graphs: the same step function, checked on onnxruntime."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from training.store.onnx_spikes import hardsigmoid_constants, heaviside_as_hardsigmoid


def test_constants_by_hand():
    assert hardsigmoid_constants(1.0) == (2.0**24, 1.0 - 2.0**24)  # gap below 1 is 2^-24
    assert hardsigmoid_constants(6.0) == (2.0**21, 1.0 - 6.0 * 2.0**21)  # gap below 6 is 2^-21
    assert hardsigmoid_constants(0.75) == (2.0**24, 1.0 - 0.75 * 2.0**24)
    assert hardsigmoid_constants(0.0) is None and hardsigmoid_constants(-1.0) is None
    assert hardsigmoid_constants(float("inf")) is None
    assert hardsigmoid_constants(1e-45) is None  # subnormal: no exact pair
    assert hardsigmoid_constants(0.1) is None  # not a float32, so not the graph's threshold


def _compare_graph(threshold: np.ndarray, extra_reader: bool = False) -> onnx.ModelProto:
    nodes = [
        helper.make_node("GreaterOrEqual", ["x", "threshold"], ["fired"]),
        helper.make_node("Cast", ["fired"], ["spikes"], to=TensorProto.FLOAT),
    ]
    outputs = [helper.make_tensor_value_info("spikes", TensorProto.FLOAT, [None])]
    if extra_reader:
        nodes.append(helper.make_node("Not", ["fired"], ["silent"]))
        outputs.append(helper.make_tensor_value_info("silent", TensorProto.BOOL, [None]))
    graph = helper.make_graph(
        nodes,
        "compare",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
        outputs,
        [numpy_helper.from_array(threshold, "threshold")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


@pytest.mark.parametrize("threshold", [1.0, 6.0, 0.75, 0.9375, 2.5, 1e-3, 3e5, 3.0e38])
def test_rewritten_graph_fires_exactly_where_the_comparison_does(threshold):
    c = np.float32(threshold)
    steps = [c]
    for _ in range(3):  # a few float32 steps either side of the threshold
        steps += [np.nextafter(steps[-1], np.float32(np.inf))]
    below = [c]
    for _ in range(3):
        below += [np.nextafter(below[-1], np.float32(-np.inf))]
    largest = np.finfo(np.float32).max
    specials = np.array(
        [0.0, -0.0, -c, c / 2, min(float(c) * 2, 3e38), np.inf, -np.inf, 1e-45, -1e-45, largest, -largest],
        np.float32,
    )
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            np.array(steps + below, np.float32),
            specials,
            np.clip(rng.standard_normal(20_000) * float(c) * 2, -3e38, 3e38).astype(np.float32),
        ]
    )
    original = _compare_graph(np.array(c, np.float32))
    rewritten = _compare_graph(np.array(c, np.float32))
    assert heaviside_as_hardsigmoid(rewritten) == 1
    assert [node.op_type for node in rewritten.graph.node] == ["HardSigmoid"]
    assert not rewritten.graph.initializer, "the threshold is no longer read"
    (expected,) = _run(original, x)
    (got,) = _run(rewritten, x)
    assert np.array_equal(got, expected)
    assert np.array_equal(got, (x >= c).astype(np.float32))


def test_comparisons_it_cannot_prove_or_that_others_read_are_left_alone():
    shared = _compare_graph(np.array(1.0, np.float32), extra_reader=True)
    assert heaviside_as_hardsigmoid(shared) == 0
    vector = _compare_graph(np.array([1.0, 2.0], np.float32))
    assert heaviside_as_hardsigmoid(vector) == 0
    negative = _compare_graph(np.array(-1.0, np.float32))
    assert heaviside_as_hardsigmoid(negative) == 0
    assert [node.op_type for node in negative.graph.node] == ["GreaterOrEqual", "Cast"]
