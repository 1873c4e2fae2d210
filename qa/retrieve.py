"""Retrieval: dense (FAISS) and lexical (BM25) rankings fused into one.

The dense ranking finds paraphrases; the lexical one finds the exact names and numbers a
question mentions. Their scores are on comparable scales (cosine in [-1, 1], normalised
BM25 in [0, 1]) and are added with a weight, which keeps each score meaningful for the
abstention step (reciprocal-rank fusion would throw the magnitudes away).
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from .index import HNSW_EF_SEARCH, Index
from .lexical import LexicalIndex
from .records import Sentence

LEXICAL_WEIGHT = 0.7
POOL = 100  # candidates taken from each ranking before fusing


@dataclass(frozen=True)
class Hit:
    position: int  # in index.sentences
    sentence: Sentence
    score: float  # fused
    dense: float
    lexical: float


def dense_search(index: Index, query: np.ndarray, k: int) -> dict[int, float]:
    """Sentence number -> inner product with ``query``, for the k nearest sentences."""
    k = min(k, len(index.sentences))
    if k <= 0:
        return {}
    query = query.reshape(1, -1).astype(np.float32)
    # A search is one question: FAISS's OpenMP threads would only spin against the
    # model's (at 100k sentences, one search took 3.6 ms with two OpenMP threads, 0.8 with
    # one). The setting belongs to the calling thread, so it is made here, in every server
    # thread that searches; index builds raise it for their own work (vector_index).
    faiss.omp_set_num_threads(1)
    vectors = index.vectors
    if isinstance(vectors, (faiss.IndexHNSW, faiss.IndexRefine)):
        # HNSW explores at least k candidates (and as many as the index was loaded with);
        # a refine index rescores exactly the k its graph found
        hnsw = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k))
        params = (
            faiss.IndexRefineSearchParameters(k_factor=1.0, base_index_params=hnsw)
            if isinstance(vectors, faiss.IndexRefine)
            else hnsw
        )
        scores, ids = vectors.search(query, k, params=params)
    else:
        scores, ids = vectors.search(query, k)
    return {int(i): float(s) for s, i in zip(scores[0], ids[0], strict=False) if i >= 0}


def hybrid_search(
    index: Index, lexical: LexicalIndex, query: np.ndarray, terms: dict[str, float], k: int
) -> list[Hit]:
    dense = dense_search(index, query, max(POOL, k))
    lex = lexical.top(terms, POOL)
    missing = [i for i in lex if i not in dense]
    if missing:
        vectors = _reconstruct(index.vectors, missing)
        dense.update(zip(missing, (vectors @ query).tolist(), strict=False))
    # fuse and rank first; only the k kept become Hits (a stable sort, as before)
    fused = [(d + LEXICAL_WEIGHT * lex.get(i, 0.0), i, d) for i, d in dense.items()]
    fused.sort(key=lambda f: -f[0])
    return [Hit(i, index.sentences[i], s, d, lex.get(i, 0.0)) for s, i, d in fused[:k]]


def _reconstruct(vectors, ids: list[int]) -> np.ndarray:
    """The stored vectors of sentences ``ids``, in one call where FAISS allows it."""
    try:
        return vectors.reconstruct_batch(np.asarray(ids, dtype=np.int64))
    except RuntimeError:  # an index kind without batch reconstruction
        return np.vstack([vectors.reconstruct(i) for i in ids])
