"""Loading a sentence-transformers model with PyTorch, and exporting it to ONNX.

Everything here needs torch; a process that only answers never imports this module (the
ONNX export is made once, into the cache folder, the first time a model is used).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .onnxgraph import drop_nan_guards
from .runner import ModelError, export_folder, resolve_model

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def load_sentence_transformer(name: str) -> SentenceTransformer:
    offline()
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    path = resolve_model(name)
    if path.startswith(("/", "./", "../", "~")) and not Path(path).expanduser().exists():
        # a path, not a model id: say so at once (the library would first log a line of
        # its own about the name not being a model id)
        raise ModelError(
            f"cannot load the embedding model {name!r}: there is no folder {path}; give "
            "the path of a sentence-transformers model with --model or QA_MODEL"
        )
    try:
        model = SentenceTransformer(path, device="cpu")
    except Exception as exc:  # the library raises many kinds; all mean the same here
        unfound = isinstance(exc, OSError) and not Path(resolve_model(name)).exists()
        why = (
            "it is neither a folder here nor in the local model cache, and nothing is downloaded"
            if unfound and os.environ.get("HF_HUB_OFFLINE") == "1"
            else " ".join(str(exc).split())  # one line, however many the library wrote
        )
        raise ModelError(
            f"cannot load the embedding model {name!r}: give the path of a "
            f"sentence-transformers model with --model or QA_MODEL ({why})"
        ) from exc
    # "[SEP]" written in a text is text, not a control token (as ``runner.load_tokenizer``),
    # wherever this model tokenises: serving on torch, and `qa train --questions`
    model.tokenizer.split_special_tokens = True
    return model


def _required(value: int | None, what: str) -> int:
    """``value`` as an int; TypeError (as ``int(None)`` raises) when the model lacks it."""
    if value is None:
        raise TypeError(f"the model gives no {what}")
    return int(value)


def _pooling_mode(pooling: Any) -> str:
    if pooling is None:
        return "mean"
    if hasattr(pooling, "get_pooling_mode_str"):  # sentence-transformers before 6
        name: str = pooling.get_pooling_mode_str()
        return name
    mode = getattr(pooling, "pooling_mode", "mean")
    if isinstance(mode, (list, tuple)):
        mode = mode[0] if len(mode) == 1 else "+".join(map(str, mode))
    return str(getattr(mode, "value", mode))


def hidden_states(transformer: Any) -> Any:
    """A torch module giving ``transformer``'s last hidden states: what is exported (the
    runner pools them)."""
    import torch

    class Hidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor | None = None,
        ) -> Any:
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            return self.inner(**kwargs).last_hidden_state

    return Hidden(transformer)


def export_meta(
    name: str, model: SentenceTransformer, mode: str, takes_types: bool
) -> dict[str, Any]:
    """``qa-onnx.json``: what the runner needs to know of an export."""
    return {
        "model": name,
        "dimension": _required(model.get_embedding_dimension(), "embedding dimension"),
        "max_seq_length": _required(model.max_seq_length, "maximum sequence length"),
        "pooling": mode,
        "token_type_ids": takes_types,
        "normalize": True,
    }


def export_onnx(name: str, cache_dir: Path) -> Path:
    """The folder of the model's ONNX export, exporting it (with torch) the first time.

    The export is written to a temporary folder and renamed into place, so a stopped
    export never leaves a half-written model that a later start would trust."""
    folder = export_folder(name, cache_dir)
    if (folder / "qa-onnx.json").exists():
        return folder
    model = load_sentence_transformer(name)
    modules = list(model)
    pooling = modules[1] if len(modules) > 1 else None
    mode = _pooling_mode(pooling)
    if mode not in ("mean", "cls") or len(modules) > 3:
        raise ModelError(
            f"the model {name!r} has a {mode} pooling or extra layers that the onnx backend "
            "does not run: use QA_BACKEND=torch"
        )
    import torch

    transformer: Any = getattr(modules[0], "auto_model", None) or modules[0].model
    transformer.eval()
    tokenizer = model.tokenizer
    takes_types = "token_type_ids" in tokenizer.model_input_names

    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if takes_types else [])
    sample = tuple(torch.ones(2, 8, dtype=torch.long) for _ in names)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable("ONNX export", cache_dir, exc) from exc
    try:
        import warnings

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                hidden_states(transformer),
                sample,
                str(tmp / "model.onnx"),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
                opset_version=17,
                dynamo=False,
            )
        drop_nan_guards(tmp / "model.onnx")  # the same vectors, sooner
        tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        meta = export_meta(name, model, mode, takes_types)
        (tmp / "qa-onnx.json").write_text(json.dumps(meta, indent=2))
        try:
            os.replace(tmp, folder)
        except OSError:  # another process exported it first
            if not (folder / "qa-onnx.json").exists():
                raise
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"cannot export the model {name!r} to ONNX ({exc})") from exc
    finally:
        if tmp.exists():
            import shutil

            with contextlib.suppress(OSError):
                shutil.rmtree(tmp)
    return folder


def _unwritable(what: str, folder: Path, exc: OSError) -> ModelError:
    return ModelError(
        f"cannot keep the model's {what} in {folder} ({exc.strerror}): set QA_CACHE to a "
        "folder this user may write"
    )


def quantized_onnx(folder: Path) -> Path:
    """The dynamic int8 quantisation of the export in ``folder`` (weights of the matrix
    products, per channel), made once beside it."""
    target = folder / "model-int8.onnx"
    if not target.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        from .onnxgraph import unsigned_weights

        tmp = folder / f".model-int8.{os.getpid()}.tmp"
        try:
            tmp.touch()
        except OSError as exc:
            raise _unwritable("int8 quantisation", folder, exc) from exc
        try:
            quantize_dynamic(
                folder / "model.onnx",
                tmp,
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
            )
            unsigned_weights(tmp)  # the same numbers, read alike on every CPU
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return target


class TorchRunner:
    """sentence-transformers on PyTorch, as the model's authors run it."""

    def __init__(self, name: str):
        self.model = load_sentence_transformer(name)
        self.dimension = _required(self.model.get_embedding_dimension(), "embedding dimension")

    def encode(
        self,
        texts: list[str],
        batch_size: int,
        progress: Callable[[int], None] | None,
        questions: bool = False,
        alone: bool = False,
    ) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch_size):
            batch = texts[i : i + batch_size]
            out.append(
                self.model.encode(
                    batch,
                    batch_size=batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            )
            if progress:
                progress(len(batch))
        return np.ascontiguousarray(np.vstack(out), dtype=np.float32)
