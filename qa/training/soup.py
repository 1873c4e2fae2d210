"""Averaging the weights of readers trained alike (a uniform "model soup").

Readers fine-tuned from the same pretrained weights by the same recipe, differing only in
the seed (or in the CPU's precision), lie in one basin of the loss: the mean of their
weights is a model of its own, often better than each, and it reads as fast as one of
them (Wortsman et al., "Model soups", 2022). Here the readers are averaged as they are
stored, dynamic int8 ONNX files of one graph: each quantised matrix is read back to
floats (its scale and zero point), the floats are averaged, and the mean is quantised
again as ``quantize`` stores it (per output column, symmetric, shifted to uint8 for a
``MatMulInteger``; one scale and zero point for an embedding table). Float tensors
(biases, layer norms) are averaged as they are. A tensor the same in every reader (the
frozen word embeddings) is kept byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..files import write_atomic
from ..read import ReaderError

if TYPE_CHECKING:
    from ..config import Config
    from ..embed import Embedder
    from .settings import TrainSettings

QUANTIZED = "_quantized"


def _arrays(model: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def _signature(model: Any) -> list[tuple[str, tuple[str, ...]]]:
    """The graph's nodes, by kind and inputs: readers to average must share it."""
    return [(n.op_type, tuple(n.input)) for n in model.graph.node]


def dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray) -> np.ndarray:
    """The floats that a stored uint8 tensor stands for (scale and zero point per tensor,
    or per output column: the last axis of a matrix)."""
    return (q.astype(np.float32) - zero.astype(np.float32)) * scale.astype(np.float32)


def quantize_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric int8 per output column (range -127..127), stored as uint8 with zero point
    128: as ``quantize`` then ``unsigned_weights`` store a matrix's weights."""
    absmax = np.abs(w).max(axis=0).astype(np.float32)
    scale = np.where(absmax > 0, absmax / np.float32(127.0), np.float32(1.0)).astype(np.float32)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int16) + 128
    return q.astype(np.uint8), scale, np.full(scale.shape, 128, dtype=np.uint8)


