"""Spike counts in an exported graph without leaving the blocked layout, the same values.

A step counts each layer's spikes per sample (``Run.per_sample_sum``), which the exporter writes
as ``ReduceSum(Reshape(spikes, [-1, C*H*W]), axes=[1])`` and concatenates into its
``layer_spikes`` and ``synaptic_inputs`` outputs. onnxruntime's reductions do not read its
blocked (NCHWc) layout, so each counted map is first copied out of it, and every count is three
operations of its own, which weigh most on a small network, whose layers are cheap.
``GlobalAveragePool`` runs in the blocked layout, and for a map of 0s and 1s its channel
averages give the same count:

    count = Round(H*W * sum over c of GlobalAveragePool(spikes)[:, c])

so every count of a graph comes from one pass: each counted map pooled, the averages of all
maps side by side, one ``MatMul`` with a matrix of areas (column j sums the channels of the
map that count j reads, times its H*W; zeros elsewhere), ``Round``, and a ``Split`` into the
outputs the concatenations made.

Exact: each channel's sum s_c <= H*W is an integer, exact in float32. Its average, the sum of a
map's C products with H*W and the products themselves round with relative errors of at most
2u, (C - 1)u and u (u = 2^-24, terms non-negative, in any order, fused or not; the other maps'
zero terms add nothing), so a column is N(1 + theta) with |theta| <= (C + 2)u / (1 - (C + 2)u)
for the true count N <= C*H*W. Where C*H*W*(C + 3) <= 2^23, |N theta| < 1/2 and ``Round``
returns N exactly: the very float the reduction gave, since sums of 0s and 1s below 2^24 are
exact too.

A count is rewritten where that bound holds and the summed tensor is provably 0s and 1s: a
spike (an exact-step ``HardSigmoid``, or a float cast of a comparison), or a max pool, reshape
or flatten of one. Any other count (an event frame's, an ANN's activations) stays a reduction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from training.store.onnx_spikes import drop_unread_constants, hardsigmoid_constants

EXACT_LIMIT = 2**23
PREFIX = "pooled_counts"
_COMPARISONS = {"GreaterOrEqual", "Greater", "LessOrEqual", "Less", "Equal"}
_KEEPS_BINARY = {"MaxPool", "Reshape", "Flatten", "Identity"}


def count_is_exact(channels: int, height: int, width: int) -> bool:
    """Whether the pooled count of a map of 0s and 1s is exact: the bound above.

    Args:
        channels: the map's channels C.
        height: its height H.
        width: its width W.

    Returns:
        True where C*H*W*(C + 3) <= 2^23.
    """
    return channels * height * width * (channels + 3) <= EXACT_LIMIT


def counts_by_pooling(model: onnx.ModelProto) -> int:
    """Rewrite the per-sample counts of binary maps in place, all in one pass.

    Args:
        model: an exported graph (``heaviside_as_hardsigmoid`` already applied, so that its
            spikes are recognised).

    Returns:
        How many counts were rewritten.

    Raises:
        ValueError: the rewritten graph cannot be ordered (a bug, never a valid graph).
    """
    graph = model.graph
    counted = _countable(model)  # count -> (map, channels, area)
    if not counted:
        return 0
    # A concatenation of counts only becomes part of the Split; a count read anywhere else
    # keeps its name as a Split output of its own.
    joined = [
        node
        for node in graph.node
        if node.op_type == "Concat"
        and _attribute(node, "axis") in (1, -1)
        and all(name in counted for name in node.input)
    ]
    joined_ids = {id(node) for node in joined}
    graph_outputs = {output.name for output in graph.output}
    read_alone = [
        name
        for name in counted
        if name in graph_outputs
        or any(name in node.input for node in graph.node if id(node) not in joined_ids)
    ]
    pieces = [(node.output[0], list(node.input)) for node in joined] + [(name, [name]) for name in read_alone]

    first_row: dict[str, int] = {}  # map -> where its channels start among the averages
    rows = 0
    for spikes, channels, _ in counted.values():
        if spikes not in first_row:
            first_row[spikes], rows = rows, rows + channels
    columns = [count for _, counts in pieces for count in counts]
    areas = np.zeros((rows, len(columns)), np.float32)
    for column, count in enumerate(columns):
        spikes, channels, area = counted[count]
        areas[first_row[spikes] : first_row[spikes] + channels, column] = area

    nodes, constants = _pooled_counts(list(first_row), areas, pieces)
    dropped_ids = joined_ids | {
        id(node) for node in graph.node if node.op_type == "ReduceSum" and node.output[0] in counted
    }
    kept = [node for node in graph.node if id(node) not in dropped_ids]
    graph.initializer.extend(constants)
    del graph.node[:]
    graph.node.extend(_in_topological_order(kept, nodes, graph))
    _drop_unread(graph)
    return len(counted)


def _countable(model: onnx.ModelProto) -> dict[str, tuple[str, int, int]]:
    """Each per-sample count of a binary 4-D map that pooling gives exactly: count -> (map,
    channels, H*W)."""
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
            return (
                _attribute(node, "to") == TensorProto.FLOAT
                and source is not None
                and source.op_type in _COMPARISONS
            )
        return node.op_type in _KEEPS_BINARY and name == node.output[0] and binary(node.input[0])

    counted: dict[str, tuple[str, int, int]] = {}
    for reduce in graph.node:
        flatten = (
            producer.get(reduce.input[0])
            if reduce.op_type == "ReduceSum" and len(reduce.input) == 2
            else None
        )
        if flatten is None or flatten.op_type != "Reshape" or _attribute(reduce, "keepdims", 1) != 1:
            continue
        axes = constants.get(reduce.input[1])
        if axes is None or axes.reshape(-1).tolist() != [1]:
            continue
        spikes = flatten.input[0]
        shape = shapes.get(spikes)
        dims = [] if shape is None else [d for d in shape[1:] if isinstance(d, int)]
        if shape is None or len(shape) != 4 or len(dims) != 3:
            continue
        channels, height, width = dims
        target = constants.get(flatten.input[1])
        if target is None or target.reshape(-1).tolist() not in ([-1, channels * height * width], [0, -1]):
            continue  # not a per-sample flatten
        if count_is_exact(channels, height, width) and binary(spikes):
            counted[reduce.output[0]] = (spikes, channels, height * width)
    return counted


def _pooled_counts(
    maps: list[str], areas: np.ndarray, pieces: list[tuple[str, list[str]]]
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """The nodes and constants that pool ``maps`` and give each piece's output [B, len(counts)]."""
    averages = [f"{PREFIX}_average_{index}" for index in range(len(maps))]
    nodes = [
        helper.make_node("GlobalAveragePool", [spikes], [average], name=average)
        for spikes, average in zip(maps, averages)
    ]
    side_by_side = f"{PREFIX}_averages"
    if len(maps) > 1:
        nodes.append(helper.make_node("Concat", averages, [side_by_side], name=side_by_side, axis=1))
    else:
        side_by_side = averages[0]
    flat, weights, scaled = f"{PREFIX}_flat", f"{PREFIX}_areas", f"{PREFIX}_scaled"
    nodes += [
        helper.make_node("Flatten", [side_by_side], [flat], name=flat, axis=1),  # [B, C, 1, 1] -> [B, C]
        helper.make_node("MatMul", [flat, weights], [scaled], name=scaled),
    ]
    constants = [numpy_helper.from_array(areas, weights)]
    outputs = [output for output, _ in pieces]
    if len(pieces) == 1:
        nodes.append(helper.make_node("Round", [scaled], outputs, name=f"{PREFIX}_round"))
    else:
        rounded, sizes = f"{PREFIX}_rounded", f"{PREFIX}_sizes"
        nodes += [
            helper.make_node("Round", [scaled], [rounded], name=rounded),
            helper.make_node("Split", [rounded, sizes], outputs, name=f"{PREFIX}_split", axis=1),
        ]
        constants.append(
            numpy_helper.from_array(np.array([len(counts) for _, counts in pieces], np.int64), sizes)
        )
    return nodes, constants


