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

from qa import runner
from qa.config import DEFAULT_QUESTIONS, DEFAULT_READER
from qa.onnxgraph import (
    drop_nan_guards,
    exact_signed_products,
    probe_signed_products,
    signed_weights,
    unsigned_weights,
)
from qa.runner import ort_session, serve_signed


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


def integer_product(path: Path) -> Path:
    """a (uint8, fed) times w (int8 weights, zero point 0) -> MatMulInteger -> int32 y: the
    op of every dynamically quantised matrix product. The weights are at int8's ends, so
    two adjacent products overflow 16 bits (255 * 127 * 2 > 32767)."""
    w = np.array([[127, -128, 1], [127, -128, -1], [3, 5, 7], [-7, 9, 11]], dtype=np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w", "a_zero", "w_zero"], ["y"])],
        "product",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [2, 3])],
        [
            numpy_helper.from_array(w, "w"),
            numpy_helper.from_array(np.array(0, dtype=np.uint8), "a_zero"),
            numpy_helper.from_array(np.zeros(3, dtype=np.int8), "w_zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


def test_int8_weights_are_stored_as_uint8_with_the_same_exact_products(tmp_path):
    """On a CPU without VNNI, ONNX Runtime sums uint8 x int8 products in pairs in 16 bits,
    which saturate; stored as uint8 (plus 128, zero point 128) the weights are the same
    numbers and the products exact on every CPU."""
    path = integer_product(tmp_path / "m.onnx")
    a = np.array([[255, 255, 0, 1], [200, 17, 255, 255]], dtype=np.uint8)
    w = numpy_helper.to_array(onnx.load(path).graph.initializer[0]).astype(np.int64)
    exact = a.astype(np.int64) @ w
    assert unsigned_weights(path) == 1
    model = onnx.load(path)
    stored = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert stored["w"].dtype == np.uint8 and (stored["w_zero"] == 128).all()
    assert (stored["w"].astype(np.int64) - 128 == w).all()
    y = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"a": a})[0]
    assert (y == exact).all()
    assert unsigned_weights(path) == 0  # nothing left to rewrite: the file is untouched


def test_the_shipped_reader_stores_no_int8_weights():
    model = onnx.load(str(DEFAULT_READER / "model.onnx"))
    types = {i.name: i.data_type for i in model.graph.initializer}
    weights = [n.input[1] for n in model.graph.node if n.op_type == "MatMulInteger"]
    assert weights and all(types[w] == TensorProto.UINT8 for w in weights)


def test_uint8_weights_are_int8_again_when_served_and_only_those(tmp_path):
    path = integer_product(tmp_path / "m.onnx")
    original = {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}
    assert signed_weights(path) is None  # int8 already: served as the file is
    unsigned_weights(path)
    signed = signed_weights(path)
    assert signed is not None
    graph = onnx.load_from_string(signed).graph
    served = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    assert served["w"].dtype == np.int8 and served["w_zero"].dtype == np.int8
    assert (served["w"] == original["w"]).all() and (served["w_zero"] == original["w_zero"]).all()
    kept = onnx.load(path).graph.initializer[0]
    assert numpy_helper.to_array(kept).dtype == np.uint8  # the file is not changed


def test_int8_is_served_only_where_the_probe_and_the_check_both_allow_it(
    tmp_path, monkeypatch, caplog
):
    """serve_signed, whatever the CPU: the file where the probe says no (without reading
    it), where nothing is stored as uint8, where the int8 model's outputs differ on the
    check's inputs, or where the check fails (logged); the int8 bytes otherwise."""
    path = integer_product(tmp_path / "m.onnx")
    small = [{"a": np.ones((2, 4), dtype=np.uint8)}]  # no pair of products near 16 bits
    monkeypatch.setattr(runner, "exact_signed_products", lambda: True)
    assert serve_signed(path, lambda: small) == path  # int8 already: nothing to serve
    unsigned_weights(path)
    signed = signed_weights(path)
    assert signed is not None and serve_signed(path, lambda: small) == signed
    monkeypatch.setattr(runner, "exact_signed_products", lambda: False)
    assert serve_signed(path, lambda: 1 / 0) == path  # the check never runs
    monkeypatch.setattr(runner, "exact_signed_products", lambda: True)
    model = onnx.load_from_string(signed)
    w = next(i for i in model.graph.initializer if i.name == "w")
    changed = numpy_helper.to_array(w).copy()
    changed[2, 0] += 1
    w.CopyFrom(numpy_helper.from_array(changed, "w"))
    monkeypatch.setattr(runner, "_signed", lambda *key: model.SerializeToString())
    assert serve_signed(path, lambda: small) == path  # other outputs: the file

    def broken() -> list[dict[str, np.ndarray]]:
        raise RuntimeError("no rows to check")

    with caplog.at_level("WARNING", logger="qa.runner"):
        assert serve_signed(path, broken) == path
    assert "served with its weights as stored" in caplog.text and "no rows" in caplog.text


