"""Building an index: read the corpus, split it into sentences, embed them and write the
index folder (its format is described in ``index.py``).

Data files are content-named and written before the manifest, which is replaced last and
atomically: whatever moment a build is stopped at, ``manifest.json`` names complete files
(the old ones or the new ones), so a crash or Ctrl-C never leaves a broken index.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .config import Config
from .documents import corpus_fingerprint, is_markdown, load_corpus
from .embed import Embedder
from .files import write_atomic
from .index import (
    FORMAT_VERSION,
    MANIFEST,
    Index,
    IndexProblem,
    foreign,
    jsonl_rows,
    load_index,
    not_ours,
)
from .markdown import row_view, table_headers
from .records import Document, Sentence
from .split import split_sentences
from .vectors import to_bytes, vector_index
from .versions import package_versions

# Weight of the previous sentence in a sentence's vector: a sentence that says "she said"
# or "the group" is found by what the sentence before it names; the citation stays the
# sentence itself.
CONTEXT_WEIGHT = 0.3
# How the sentences were split and their vectors made, recorded in the manifest: an index
# made otherwise is rebuilt (``index.stale_reason``). Table rows: "named", as
# ``retrieval_texts`` gives them; Markdown: "as shown", a wrapped paragraph one text
# (``blocks.markdown_runs``; until 2026-12-01 every line break ended a sentence).
EMBEDDING = {"context_weight": CONTEXT_WEIGHT, "table_rows": "named", "markdown": "as shown"}
DATA_FILES = (("vectors", ".faiss"), ("sentences", ".jsonl"), ("documents", ".jsonl"))


def sentences_of(document: Document) -> list[Sentence]:
    return [
        Sentence(document.id, i, s, e, document.text[s:e])
        for i, (s, e) in enumerate(split_sentences(document.text, is_markdown(document.id)))
    ]


def build_warnings(manifest: dict[str, Any]) -> list[str]:
    """What an operator must hear of a build: each file left out and why, and each
    document with no sentence to answer from."""
    lines = [f"warning: skipped {message}" for message in manifest.get("skipped", [])]
    for doc in manifest["documents"]:
        if not doc["sentences"]:  # e.g. a table's rule line alone: nothing can be cited
            lines.append(f"warning: {doc['id']} has no sentence to answer from")
    return lines


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


def retrieval_texts(sentences: Sequence[Sentence], headers: Sequence[int | None]) -> list[str]:
    """What retrieval embeds and indexes of each of ``sentences`` (in document order; the
    position of each one's table header, ``markdown.table_headers``): a row of a Markdown
    table as its cells each after its column's name (``row_view``: 'Town: Keswick; Jobs
    created: 18.'), since a row of bare cells says nothing of what they are; any other
    sentence as it is written. (Rows found so rose from 0.84 to 0.90 among the first 3 on
    train/tables, 0.77 to 0.89 on train/markdown: docs/quality.md.)"""
    out = []
    for s, header in zip(sentences, headers, strict=True):
        view = None if header is None else row_view(s.text, sentences[header].text)
        out.append(s.text if view is None else view[0])
    return out


def embed_sentences(
    embedder: Embedder,
    sentences: list[Sentence],
    headers: Sequence[int | None],
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """The vectors of ``sentences`` as the index keeps them (``retrieval_texts``, with their
    context), given each one's table header (``markdown.table_headers``)."""
    return with_context(
        embedder.encode(retrieval_texts(sentences, headers), progress=progress), sentences
    )


def build_index(
    config: Config,
    embedder: Embedder,
    progress: Callable[[int, int], None] | None = None,
    notify: Callable[[str], None] | None = None,
) -> Index:
    """Read the corpus in ``config.seeds_dir``, split and embed it, and write a new index
    into ``config.index_dir``.

    ``progress(done, total)`` is called as sentences are embedded, and ``notify(line)``
    when the build waits for another writing into the same folder. Unusable documents are
    skipped and listed in ``manifest["skipped"]``.
    """
    started = time.perf_counter()
    seeds_dir, index_dir = Path(config.seeds_dir), Path(config.index_dir)
    sources = corpus_fingerprint(seeds_dir)
    corpus = load_corpus(seeds_dir)
    sentences = [s for doc in corpus.documents for s in sentences_of(doc)]
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, len(sentences))

    try:  # before minutes of embedding: a folder that cannot be made is said at once
        index_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IndexProblem(
            f"cannot create the index folder {index_dir} ({exc.strerror or exc}); "
            "give another with --index or QA_INDEX"
        ) from exc
    if not os.access(index_dir, os.W_OK | os.X_OK):  # ... and so is one that cannot be written
        raise IndexProblem(
            f"cannot write in the index folder {index_dir} (permission denied); "
            "give another with --index or QA_INDEX"
        )
    _check_not_foreign(index_dir / MANIFEST)
    step(0)  # the corpus is read: embedding starts
    headers = table_headers(sentences, {d.id: d.text for d in corpus.documents})
    vectors = embed_sentences(embedder, sentences, headers, step)
    flat, faiss_info = vector_index(vectors, embedder.dimension, config.hnsw_min_sentences)
    positions = [
        {"doc": s.doc, "sentence": s.index, "start": s.start, "end": s.end} for s in sentences
    ]
    docs = [{"id": d.id, "sha256": d.sha256, "text": d.text} for d in corpus.documents]
    rows: dict[str, list[dict[str, Any]]] = {"sentences": positions, "documents": docs}
    data = {name: _jsonl(r) for name, r in rows.items()}
    for name, r in rows.items():  # read back as load_index reads them, or the old index stays
        if jsonl_rows(data[name]) != r:
            raise IndexProblem(f"the new index's {name} would not read back; the old index stays")
    # one build at a time writes into the folder: another's clean-up would remove this one's
    # new files (two `qa index`, or a server rebuilding while `qa index` runs); an OSError
    # (a full disk, a folder made read-only since) is one line, and the index there before
    # stays, since the manifest is replaced last
    with building(index_dir, notify):
        files = {
            "vectors": _write_data(index_dir, "vectors", ".faiss", to_bytes(flat)),
            **{name: _write_data(index_dir, name, ".jsonl", d) for name, d in data.items()},
        }
        counts: dict[str, int] = {}
        for s in sentences:
            counts[s.doc] = counts.get(s.doc, 0) + 1
        manifest = {
            "format_version": FORMAT_VERSION,
            "model": {"name": embedder.name, "dimension": embedder.dimension},
            "documents": [
                {
                    "id": d.id,
                    "sha256": d.sha256,
                    "chars": len(d.text),
                    "sentences": counts.get(d.id, 0),
                }
                for d in corpus.documents
            ],
            "skipped": list(corpus.skipped),
            "sources": sources,
            "counts": {"documents": len(corpus.documents), "sentences": len(sentences)},
            "faiss": faiss_info,
            "embedding": EMBEDDING,
            "files": files,
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "build_seconds": round(time.perf_counter() - started, 3),
            "versions": _versions(),
        }
        write_atomic(index_dir / MANIFEST, json.dumps(manifest, indent=2).encode())
        _remove_unreferenced(index_dir, files)
        return load_index(index_dir)  # before another build may replace it


