"""Dropping the NaN guards PyTorch exports after each attention softmax: the graph loses
them and gives the same outputs; a graph without them is left as it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from qa.onnxgraph import drop_nan_guards


def attention_like(path: Path, guard: bool) -> Path:
    """x -> Softmax -> [Where(IsNaN(p), 0, p)] -> MatMul w -> y, as torch exports it."""
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 7, "w")
    nodes = [helper.make_node("Softmax", ["x"], ["p"], axis=-1)]
    if guard:
        zero = helper.make_tensor("zero_value", TensorProto.FLOAT, [], [0.0])
        nodes += [
            helper.make_node("IsNaN", ["p"], ["nan"]),
            helper.make_node("Constant", [], ["zero"], value=zero),
            helper.make_node("Where", ["nan", "zero", "p"], ["q"]),
            helper.make_node("MatMul", ["q", "w"], ["y"]),
        ]
    else:
        nodes += [
            helper.make_node("Greater", ["x", "p"], ["bigger"]),
            helper.make_node("Where", ["bigger", "x", "p"], ["q"]),  # not a guard
            helper.make_node("MatMul", ["q", "w"], ["y"]),
        ]
    graph = helper.make_graph(
        nodes,
        "attention",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out: np.ndarray = session.run(None, {"x": x})[0]
    return out


def test_the_guards_go_and_the_outputs_stay_bit_identical(tmp_path):
    path = attention_like(tmp_path / "m.onnx", guard=True)
    x = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    before = run(path, x)

    assert drop_nan_guards(path) == 1
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops == ["Softmax", "MatMul"]  # the zero it put in place of NaN is gone too
    assert np.array_equal(run(path, x), before)
    assert drop_nan_guards(path) == 0  # nothing left to drop


def test_a_graph_without_guards_is_left_as_it_was(tmp_path):
    path = attention_like(tmp_path / "m.onnx", guard=False)
    data = path.read_bytes()
    assert drop_nan_guards(path) == 0
    assert path.read_bytes() == data
