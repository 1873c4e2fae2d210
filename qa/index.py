"""The index: a folder holding ``manifest.json``, a FAISS file and the sentences.

Layout of ``index/``::

    manifest.json                how the index was built, and the checksums of its files
    vectors-<hash>.faiss         FAISS index (inner product on normalised vectors)
    sentences-<hash>.jsonl       one line a sentence: doc, sentence number, start, end
    documents-<hash>.jsonl       one line a document: id, sha256, text

Data files are content-named and written before the manifest, which is replaced last and
atomically: whatever moment a build is stopped at, ``manifest.json`` names complete files
(the old ones or the new ones), so a crash or Ctrl-C never leaves a broken index.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import __version__
from .documents import Corpus, corpus_fingerprint, load_corpus
from .records import Document, Sentence
from .split import split_sentences

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REBUILD_HINT = "rebuild it with `qa index`"
REQUIRED_KEYS = ("format_version", "model", "documents", "sources", "counts", "files")


class IndexProblem(Exception):
    """The index is missing, unreadable or inconsistent; the message says how to fix it."""


@dataclass(frozen=True)
class Index:
    """A loaded index: the manifest, the documents, the sentences and the FAISS index."""

    path: Path
    manifest: dict
    version: str
    documents: dict[str, Document]
    sentences: tuple[Sentence, ...]
    vectors: object  # faiss.Index

    @property
    def model(self) -> str:
        return self.manifest["model"]["name"]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def embedding_text(sentence: Sentence, document: Document) -> str:
    """The text embedded for a sentence (the citation is always the sentence itself)."""
    return sentence.text


# Weight of the previous sentence in a sentence's vector: a sentence that says "she said"
# or "the group" is found by what the sentence before it names; the citation stays the
# sentence itself.
CONTEXT_WEIGHT = 0.3


def with_context(vectors: np.ndarray, sentences: list[Sentence]) -> np.ndarray:
    """Each sentence's vector plus CONTEXT_WEIGHT times its predecessor's, re-normalised."""
    if not CONTEXT_WEIGHT or len(vectors) < 2:
        return vectors
    mixed = vectors.copy()
    for i in range(1, len(sentences)):
        if sentences[i].doc == sentences[i - 1].doc:
            mixed[i] += CONTEXT_WEIGHT * vectors[i - 1]
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    return np.ascontiguousarray(mixed, dtype=np.float32)


def sentences_of(document: Document) -> list[Sentence]:
    return [
        Sentence(document.id, i, s, e, document.text[s:e])
        for i, (s, e) in enumerate(split_sentences(document.text))
    ]


# --- building -------------------------------------------------------------------------


def build_index(
    seeds_dir: Path,
    index_dir: Path,
    embedder,
    progress: Callable[[int, int], None] | None = None,
) -> Index:
    """Read the corpus, split and embed it, and write a new index into ``index_dir``.

    ``progress(done, total)`` is called as sentences are embedded. Unusable documents are
    skipped and listed in ``manifest["skipped"]``.
    """

    started = time.perf_counter()
    seeds_dir, index_dir = Path(seeds_dir), Path(index_dir)
    sources = corpus_fingerprint(seeds_dir)
    corpus: Corpus = load_corpus(seeds_dir)
    sentences = [s for doc in corpus.documents for s in sentences_of(doc)]
    by_id = {d.id: d for d in corpus.documents}
    texts = [embedding_text(s, by_id[s.doc]) for s in sentences]

    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, len(texts))

    vectors = with_context(embedder.encode(texts, progress=step), sentences)
    flat, faiss_info = vector_index(vectors, embedder.dimension)

    calibration = _calibrate(embedder, corpus, sentences, flat, index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "vectors": _write_data(index_dir, "vectors", ".faiss", _faiss_bytes(flat)),
        "sentences": _write_data(
            index_dir,
            "sentences",
            ".jsonl",
            _jsonl(
                [
                    {"doc": s.doc, "sentence": s.index, "start": s.start, "end": s.end}
                    for s in sentences
                ]
            ),
        ),
        "documents": _write_data(
            index_dir,
            "documents",
            ".jsonl",
            _jsonl([{"id": d.id, "sha256": d.sha256, "text": d.text} for d in corpus.documents]),
        ),
    }
    counts = {}
    for s in sentences:
        counts[s.doc] = counts.get(s.doc, 0) + 1
    manifest = {
        "format_version": FORMAT_VERSION,
        "model": {"name": embedder.name, "dimension": embedder.dimension},
        "documents": [
            {"id": d.id, "sha256": d.sha256, "chars": len(d.text), "sentences": counts.get(d.id, 0)}
            for d in corpus.documents
        ],
        "skipped": list(corpus.skipped),
        "sources": sources,
        "counts": {"documents": len(corpus.documents), "sentences": len(sentences)},
        "faiss": faiss_info,
        "embedding": {"context_weight": CONTEXT_WEIGHT},
        "calibration": calibration,
        "files": files,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "build_seconds": round(time.perf_counter() - started, 3),
        "versions": _versions(),
    }
    _write_atomic(index_dir / MANIFEST, json.dumps(manifest, indent=2).encode())
    _remove_unreferenced(index_dir, files)
    return load_index(index_dir)


# Exact search up to Config.hnsw_min_sentences (20,000 by default: a millisecond or two);
# from there on HNSW, an approximate graph index whose recall `qa bench` measures. The
# graph walks 8-bit codes of the vectors (a quarter of the memory to touch: 0.5 ms a
# search at 100k sentences instead of 0.85 for full vectors, recall@10 0.985 either way),
# and the candidates it finds are scored again on the full vectors (IndexRefineFlat), so
# every score the service sees is exact.
HNSW_M = 32  # graph degree
HNSW_EF_CONSTRUCTION = 200  # 64 gave recall@10 0.90-0.94 at 100k; 200 gives 0.99
HNSW_STORAGE = "sq8"
# candidates explored per search, set when the index is loaded (a query-time setting, so
# an index built with another value searches with this one). At 100k sentences: 256 gave
# recall@10 0.989 in 0.77 ms, 192 0.985 in 0.50 ms, 128 0.972 in 0.36 ms
HNSW_EF_SEARCH = 192


def vector_index(vectors: np.ndarray, dimension: int) -> tuple[object, dict]:
    """The FAISS index for ``vectors`` and its manifest entry: exact inner product (cosine
    on unit vectors) for small corpora, HNSW on inner product from ``threshold`` on."""
    import faiss

    from .config import Config

    threshold = Config.load().hnsw_min_sentences
    if len(vectors) >= threshold:
        graph = faiss.IndexHNSWSQ(
            dimension, faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT
        )
        graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        graph.hnsw.efSearch = HNSW_EF_SEARCH
        graph.train(vectors)
        index = faiss.IndexRefineFlat(graph)  # adds to both; rescores on full vectors
        graph.this.disown()  # the refine index owns the graph from here on
        index.own_fields = True
        params = {
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
        "hnsw_min_sentences": threshold,
        **params,
    }
    return index, info


def _calibrate(embedder, corpus: Corpus, sentences: list[Sentence], vectors, index_dir: Path):
    from .calibrate import calibrate
    from .lexical import LexicalIndex

    draft = Index(index_dir, {}, "", {d.id: d for d in corpus.documents}, tuple(sentences), vectors)
    return calibrate(draft, embedder, LexicalIndex(sentences))


def _faiss_bytes(index) -> bytes:
    import faiss

    return faiss.serialize_index(index).tobytes()


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def _write_data(index_dir: Path, stem: str, suffix: str, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    name = f"{stem}-{digest[:16]}{suffix}"
    _write_atomic(index_dir / name, data)
    return {"name": name, "sha256": digest, "bytes": len(data)}


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _remove_unreferenced(index_dir: Path, files: dict) -> None:
    keep = {f["name"] for f in files.values()}
    for stem, suffix in (("vectors", ".faiss"), ("sentences", ".jsonl"), ("documents", ".jsonl")):
        for p in index_dir.glob(f"{stem}-*{suffix}"):
            if p.name not in keep:
                with contextlib.suppress(OSError):
                    p.unlink()


def _versions() -> dict:
    import faiss
    import sentence_transformers
    import torch

    return {
        "qa": __version__,
        "python": platform.python_version(),
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "faiss": faiss.__version__,
        "numpy": np.__version__,
    }


# --- loading --------------------------------------------------------------------------


def _read_manifest(index_dir: Path) -> tuple[bytes, dict] | None:
    """The manifest's bytes and contents, read once (so that both come from the same
    file, even while a build replaces it); None when there is no index."""
    path = Path(index_dir) / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IndexProblem(f"{path} cannot be read ({exc.strerror}); {REBUILD_HINT}") from exc
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexProblem(f"{path} is not valid JSON; {REBUILD_HINT}") from exc
    if not isinstance(manifest, dict) or any(k not in manifest for k in REQUIRED_KEYS):
        missing = [k for k in REQUIRED_KEYS if not isinstance(manifest, dict) or k not in manifest]
        raise IndexProblem(f"{path} lacks {', '.join(missing)}; {REBUILD_HINT}")
    if manifest["format_version"] != FORMAT_VERSION:
        raise IndexProblem(
            f"{path} has format version {manifest['format_version']}, this qa reads "
            f"{FORMAT_VERSION}; {REBUILD_HINT}"
        )
    return raw, manifest


def read_manifest(index_dir: Path) -> dict | None:
    """The manifest, or None when there is no index; IndexProblem when it is unusable."""
    loaded = _read_manifest(index_dir)
    return loaded[1] if loaded else None


def manifest_version(index_dir: Path) -> str | None:
    """The version of the index on disk (a hash of its manifest), or None if absent."""
    try:
        return hashlib.sha256((Path(index_dir) / MANIFEST).read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def _read_checked(index_dir: Path, manifest: dict, key: str) -> bytes:
    try:
        entry = manifest["files"][key]
        name, digest = entry["name"], entry["sha256"]
    except (KeyError, TypeError) as exc:
        raise IndexProblem(
            f"{index_dir / MANIFEST} does not list the {key} file; {REBUILD_HINT}"
        ) from exc
    path = index_dir / Path(name).name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IndexProblem(f"{path} is missing or unreadable; {REBUILD_HINT}") from exc
    if hashlib.sha256(data).hexdigest() != digest:
        raise IndexProblem(
            f"{path} is damaged (its checksum does not match the manifest); {REBUILD_HINT}"
        )
    return data


def load_index(index_dir: Path) -> Index:
    """Load and verify the index in ``index_dir``; IndexProblem names what is wrong."""
    import faiss

    index_dir = Path(index_dir)
    loaded = _read_manifest(index_dir)
    if loaded is None:
        raise IndexProblem(f"there is no index in {index_dir}; build it with `qa index`")
    raw, manifest = loaded
    version = hashlib.sha256(raw).hexdigest()[:16]

    # checksums first: FAISS never reads a file that is not the one that was written
    vec_bytes = _read_checked(index_dir, manifest, "vectors")
    sent_bytes = _read_checked(index_dir, manifest, "sentences")
    doc_bytes = _read_checked(index_dir, manifest, "documents")
    try:
        documents = {}
        for line in doc_bytes.decode("utf-8").splitlines():
            row = json.loads(line)
            documents[row["id"]] = Document(row["id"], row["text"], row["sha256"])
        sentences = []
        for line in sent_bytes.decode("utf-8").splitlines():
            row = json.loads(line)
            doc = documents[row["doc"]]
            sentences.append(
                Sentence(
                    row["doc"],
                    row["sentence"],
                    row["start"],
                    row["end"],
                    doc.text[row["start"] : row["end"]],
                )
            )
        vectors = faiss.deserialize_index(np.frombuffer(vec_bytes, dtype=np.uint8))
        dimension = int(manifest["model"]["dimension"])
    except Exception as exc:  # any inconsistency in files whose checksums matched
        raise IndexProblem(
            f"the index in {index_dir} is inconsistent ({exc}); {REBUILD_HINT}"
        ) from exc
    graph = hnsw_graph(vectors)
    if graph is not None:
        graph.hnsw.efSearch = HNSW_EF_SEARCH
    if vectors.ntotal != len(sentences) or vectors.d != dimension:
        raise IndexProblem(
            f"the index in {index_dir} holds {vectors.ntotal} vectors of dimension {vectors.d} "
            f"for {len(sentences)} sentences of dimension {dimension}; {REBUILD_HINT}"
        )
    return Index(index_dir, manifest, version, documents, tuple(sentences), vectors)


def hnsw_graph(vectors):
    """The HNSW index inside ``vectors`` (itself, or the base of a refine index), or None
    for exact search."""
    import faiss

    if hasattr(vectors, "base_index"):
        vectors = faiss.downcast_index(vectors.base_index)
    return vectors if hasattr(vectors, "hnsw") else None


def stale_reason(index_dir: Path, seeds_dir: Path, model: str) -> str | None:
    """Why the index must be rebuilt (missing, documents changed, other model), or None.

    Raises IndexProblem when the manifest exists but is unusable."""
    manifest = read_manifest(index_dir)
    if manifest is None:
        return f"no index in {index_dir}"
    if manifest["model"].get("name") != model:
        return f"the index was built with model {manifest['model'].get('name')!r}, not {model!r}"
    current = corpus_fingerprint(seeds_dir)
    if manifest["sources"] != current:
        old = manifest["sources"]
        changed = sorted(set(old) ^ set(current) | {k for k in old if current.get(k) != old[k]})
        return f"documents changed in {seeds_dir}: {', '.join(changed[:5])}"
    return None
