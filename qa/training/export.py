"""Exporting the trained reader to ONNX, and its dynamic int8 quantisation.

The int8 model quantises the weights of every matrix product and the embedding tables
(``Gather``): a quarter of the size (the float model is about 90 MB, over what the package
may carry) and about twice as fast on a CPU. Whether it holds is measured on validation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

INPUTS = ["input_ids", "attention_mask", "token_type_ids"]
OUTPUTS = ["start_logits", "end_logits"]


def export_onnx(model: torch.nn.Module, path: Path, outputs: Sequence[str] = OUTPUTS) -> Path:
    """The float model (the reader, or ``outputs`` of another model of the same inputs) as
    ONNX, with dynamic batch and length."""
    model.eval()
    sample = tuple(torch.ones(2, 16, dtype=torch.long) for _ in INPUTS)
    axes = {n: {0: "batch", 1: "tokens"} for n in [*INPUTS, *outputs]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            sample,
            str(path),
            input_names=INPUTS,
            output_names=list(outputs),
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    return path


def quantize(source: Path, target: Path, ops: Sequence[str] = ("MatMul", "Gather")) -> Path:
    """Dynamic int8: weights quantised once, activations scaled at run time (of ``ops``);
    the weights stored as uint8 (``unsigned_weights``)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ..onnxgraph import unsigned_weights

    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process is for convolution networks
    try:
        quantize_dynamic(
            source,
            tmp,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=list(ops),
        )
        unsigned_weights(tmp)  # the same numbers, read alike on every CPU
        os.replace(tmp, target)
    finally:
        root.setLevel(level)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return target
