"""Retrieval: the sentences of the index nearest to a question."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .index import Index
from .records import Sentence


@dataclass(frozen=True)
class Hit:
    sentence: Sentence
    score: float


def dense_search(index: Index, query: np.ndarray, k: int) -> list[Hit]:
    """The k sentences whose vectors have the highest inner product with ``query``."""
    k = min(k, len(index.sentences))
    if k <= 0:
        return []
    scores, ids = index.vectors.search(query.reshape(1, -1).astype(np.float32), k)
    return [Hit(index.sentences[i], float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0]
