"""The FAISS side of the index: which kind of FAISS index a corpus gets, and searching it.

Vectors are L2-normalised, so inner product equals cosine similarity. Exact search up to
``Config.hnsw_min_sentences`` (20,000 by default: a millisecond or two); from there on HNSW,
an approximate graph index whose recall `qa bench` measures. The graph walks 8-bit codes
of the vectors (a quarter of the memory to touch: 0.5 ms a search at 100k sentences
instead of 0.85 for full vectors, recall@10 0.985 either way), and the candidates it finds
are scored again on the full vectors (IndexRefineFlat), so every score the service sees is
exact.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

HNSW_M = 32  # graph degree
HNSW_EF_CONSTRUCTION = 200  # 64 gave recall@10 0.90-0.94 at 100k; 200 gives 0.99
HNSW_STORAGE = "sq8"
# candidates explored per search, set when the index is loaded (a query-time setting, so
# an index built with another value searches with this one). On the bench's first corpus
# (100,054 sentences, 2026-11-28): 256 gave recall@10 0.989 in 0.77 ms, 192 0.985 in 0.50
# ms, 128 0.972 in 0.36 ms. On its corpus of 2026-12-02 (100,772 sentences: the installed
# packages' docstrings differ), 192 gave 0.975, under the 0.98 aimed at, and 384 0.987
# (400 questions; 1.3 -> 2.3 ms a search on a slow Zen 1 CPU)
HNSW_EF_SEARCH = 384


def vector_index(vectors: np.ndarray, dimension: int, hnsw_min: int) -> tuple[Any, dict[str, Any]]:
    """The FAISS index for ``vectors`` and its manifest entry: exact inner product for
    fewer than ``hnsw_min`` sentences, HNSW on inner product from there on."""
    import faiss

    index: Any
    if len(vectors) >= hnsw_min:
        # the stubs take a ScalarQuantizer; the constructor takes its quantizer type
        graph = faiss.IndexHNSWSQ(
            dimension,
            faiss.ScalarQuantizer.QT_8bit,  # type: ignore[arg-type]
            HNSW_M,
            faiss.METRIC_INNER_PRODUCT,
        )
        graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        graph.hnsw.efSearch = HNSW_EF_SEARCH
        graph.train(vectors)
        index = faiss.IndexRefineFlat(graph)  # adds to both; rescores on full vectors
        # the refine index owns the graph from here on (``this``: SWIG, not in the stubs)
        graph.this.disown()  # type: ignore[attr-defined]
        index.own_fields = True
        params: dict[str, Any] = {
            "M": HNSW_M,
            "ef_construction": HNSW_EF_CONSTRUCTION,
            "ef_search": HNSW_EF_SEARCH,
            "storage": HNSW_STORAGE,
        }
    else:
        index = faiss.IndexFlatIP(dimension)
        params = {}
    if len(vectors):
        searching = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(os.cpu_count() or 1)  # a build may use every core
        try:
            index.add(vectors)
        finally:
            faiss.omp_set_num_threads(searching)
    info = {
        "kind": type(index).__name__,
        "metric": "inner_product",
        "ntotal": index.ntotal,
        "hnsw_min_sentences": hnsw_min,
        **params,
    }
    return index, info


def to_bytes(index: Any) -> bytes:
    import faiss

    return bytes(faiss.serialize_index(index).tobytes())


def from_bytes(data: bytes) -> Any:
    """A FAISS index from its bytes, set to search with HNSW_EF_SEARCH if it is a graph."""
    import faiss

    index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    graph = hnsw_graph(index)
    if graph is not None:
        graph.hnsw.efSearch = HNSW_EF_SEARCH
    return index


def hnsw_graph(vectors: Any) -> Any:
    """The HNSW index inside ``vectors`` (itself, or the base of a refine index), or None
    for exact search."""
    import faiss

    if hasattr(vectors, "base_index"):
        vectors = faiss.downcast_index(vectors.base_index)
    return vectors if hasattr(vectors, "hnsw") else None


def dense_search(vectors: Any, query: np.ndarray, k: int) -> dict[int, float]:
    """Sentence number -> inner product with ``query``, for the k nearest sentences."""
    import faiss

    k = min(k, int(vectors.ntotal))
    if k <= 0:
        return {}
    query = query.reshape(1, -1).astype(np.float32)
    # A search is one question: FAISS's OpenMP threads would only spin against the
    # model's (at 100k sentences, one search took 3.6 ms with two OpenMP threads, 0.8 with
    # one). The setting belongs to the calling thread, so it is made here, in every server
    # thread that searches; index builds raise it for their own work (vector_index).
    faiss.omp_set_num_threads(1)
    if isinstance(vectors, (faiss.IndexHNSW, faiss.IndexRefine)):
        # HNSW explores at least k candidates (and as many as the index was loaded with);
        # a refine index rescores exactly the k its graph found
        # SearchParametersHNSW and the keyword constructors are missing from faiss's stubs
        hnsw = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k))  # type: ignore[attr-defined]
        params = (
            faiss.IndexRefineSearchParameters(k_factor=1.0, base_index_params=hnsw)  # type: ignore[call-arg]
            if isinstance(vectors, faiss.IndexRefine)
            else hnsw
        )
        scores, ids = vectors.search(query, k, params=params)
    else:
        scores, ids = vectors.search(query, k)
    return {int(i): float(s) for s, i in zip(scores[0], ids[0], strict=False) if i >= 0}


def reconstruct(vectors: Any, ids: list[int]) -> np.ndarray:
    """The stored vectors of sentences ``ids``, in one call where FAISS allows it."""
    try:
        return np.asarray(vectors.reconstruct_batch(np.asarray(ids, dtype=np.int64)))
    except RuntimeError:  # an index kind without batch reconstruction
        return np.vstack([vectors.reconstruct(i) for i in ids])