def quantize_tensor(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Asymmetric uint8 with one scale and zero point (range 0..255, zero exact): as
    ``quantize`` stores an embedding table."""
    low = min(float(w.min()), 0.0)
    high = max(float(w.max()), 0.0)
    scale = np.float32((high - low) / 255.0 if high > low else 1.0)
    zero = np.uint8(np.clip(np.rint(-low / scale), 0, 255))
    q = np.clip(np.rint(w / scale) + zero.astype(np.float32), 0, 255).astype(np.uint8)
    return q, np.array(scale, dtype=np.float32), np.array(zero, dtype=np.uint8)


def average_models(sources: Sequence[Path], target: Path) -> int:
    """Write to ``target`` the ONNX model whose weights are the mean of those of the
    models at ``sources`` (one graph, as ``qa train`` exports and stores it). Returns how
    many tensors were averaged (the others are the same in every model). ReaderError when
    the models do not share one graph."""
    import onnx
    from onnx import numpy_helper

    if len(sources) < 2:
        raise ReaderError("averaging needs at least two readers")
    models = [onnx.load(str(p)) for p in sources]
    first = models[0]
    tensors = [_arrays(m) for m in models]
    for path, model, arrays in zip(sources[1:], models[1:], tensors[1:], strict=True):
        same = _signature(model) == _signature(first) and all(
            name in arrays and arrays[name].shape == a.shape and arrays[name].dtype == a.dtype
            for name, a in tensors[0].items()
        )
        if not same or len(arrays) != len(tensors[0]):
            raise ReaderError(
                f"{path} is not the graph of {sources[0]}: only readers of one recipe "
                "(the same layers, exported by the same qa) can be averaged"
            )
    # each quantised tensor with its scale and zero point, every other tensor alone
    groups = {
        name: (name, name[: -len(QUANTIZED)] + "_scale", name[: -len(QUANTIZED)] + "_zero_point")
        for name in tensors[0]
        if name.endswith(QUANTIZED)
    }
    companions = {n for g in groups.values() for n in g[1:]}
    averaged: dict[str, np.ndarray] = {}
    for name, a in tensors[0].items():
        group: tuple[str, ...] = groups.get(name, (name,))
        if name in companions or all(
            np.array_equal(t[n], tensors[0][n]) for t in tensors[1:] for n in group
        ):
            continue  # read with its quantised tensor, or the same in every model: as stored
        if name in groups:
            _, scale_name, zero_name = groups[name]
            floats = [dequantize(t[name], t[scale_name], t[zero_name]) for t in tensors]
            mean = np.mean(floats, axis=0)
            per_column = a.ndim == 2 and tensors[0][scale_name].ndim == 1
            q, scale, zero = quantize_columns(mean) if per_column else quantize_tensor(mean)
            averaged.update({name: q, scale_name: scale, zero_name: zero})
        elif a.dtype.kind == "f":
            averaged[name] = np.mean([t[name] for t in tensors], axis=0).astype(a.dtype)
        else:
            raise ReaderError(f"{sources[0]}: cannot average its tensor {name} ({a.dtype})")
    for init in first.graph.initializer:
        if init.name in averaged:
            init.CopyFrom(numpy_helper.from_array(averaged[init.name], init.name))
    onnx.checker.check_model(first)
    write_atomic(target, first.SerializeToString())
    return sum(1 for n in averaged if n not in companions)


def write_soup(folders: Sequence[Path], out: Path) -> dict[str, Any]:
    """A reader in ``out`` whose weights are the mean of the readers in ``folders``: its
    model, the first reader's tokenizer, and a card that keeps the first's training record
    and names every reader averaged (by card hash, model sha256, seed and command). Its
    settings (reading, threshold, confidence) are the first's until chosen again
    (``qa train --rechoose``). The readers must have been trained on the same documents
    and validation split, so that no validation document was trained on."""
    import shutil

    from ..features import Limits
    from ..read import FILES, read_card, verify
    from .card import write_card

    folders = [Path(f) for f in folders]
    cards, names = [], []
    for folder in folders:
        card, name = read_card(folder, settings=False)  # as --rechoose reads one
        verify(folder, card)  # a damaged file, named
        if "training" not in card or "data" not in card:
            raise ReaderError(f"{folder} records no training: average readers of `qa train`")
        cards.append(card)
        names.append(name)
    split = [(c["data"]["sha256"]["documents"], c["data"]["validation_documents"]) for c in cards]
    for folder, s in zip(folders[1:], split[1:], strict=True):
        if s != split[0]:
            raise ReaderError(
                f"{folder} was trained on other documents or another split than {folders[0]}: "
                "averaged, a validation document might have been trained on"
            )
    if len({c["files"]["tokenizer.json"]["sha256"] for c in cards}) != 1:
        raise ReaderError("the readers do not share one tokenizer: they cannot be averaged")
    for folder, c in zip(folders[1:], cards[1:], strict=True):
        if Limits.from_dict(c["limits"]) != Limits.from_dict(cards[0]["limits"]):
            raise ReaderError(
                f"{folder} reads with other token limits than {folders[0]} (--previous, "
                "--previous-head): readers trained on other inputs cannot be averaged"
            )
    averaged = [  # from the cards, whose checksums the files were just verified against
        {
            "folder": str(folder),
            "name": name,
            "model_sha256": c["files"]["model.onnx"]["sha256"],
            "seed": c["training"].get("seed"),
            "order_seed": c["training"].get("order_seed"),
            "command": c["training"].get("command"),
        }
        for folder, name, c in zip(folders, names, cards, strict=True)
    ]
    out.mkdir(parents=True, exist_ok=True)
    average_models([f / "model.onnx" for f in folders], out / "model.onnx")
    for name in FILES:
        if name != "model.onnx" and Path(folders[0] / name).resolve() != (out / name).resolve():
            shutil.copy(folders[0] / name, out / name)
    card = {k: v for k, v in cards[0].items() if k not in ("files", "rechosen")}
    card["training"] = {**cards[0]["training"], "averaged": averaged}
    return write_card(out, card)


def average_readers(
    folders: Sequence[Path],
    settings: TrainSettings,
    embedder: Embedder,
    log: Callable[[str], None],
    command: str,
    config: Config,
    score: bool,
) -> dict[str, Any]:
    """``qa train --average``: the readers in ``folders`` averaged (``write_soup``) and
    their settings chosen on validation (``rechoose_reader``), built beside
    ``settings.out`` and moved into place only once whole."""
    from dataclasses import replace

    from .choosing import rechoose_reader
    from .folders import replace_folder, work_folder

    out = Path(settings.out)
    with work_folder(out, "averaging") as work:
        write_soup(folders, work)
        log(f"averaged the weights of {len(folders)} readers: {', '.join(map(str, folders))}")
        card = rechoose_reader(replace(settings, out=work), embedder, log, command, config, score)
        replace_folder(work, out)
    log(f"wrote the averaged reader to {out}")
    return card