def _check_not_foreign(manifest: Path) -> None:
    """IndexProblem when the folder's ``manifest.json`` is JSON that no qa build wrote
    (``index.foreign``): the build would replace it. A damaged one (not JSON at all) is an
    index to rebuild, as the loader's message says."""
    try:
        found = json.loads(manifest.read_bytes())
    except (OSError, ValueError):
        return  # none, unreadable (the write will say so) or damaged
    if foreign(found):
        raise IndexProblem(not_ours(manifest))


LOCK = ".build.lock"  # in the index folder: held while a build writes there


@contextmanager
def building(index_dir: Path, notify: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the index folder's build lock, waiting while another build writes there (and
    saying so to ``notify``); an OSError meanwhile is one line (``writing``). Opened for
    reading: a lock file another user made, that this one may not write, still locks."""
    with writing(index_dir):
        fd = os.open(index_dir / LOCK, os.O_RDONLY | os.O_CREAT, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if notify:
                    notify(f"waiting for another build writing the index in {index_dir} ...")
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # and the lock with it


@contextmanager
def writing(index_dir: Path) -> Iterator[None]:
    """Writing the index's files: an OSError (a full disk, a folder made read-only since) is
    one line; what was there before stays, since the manifest is replaced last."""
    try:
        yield
    except OSError as exc:
        raise IndexProblem(
            f"cannot write the index in {index_dir} ({exc.strerror or exc}); "
            "the index there before, if any, stays"
        ) from exc


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def _write_data(index_dir: Path, stem: str, suffix: str, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    name = f"{stem}-{digest[:16]}{suffix}"
    write_atomic(index_dir / name, data)
    return {"name": name, "sha256": digest, "bytes": len(data)}


def _remove_unreferenced(index_dir: Path, files: dict[str, dict[str, Any]]) -> None:
    """Remove the data files of earlier builds: named as ``_write_data`` names them (a
    16-digit hex digest), so that another file in the folder is never touched."""
    keep = {f["name"] for f in files.values()}
    for stem, suffix in DATA_FILES:
        for p in index_dir.glob(f"{stem}-{'[0-9a-f]' * 16}{suffix}"):
            if p.name not in keep:
                with contextlib.suppress(OSError):
                    p.unlink()


def _versions() -> dict[str, str]:
    versions = package_versions(
        {
            "faiss": "faiss-cpu",
            "onnxruntime": "onnxruntime",
            "sentence_transformers": "sentence-transformers",
            "torch": "torch",
        }
    )
    return {"qa": __version__, "numpy": np.__version__, **versions}