def test_the_reader_is_served_as_int8_exactly_where_that_gives_the_same_numbers(monkeypatch):
    """The shipped reader's weights are stored as uint8. Whether int8 weights give bit for
    bit the same logits, on real rows, is what the probe says of this CPU: no on x86 without
    VNNI (saturated pairs; the machine this was written on), yes with VNNI or AMX. And
    ``serving_model``, even when let past the probe, serves int8 only where its own check
    finds the same logits: here, the file as it is."""
    from tokenizers import Tokenizer

    from qa import read
    from qa.features import Candidate, Featurizer, Limits

    card, _ = read.read_card(DEFAULT_READER)
    tokenizer = Tokenizer.from_file(str(DEFAULT_READER / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    featurizer = Featurizer(tokenizer, Limits.from_dict(card["limits"]))
    sentences = [
        "Sheinbaum has been dubbed the “Trump whisperer” for repeatedly securing reprieves.",
        "The group's 7,500 members call themselves the Gaitanista Army of Colombia.",
        "Petro said during an event in Cordoba, about 180 miles west of the capital Bogota.",
    ]
    batch = featurizer.encode(
        "How many members does the group have?",
        [Candidate(s, p) for s, p in zip(sentences, ["", *sentences[:2]], strict=True)],
    )
    model = DEFAULT_READER / "model.onnx"
    signed = signed_weights(model)
    assert signed is not None  # the shipped weights are stored as uint8
    stored = ort_session(model, 1).run(None, batch.feeds())
    as_int8 = ort_session(signed, 1).run(None, batch.feeds())
    same = all(np.array_equal(a, b) for a, b in zip(stored, as_int8, strict=True))
    assert probe_signed_products() == same
    assert read.serving_model(model, featurizer) == (signed if exact_signed_products() else model)
    monkeypatch.setattr(runner, "exact_signed_products", lambda: True)
    assert isinstance(read.serving_model(model, featurizer), bytes) == same


def test_the_question_encoder_is_served_as_int8_exactly_where_that_gives_the_same_vectors(
    monkeypatch,
):
    """The shipped question encoder's weights are stored as uint8 too, and its word
    embeddings are not in the file. Served as int8 only where that gives the file's outputs
    bit for bit (the probe's verdict on this CPU); the int8 bytes, word embeddings added,
    run and embed a question as the file does, to within what saturation moves here."""
    from qa import questions
    from qa.config import DEFAULT_MODEL
    from qa.runner import OnnxRunner

    card, _ = questions.read_card(DEFAULT_QUESTIONS)
    spec = card["word_embeddings"]
    initializers = {spec["initializer"]: questions.word_embeddings(DEFAULT_MODEL, spec["key"])}
    model = DEFAULT_QUESTIONS / "model.onnx"
    signed = signed_weights(model)
    assert signed is not None  # stored as uint8, and loads without its word embeddings
    asked = ["How many members does the group have?", "Who was dubbed the Trump whisperer?"]
    from_file = OnnxRunner(DEFAULT_QUESTIONS, 1, initializers=initializers)
    as_int8 = OnnxRunner(DEFAULT_QUESTIONS, 1, initializers=initializers, served=signed)
    a = from_file.encode(asked, 8, None, questions=True)
    b = as_int8.encode(asked, 8, None, questions=True)
    assert (a * b).sum(axis=1).min() > 0.99
    assert np.array_equal(a, b) == probe_signed_products()
    expected = signed if exact_signed_products() else model
    assert questions.serving_model(DEFAULT_QUESTIONS, initializers) == expected
    monkeypatch.setattr(runner, "exact_signed_products", lambda: True)
    served = questions.serving_model(DEFAULT_QUESTIONS, initializers)
    assert isinstance(served, bytes) == np.array_equal(a, b)
