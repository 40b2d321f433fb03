"""Spikes in an exported graph as one fused operation, the same values.

The exporter writes a spike H(x - c) (eq. (3), and the encoder's X[1]) as a comparison and a
cast to float: two operations, neither of which onnxruntime's blocked-layout (NCHWc)
convolution path understands, so each spiking layer also pays a reorder out of that layout and
one back in. ``HardSigmoid`` (y = max(0, min(1, alpha x + beta))) runs in the blocked layout,
and with the right constants it is the very same step function:

    alpha = 1 / gap, beta = 1 - alpha c, with gap = c - (the float32 just below c).

alpha is a power of two (c is a normal float32), so alpha x is exact, and alpha c is an integer
of at most 2^24, so beta is exact. For x >= c, alpha x + beta >= alpha c + beta = 1 (rounding is
monotone): 1. For x < c, x <= c - gap, so alpha x + beta <= 1 - alpha gap = 0: 0. That holds
with or without a fused multiply-add, for every x but NaN (which the comparison never fires
for and a membrane of finite inputs never is). ``heaviside_as_hardsigmoid`` rewrites every
comparison-and-cast with a constant it can check this way and leaves any other alone.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def hardsigmoid_constants(threshold: float) -> tuple[float, float] | None:
    """HardSigmoid's constants for an exact step at ``threshold``.

    Args:
        threshold: c, the step's position.

    Returns:
        (alpha, beta) that make HardSigmoid(x) = [x >= threshold] for every float32 x, or None
        where no such pair is exact (a threshold that is not a positive normal float32).
    """
    c = np.float32(threshold)
    if not (np.isfinite(c) and c >= np.finfo(np.float32).tiny) or float(c) != threshold:
        return None
    gap = float(c) - float(np.nextafter(c, np.float32(0)))
    alpha = 1.0 / gap
    beta = 1.0 - alpha * float(c)  # exact in float64; must also be exact in float32
    if not np.isfinite(np.float32(alpha)) or float(np.float32(beta)) != beta:
        return None
    return alpha, beta


def heaviside_as_hardsigmoid(model: onnx.ModelProto) -> int:
    """Rewrite ``Cast<float>(GreaterOrEqual(x, c))`` with a constant scalar c, in place.

    Args:
        model: an exported graph.

    Returns:
        How many were rewritten as ``HardSigmoid``.
    """
    graph = model.graph
    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    producer = {name: node for node in graph.node for name in node.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    graph_outputs = {output.name for output in graph.output}

    replaced: dict[int, onnx.NodeProto] = {}  # id of the Cast -> its HardSigmoid
    dropped: set[int] = set()
    for cast in graph.node:
        compare = producer.get(cast.input[0]) if cast.op_type == "Cast" else None
        if compare is None or compare.op_type != "GreaterOrEqual" or _cast_target(cast) != TensorProto.FLOAT:
            continue
        if readers.get(compare.output[0]) != 1 or compare.output[0] in graph_outputs:
            continue  # the comparison is read elsewhere too
        threshold = constants.get(compare.input[1])
        if threshold is None or threshold.size != 1 or threshold.dtype != np.float32:
            continue
        pair = hardsigmoid_constants(float(threshold.reshape(())))
        if pair is None:
            continue
        alpha, beta = pair
        replaced[id(cast)] = helper.make_node(
            "HardSigmoid",
            [compare.input[0]],
            [cast.output[0]],
            name=f"{cast.name or cast.output[0]}_hardsigmoid",
            alpha=alpha,
            beta=beta,
        )
        dropped.add(id(compare))
    if not replaced:
        return 0
    removed_values = {name for node in graph.node if id(node) in dropped for name in node.output}
    nodes = [replaced.get(id(node), node) for node in graph.node if id(node) not in dropped]
    del graph.node[:]
    graph.node.extend(nodes)
    kept_info = [info for info in graph.value_info if info.name not in removed_values]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    drop_unread_constants(graph)
    return len(replaced)


def drop_unread_constants(graph: onnx.GraphProto) -> None:
    """Remove the constants nothing reads any more, such as a rewritten comparison's threshold
    (onnxruntime would warn about each on load).

    Args:
        graph: the graph, changed in place.
    """
    read = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
    kept = [tensor for tensor in graph.initializer if tensor.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = [node for node in graph.node if node.op_type != "Constant" or node.output[0] in read]
    del graph.node[:]
    graph.node.extend(nodes)


def _cast_target(cast: onnx.NodeProto) -> int | None:
    return next((attribute.i for attribute in cast.attribute if attribute.name == "to"), None)
