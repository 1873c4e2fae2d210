"""Rewriting exported ONNX graphs (needs the ``onnx`` package, not torch)."""

from __future__ import annotations

from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

from .files import write_atomic


def drop_nan_guards(path: Path) -> int:
    """Rewrite the ONNX model at ``path`` without the guards PyTorch's attention export puts
    after each softmax, ``Where(IsNaN(p), 0, p)``: the readers of the Where read ``p``.

    A row of attention probabilities is NaN only when a token may attend to nothing; the
    callers here always let every token attend to [CLS] (the attention mask's first column
    is 1), so the guards never fire and the outputs are bit-identical, one run shorter.
    Only guards of exactly that shape are dropped: the IsNaN tests the softmax's own output
    and is read by that Where alone, neither feeds a graph output, and the zero it puts in
    place of NaN goes too when nothing else reads it. A graph with subgraphs (If, Loop) is
    left as it is. Returns how many guards were dropped (0: the file is untouched)."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    if any(a.type in (a.GRAPH, a.GRAPHS) for node in graph.node for a in node.attribute):
        return 0
    made_by = {out: node for node in graph.node for out in node.output}
    readers = Counter(name for node in graph.node for name in node.input)
    outputs = {o.name for o in graph.output}
    guards = []
    for node in graph.node:
        if node.op_type != "Where" or len(node.input) != 3 or node.output[0] in outputs:
            continue
        test, value = made_by.get(node.input[0]), made_by.get(node.input[2])
        if (
            test is not None
            and value is not None
            and test.op_type == "IsNaN"
            and value.op_type == "Softmax"
            and test.input[0] == value.output[0]
            and readers[test.output[0]] == 1
            and test.output[0] not in outputs
        ):
            guards.append((node, test))
    if not guards:
        return 0
    rename = {where.output[0]: where.input[2] for where, _ in guards}
    zeros = {where.input[1] for where, _ in guards}
    for where, test in guards:
        graph.node.remove(where)
        graph.node.remove(test)
    for node in graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = rename.get(name, name)
    still_read = {name for node in graph.node for name in node.input} | outputs
    for zero in zeros - still_read:
        _remove_source(graph, zero)
    onnx.checker.check_model(model)
    write_atomic(path, model.SerializeToString())
    return len(guards)


def _remove_source(graph: Any, name: str) -> None:
    """Remove the Constant node or the initializer that makes ``name``."""
    for node in graph.node:
        if node.op_type == "Constant" and list(node.output) == [name]:
            graph.node.remove(node)
            return
    for init in graph.initializer:
        if init.name == name:
            graph.initializer.remove(init)
            return


def unsigned_weights(path: Path) -> int:
    """Rewrite the ONNX model at ``path`` so that each ``MatMulInteger`` reads its int8
    weights as uint8: every weight and its zero point plus 128, the same numbers after the
    zero point is taken away, so the integer products are the same.

    What differs is the kernel ONNX Runtime picks. For uint8 activations times int8 weights
    on an x86 CPU without VNNI (AVX2 only), it sums pairs of products in 16 bits, which
    saturate (``vpmaddubsw``); with VNNI it does not. The same model then reads otherwise on
    two machines (the shipped reader's development figures moved with the CPU). uint8 times
    uint8 is exact on both, and gives what VNNI gave. Weights read by anything else are left
    alone. Returns how many matrices were rewritten (0: the file is untouched)."""
    import onnx

    model = onnx.load(str(path))
    rewritten = _shift_weights(model, signed=False)
    if rewritten:
        onnx.checker.check_model(model)
        write_atomic(path, model.SerializeToString())
    return rewritten


def signed_weights(path: Path) -> bytes | None:
    """The ONNX model at ``path`` with the uint8 weights of each ``MatMulInteger`` read as
    int8 again (every weight and its zero point minus 128, the inverse of
    ``unsigned_weights``): the same integer products, for a CPU whose uint8 x int8 kernel
    is exact (``exact_signed_products``). None when nothing is stored so (the file serves
    as it is). The file itself is not changed."""
    import onnx

    # weights the file leaves out (a question encoder's word embeddings) stay out
    model = onnx.load(str(path), load_external_data=False)
    return model.SerializeToString() if _shift_weights(model, signed=True) else None


def _shift_weights(model: Any, signed: bool) -> int:
    """Store the weights (and their zero point) of each ``MatMulInteger`` of ``model`` as
    int8 (``signed``: from uint8, minus 128) or as uint8 (from int8, plus 128), in place,
    where both are initializers read by that node alone. How many matrices changed."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    source, target = (np.uint8, np.int8) if signed else (np.int8, np.uint8)
    source_type = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(source))
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    readers = Counter(name for node in graph.node for name in node.input)
    rewritten = 0
    for node in graph.node:
        if node.op_type != "MatMulInteger" or len(node.input) != 4:
            continue
        tensors = [initializers.get(name) for name in (node.input[1], node.input[3])]
        if any(t is None or t.data_type != source_type or readers[t.name] != 1 for t in tensors):
            continue
        for t in tensors:
            assert t is not None
            shifted = numpy_helper.to_array(t).astype(np.int16) + (-128 if signed else 128)
            t.CopyFrom(numpy_helper.from_array(shifted.astype(target), t.name))
        rewritten += 1
    return rewritten


def exact_signed_products() -> bool:
    """Whether ONNX Runtime multiplies uint8 by int8 exactly on this CPU, so that weights
    stored as uint8 can be served as int8 with the same results: true where its kernel
    accumulates in 32 bits (VNNI, AMX, ARM), false where it sums pairs of products in 16
    bits, which saturate (x86 with AVX2 or AVX-512 but no VNNI). Found by running products
    that overflow 16 bits, one row and several (each kernel ONNX Runtime may pick), not from
    a list of CPUs; on Linux x86 only when ``/proc/cpuinfo`` reports VNNI or AMX, so that an
    AVX2 machine never imports onnx for it. Probed once a process."""
    return _flags_allow() and probe_signed_products()


@cache
def _flags_allow() -> bool:
    """False only on Linux x86 without a VNNI or AMX flag, where the probe would say no."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), None)
    except OSError:
        return True  # not Linux: let the probe decide
    if flags is None:
        return True  # not x86 (ARM lists "Features"): let the probe decide
    return any(f in flags.split() for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


@cache
def probe_signed_products() -> bool:
    """Run uint8 x int8 products that overflow 16 bits in pairs: True when all are exact."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    k, n = 64, 32
    w = rng.integers(-127, 128, (k, n)).astype(np.int8)
    w[:, 0] = 127  # with rows of 255, every pair of this column overflows 16 bits
    zero = 3  # the activations' zero point, non-zero as dynamic quantisation makes it
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w", "az", "wz"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, ["m", k])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, ["m", n])],
        [
            numpy_helper.from_array(w, "w"),
            numpy_helper.from_array(np.array(zero, dtype=np.uint8), "az"),
            numpy_helper.from_array(np.zeros(n, dtype=np.int8), "wz"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 8)
    try:
        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        for m in (1, 8):
            a = rng.integers(0, 256, (m, k)).astype(np.uint8)
            a[0] = 255
            (y,) = session.run(None, {"a": a})
            if not np.array_equal(y, (a.astype(np.int64) - zero) @ w.astype(np.int64)):
                return False
    except Exception:  # an ONNX Runtime that cannot run it: serve the file as it is
        return False
    return True
