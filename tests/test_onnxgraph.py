"""The graphs ONNX Runtime runs: the NaN guards PyTorch exports after each attention
softmax are dropped (the same outputs), nothing that merely looks like one is, and every
session leaves out the slow SkipLayerNormalization fusion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from qa.config import DEFAULT_READER
from qa.onnxgraph import drop_nan_guards
from qa.runner import ort_session


def attention_like(path: Path, guard: str = "guard") -> Path:
    """x -> Softmax p -> Where(IsNaN(p), 0, p) -> MatMul w -> y, as torch exports attention;
    ``guard`` names a variant: "guard" (that), "other" (the IsNaN tests x, not p),
    "shared" (the zero is also read elsewhere), "output" (the Where is the graph's output)."""
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 7, "w")
    zero = helper.make_tensor("zero_value", TensorProto.FLOAT, [], [0.0])
    tested = "x" if guard == "other" else "p"
    nodes = [
        helper.make_node("Softmax", ["x"], ["p"], axis=-1),
        helper.make_node("IsNaN", [tested], ["nan"]),
        helper.make_node("Constant", [], ["zero"], value=zero),
        helper.make_node("Where", ["nan", "zero", "p"], ["q"]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])]
    if guard == "output":
        outputs = [helper.make_tensor_value_info("q", TensorProto.FLOAT, [2, 4])]
    else:
        nodes.append(helper.make_node("MatMul", ["q", "w"], ["y"]))
    if guard == "shared":
        nodes.append(helper.make_node("Add", ["zero", "x"], ["z"]))
        outputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 4]))
    graph = helper.make_graph(
        nodes,
        "attention",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        outputs,
        [w] if guard != "output" else [],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def run(path: Path, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out: list[np.ndarray] = session.run(None, {"x": x})
    return out


def ops(path: Path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node]


X = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)


@pytest.mark.parametrize("variant", ["guard", "shared"])
def test_a_guard_goes_and_the_outputs_stay_bit_identical(tmp_path, variant):
    path = attention_like(tmp_path / "m.onnx", variant)
    before = run(path, X)

    assert drop_nan_guards(path) == 1
    # the zero it put in place of NaN goes too, unless something else reads it
    left = (
        ["Softmax", "Constant", "MatMul", "Add"] if variant == "shared" else ["Softmax", "MatMul"]
    )
    assert ops(path) == left
    after = run(path, X)
    assert len(after) == len(before)
    assert all(np.array_equal(a, b) for a, b in zip(after, before, strict=True))
    assert drop_nan_guards(path) == 0  # nothing left to drop


@pytest.mark.parametrize("variant", ["other", "output"])
def test_what_only_looks_like_a_guard_is_left_as_it_was(tmp_path, variant):
    path = attention_like(tmp_path / "m.onnx", variant)
    data = path.read_bytes()
    assert drop_nan_guards(path) == 0
    assert path.read_bytes() == data


def test_sessions_leave_skip_layer_normalization_unfused(tmp_path):
    """ORT would fuse each residual Add and its LayerNorm into a SkipLayerNormalization
    that runs ten times slower here; an unknown optimiser name would be ignored silently,
    so look at the graph the session really runs."""
    ort_session(DEFAULT_READER / "model.onnx", 1, optimized=tmp_path / "run.onnx")
    ran = set(ops(tmp_path / "run.onnx"))
    assert "LayerNormalization" in ran and "SkipLayerNormalization" not in ran
