"""Spike counts in an exported graph without leaving the blocked layout, the same values.

A step counts each layer's spikes per sample (``Run.per_sample_sum``), which the exporter writes
as ``ReduceSum(Reshape(spikes, [-1, C*H*W]), axes=[1])``. onnxruntime's reductions do not read
its blocked (NCHWc) layout, so every counted spike map is first copied out of it: for a
64x28x28 map, 200 kB written and read again per sample. ``GlobalAveragePool`` runs in that
layout, reading the map once, and for a map of 0s and 1s it gives the same count:

    count = Round(H*W * sum over c of GlobalAveragePool(spikes)[:, c])

Each channel's sum s_c <= H*W is an integer, exact in float32. Its average, the C-term sum of
averages and the product with H*W round with relative errors of at most 2u, (C - 1)u and u
(u = 2^-24, terms non-negative, in any order), so the result is N(1 + theta) with
|theta| <= (C + 2)u / (1 - (C + 2)u) for the true count N <= C*H*W. Where
C*H*W*(C + 3) <= 2^23, |N theta| < 1/2 and ``Round`` returns N exactly: the very float the
reduction gave, since sums of 0s and 1s below 2^24 are exact too.

The rewrite pays only for large maps (each pooled count costs two more small operations), so
it applies where the map has at least ``MIN_ELEMENTS`` values per sample, the bound above
holds, and the summed tensor is provably 0s and 1s: a spike (an exact-step ``HardSigmoid``, or
a float cast of a comparison), or a max pool, reshape or flatten of one.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from training.store.onnx_spikes import drop_unread_constants, hardsigmoid_constants

# Measured on onnxruntime 1.32, one thread: pooling a 4,096-value map (digits) costs about 0.5 us
# more per count than the copy it saves; with maps of 12,544 values and more, Fashion-MNIST's
# and VGG-11's first steps take 1.2% and 1.0% less.
MIN_ELEMENTS = 8192
EXACT_LIMIT = 2 ** 23
_COMPARISONS = {"GreaterOrEqual", "Greater", "LessOrEqual", "Less", "Equal"}
_KEEPS_BINARY = {"MaxPool", "Reshape", "Flatten", "Identity"}


def count_is_exact(channels: int, height: int, width: int) -> bool:
    """Whether the pooled count of a [channels, height, width] map of 0s and 1s is exact."""
    return channels * height * width * (channels + 3) <= EXACT_LIMIT


def counts_by_pooling(model: onnx.ModelProto) -> int:
    """Rewrite per-sample counts of large binary maps in place; returns how many."""
    graph = model.graph
    shapes = _static_shapes(model)
    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    producer = {name: node for node in graph.node for name in node.output}

    def binary(name: str) -> bool:
        node = producer.get(name)
        if node is None:
            return False
        if node.op_type == "HardSigmoid":
            return _is_step(node)
        if node.op_type == "Cast":
            source = producer.get(node.input[0])
            return _attribute(node, "to") == TensorProto.FLOAT and source is not None and source.op_type in _COMPARISONS
        return node.op_type in _KEEPS_BINARY and name == node.output[0] and binary(node.input[0])

    replacements: dict[int, tuple[list, list]] = {}
    flattened: set[str] = set()
    for index, reduce in enumerate(graph.node):
        flatten = producer.get(reduce.input[0]) if reduce.op_type == "ReduceSum" and len(reduce.input) == 2 else None
        if flatten is None or flatten.op_type != "Reshape" or _attribute(reduce, "keepdims", 1) != 1:
            continue
        axes = constants.get(reduce.input[1])
        if axes is None or axes.reshape(-1).tolist() != [1]:
            continue
        spikes = flatten.input[0]
        shape = shapes.get(spikes)
        if shape is None or len(shape) != 4 or any(not isinstance(d, int) for d in shape[1:]):
            continue
        channels, height, width = shape[1:]
        target = constants.get(flatten.input[1])
        if target is None or target.reshape(-1).tolist() not in ([-1, channels * height * width], [0, -1]):
            continue  # not a per-sample flatten
        if channels * height * width < MIN_ELEMENTS or not count_is_exact(channels, height, width) or not binary(spikes):
            continue
        replacements[index] = _pooled_count(spikes, reduce.output[0], height * width, f"{reduce.name or index}_pooled")
        flattened.add(flatten.output[0])
    if not replacements:
        return 0
    nodes = []
    for index, node in enumerate(graph.node):
        nodes.extend(replacements[index][0] if index in replacements else [node])
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(constant for _, constants in replacements.values() for constant in constants)
    _drop_unread(graph, flattened)
    return len(replacements)


def _pooled_count(spikes: str, output: str, area: int, prefix: str) -> tuple[list, list]:
    """The nodes and constants that count ``spikes`` into ``output`` by pooling."""
    average, total, scaled = f"{prefix}_average", f"{prefix}_total", f"{prefix}_scaled"
    axes, scale = f"{prefix}_axes", f"{prefix}_area"
    nodes = [
        helper.make_node("GlobalAveragePool", [spikes], [average], name=average),
        # [B, C, 1, 1] -> [B, 1]: summing channels and one unit axis leaves the other unit axis
        helper.make_node("ReduceSum", [average, axes], [total], name=total, keepdims=0),
        helper.make_node("Mul", [total, scale], [scaled], name=scaled),
        helper.make_node("Round", [scaled], [output], name=f"{prefix}_round"),
    ]
    constants = [numpy_helper.from_array(np.array([1, 2], np.int64), axes),
                 numpy_helper.from_array(np.array(area, np.float32), scale)]
    return nodes, constants


def _is_step(node: onnx.NodeProto) -> bool:
    """Whether a HardSigmoid is an exact step (``hardsigmoid_constants``): its output is 0 or 1."""
    alpha, beta = _attribute(node, "alpha", 0.2), _attribute(node, "beta", 0.5)
    return alpha > 0 and hardsigmoid_constants((1.0 - beta) / alpha) == (alpha, beta)


def _static_shapes(model: onnx.ModelProto) -> dict[str, list]:
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    shapes = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = [d.dim_value if d.HasField("dim_value") else d.dim_param or None for d in dims]
    return shapes


def _drop_unread(graph: onnx.GraphProto, flattened: set[str]) -> None:
    """The flattens (their outputs ``flattened``) and constants nothing reads any more."""
    read = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
    nodes = [node for node in graph.node if not (node.output[0] in flattened and node.output[0] not in read)]
    del graph.node[:]
    graph.node.extend(nodes)
    written = {name for node in graph.node for name in node.output}
    kept_info = [info for info in graph.value_info if info.name in written]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    drop_unread_constants(graph)


def _attribute(node: onnx.NodeProto, name: str, default=None):
    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default