def _in_topological_order(
    kept: list[onnx.NodeProto], added: list[onnx.NodeProto], graph: onnx.GraphProto
) -> list[onnx.NodeProto]:
    """``kept`` in their order, each of ``added`` as soon as what it reads is written (a map is
    pooled while it is still in cache), and any node after what it reads."""
    available = {value.name for value in graph.input} | {tensor.name for tensor in graph.initializer} | {""}
    ordered, kept, added = [], list(kept), list(added)
    while kept or added:
        for pending in (added, kept):
            ready = next(
                (i for i, node in enumerate(pending) if all(name in available for name in node.input)), None
            )
            if ready is not None:
                ordered.append(pending.pop(ready))
                available.update(ordered[-1].output)
                break
        else:
            raise ValueError("the rewritten graph has a cycle or reads a value nothing writes")
    return ordered


def _is_step(node: onnx.NodeProto) -> bool:
    """Whether a HardSigmoid is an exact step (``hardsigmoid_constants``): its output is 0 or 1."""
    alpha, beta = _attribute(node, "alpha", 0.2), _attribute(node, "beta", 0.5)
    return alpha > 0 and hardsigmoid_constants((1.0 - beta) / alpha) == (alpha, beta)


def _static_shapes(model: onnx.ModelProto) -> dict[str, list[int | str | None]]:
    """Each value's inferred shape: a dimension's size, its symbolic name, or None if unknown."""
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    shapes: dict[str, list[int | str | None]] = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = [d.dim_value if d.HasField("dim_value") else d.dim_param or None for d in dims]
    return shapes


def _drop_unread(graph: onnx.GraphProto) -> None:
    """Nodes whose outputs nothing reads any more (the flattens before the old reductions), and
    constants likewise."""
    while True:
        read = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
        nodes = [node for node in graph.node if any(name in read for name in node.output)]
        if len(nodes) == len(graph.node):
            break
        del graph.node[:]
        graph.node.extend(nodes)
    written = {name for node in graph.node for name in node.output}
    kept_info = [info for info in graph.value_info if info.name in written]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    drop_unread_constants(graph)


def _attribute(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    """The value of a node's attribute (of any type the attribute has), else ``default``."""
    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default
