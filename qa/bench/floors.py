"""Floors the service is compared with: a bare sentence-transformers PyTorch encode
of one question, a bare import and load, and `qa --help`; and the recall of the HNSW index
against exact search."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..embed import Embedder
from .load import ms


def bare_encode_floor(model: str, questions: list[str], threads: int) -> dict[str, Any]:
    """Median time of a bare sentence-transformers (PyTorch) encode of one question, with
    the service's embedding threads and with torch's default; the faster is the floor."""
    import torch  # noqa: I001  (after the offline settings that the loader makes)

    from ..export import load_sentence_transformer

    st = load_sentence_transformer(model)
    default_threads = torch.get_num_threads()
    result: dict[str, Any] = {}
    for label, n in (("service_threads", threads), ("default_threads", default_threads)):
        torch.set_num_threads(n)
        st.encode(questions[:2])  # warm up
        times = []
        for q in questions:
            started = time.perf_counter()
            st.encode([q], normalize_embeddings=True, show_progress_bar=False)
            times.append(time.perf_counter() - started)
        result[label] = {"threads": n, "median_ms": ms(statistics.median(times))}
    torch.set_num_threads(default_threads)
    result["median_ms"] = min(v["median_ms"] for v in result.values())
    result["questions"] = len(questions)
    return result


BARE_LOAD = """
import os, time
for k, v in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
             ("TOKENIZERS_PARALLELISM", "false"), ("TRANSFORMERS_VERBOSITY", "error")):
    os.environ.setdefault(k, v)
from sentence_transformers import SentenceTransformer
model = SentenceTransformer({path!r}, device="cpu")
model.encode(["How long does a bare start take?"])
"""


def bare_cold_start(model: str, env: dict[str, str]) -> float:
    """Seconds for a fresh Python to import sentence-transformers, load the model and
    encode one question (the same work a first answer needs)."""
    from ..runner import resolve_model

    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", BARE_LOAD.format(path=resolve_model(model))],
        check=True,
        env=env,
        capture_output=True,
    )
    return time.perf_counter() - started


def measure_help() -> float:
    """Seconds for `qa --help` in a fresh process (the best of three)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "qa", "--help"], check=True, capture_output=True)
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def recall_at_k(
    index_dir: Path, questions: list[str], embedder: Embedder, k: int = 10
) -> dict[str, Any]:
    """Recall@k of the index's own (possibly approximate) search against exact search over
    the same vectors, through the function the service uses (which asks for POOL
    candidates). A sentence counts as found when its score reaches the exact k-th score:
    near-duplicate sentences tie, and either of two tied sentences is a right answer."""
    import faiss
    import numpy as np

    from ..index import load_index
    from ..retrieve import POOL
    from ..vectors import dense_search

    index = load_index(index_dir)
    kind = type(index.vectors).__name__
    exact = faiss.IndexFlatIP(index.vectors.d)
    exact.add(index.vectors.reconstruct_n(0, index.vectors.ntotal))
    queries = embedder.encode_questions(questions)
    k = min(k, index.vectors.ntotal)
    found = 0
    for q in queries:
        approx = sorted(dense_search(index.vectors, q, max(POOL, k)).values(), reverse=True)[:k]
        scores, _ = exact.search(np.asarray(q, dtype=np.float32).reshape(1, -1), k)
        found += sum(s >= scores[0][k - 1] - 1e-5 for s in approx)
    total = len(queries) * k
    return {
        "index_kind": kind,
        "k": k,
        "queries": len(queries),
        "recall": round(found / total, 4) if total else None,
    }


def reader_runs(
    folder: Path, questions: list[str], texts: list[str], rows: int = 3
) -> dict[str, Any]:
    """The reader's own runs, ``rows`` sentences of the documents a question, each a run of
    its own as served: the model file as stored (uint8 weights) against the model as this
    CPU serves it (``OnnxReader.served``: int8 weights where that gives the same logits),
    alternated, median ms a question on one thread, one row after another (as under load),
    and on every core, the rows side by side on one thread each (a question alone)."""
    from ..build import sentences_of
    from ..features import Candidate
    from ..read import OnnxReader
    from ..records import Document

    reader = OnnxReader(folder)
    path, served = Path(folder) / "model.onnx", reader.served
    sentences = [s.text for i, t in enumerate(texts) for s in sentences_of(Document(str(i), t, ""))]
    batches = []
    for n, q in enumerate(questions):
        at = (7 * n) % max(len(sentences) - rows, 1)
        picked = sentences[at : at + rows]
        before = [sentences[at - 1] if at else "", *picked[:-1]]
        candidates = [Candidate(s, p) for s, p in zip(picked, before, strict=True)]
        batches.append(reader.featurizer.encode(q, candidates).rows())
    result: dict[str, Any] = {
        "rows": rows,
        "questions": len(batches),
        "served": "int8 weights" if isinstance(served, bytes) else "the file's uint8 weights",
    }
    longest = [sorted(b, key=lambda row: -row.ids.shape[1]) for b in batches]
    result.update(alternated_runs(path, served, [[r.feeds() for r in b] for b in longest], True))
    return result


def alternated_runs(
    path: Path,
    served: Path | bytes,
    feeds: list[list[dict[str, Any]]],
    side_by_side: bool = False,
    initializers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Median ms of a model's runs on each item of ``feeds`` (a question's runs), on one
    thread and on every core: the file as stored, and the model as served where that
    differs, the two alternated. On every core, ``side_by_side`` runs an item's runs at
    once on one-thread sessions, as ``OnnxReader.run_rows`` does for a question alone."""
    from concurrent.futures import ThreadPoolExecutor

    from ..runner import CORES, ort_session

    result: dict[str, Any] = {}
    with ThreadPoolExecutor(CORES) as pool:
        for threads in sorted({1, CORES}):
            apart = side_by_side and threads > 1
            each = 1 if apart else threads
            sessions = {"file": ort_session(path, each, None, initializers)}
            if isinstance(served, bytes):
                sessions["served"] = ort_session(served, each, None, initializers)
            times: dict[str, list[float]] = {k: [] for k in sessions}
            for item in [*feeds[:2], *feeds]:  # the first two warm up, and are run again
                for k, s in sessions.items():
                    started = time.perf_counter()
                    if apart:
                        list(pool.map(lambda feed, s=s: s.run(None, feed), item))
                    else:
                        for feed in item:
                            s.run(None, feed)
                    times[k].append(time.perf_counter() - started)
            result[f"{threads}_threads"] = {
                f"{k}_ms": ms(statistics.median(v[2:])) for k, v in times.items()
            }
    return result


def encoder_runs(folder: Path, model: str, questions: list[str]) -> dict[str, Any]:
    """The question encoder's own run, one question a run as served: the model file as
    stored (uint8 weights) against the model as this CPU serves it (int8 weights where that
    gives the same vectors), alternated, median ms on one thread (as under load) and on
    every core (a question alone)."""
    from ..questions import encoder_initializers, question_feeds, read_card, serving_model

    card, _ = read_card(folder)
    initializers = encoder_initializers(folder, card, model)
    served = serving_model(folder, initializers)
    feeds = question_feeds(folder, questions)
    result: dict[str, Any] = {
        "questions": len(feeds),
        "served": "int8 weights" if isinstance(served, bytes) else "the file's uint8 weights",
    }
    result.update(
        alternated_runs(folder / "model.onnx", served, [[f] for f in feeds], False, initializers)
    )
    return result
