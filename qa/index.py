"""The index on disk: a folder holding ``manifest.json``, a FAISS file and the sentences,
and loading it (building one is ``build.py``).

Layout of ``index/``::

    manifest.json                how the index was built, and the checksums of its files
    vectors-<hash>.faiss         FAISS index (inner product on normalised vectors)
    sentences-<hash>.jsonl       one line a sentence: doc, sentence number, start, end
    documents-<hash>.jsonl       one line a document: id, sha256, text

Data files are content-named and written before the manifest, which is replaced last and
atomically (see ``build.py``). Every file is checked against the manifest's sha256 before
it is read.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from .documents import corpus_fingerprint
from .errors import QAError
from .markdown import table_headers
from .records import Document, Sentence
from .vectors import from_bytes

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REBUILD_HINT = "rebuild it with `qa index`"
REQUIRED_KEYS = ("format_version", "model", "documents", "sources", "counts", "files")


class IndexProblem(QAError):
    """The index is missing, unreadable or inconsistent; the message says how to fix it."""


@dataclass(frozen=True)
class Index:
    """A loaded index: the manifest, the documents, the sentences and the FAISS index."""

    path: Path
    manifest: dict[str, Any]
    version: str
    documents: dict[str, Document]
    sentences: tuple[Sentence, ...]
    vectors: Any  # a faiss.Index

    @cached_property
    def document_sizes(self) -> dict[str, int]:
        """How many sentences each document has (counted once, when first asked)."""
        return dict(Counter(s.doc for s in self.sentences))

    @cached_property
    def table_headers(self) -> list[int | None]:
        """For each sentence, the position of its Markdown table's header row, if it is a
        row below one (``markdown.table_headers``); found once, when first asked."""
        texts = {doc: d.text for doc, d in self.documents.items()}
        return table_headers(self.sentences, texts)

    @property
    def model(self) -> str:
        name: str = self.manifest["model"]["name"]
        return name


def _read_manifest(index_dir: Path) -> tuple[bytes, dict[str, Any]] | None:
    """The manifest's bytes and contents, read once (so that both come from the same
    file, even while a build replaces it); None when there is no index."""
    path = Path(index_dir) / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except NotADirectoryError as exc:  # the folder, or a folder above it, is a file
        raise IndexProblem(
            f"the index folder {index_dir} is not a folder (a part of its path is a file); "
            "give another with --index or QA_INDEX"
        ) from exc
    except OSError as exc:
        raise IndexProblem(f"{path} cannot be read ({exc.strerror}); {REBUILD_HINT}") from exc
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexProblem(f"{path} is not valid JSON; {REBUILD_HINT}") from exc
    if foreign(manifest):
        raise IndexProblem(not_ours(path))
    if any(k not in manifest for k in REQUIRED_KEYS):
        missing = [k for k in REQUIRED_KEYS if not isinstance(manifest, dict) or k not in manifest]
        raise IndexProblem(f"{path} lacks {', '.join(missing)}; {REBUILD_HINT}")
    version = manifest["format_version"]
    if type(version) is not int or version != FORMAT_VERSION:
        raise IndexProblem(
            f"{path} has format version {json.dumps(version)}, this qa reads "
            f"{FORMAT_VERSION}; {REBUILD_HINT}"
        )
    wrong = ill_formed(manifest)
    if wrong:
        raise IndexProblem(f"{path} is ill-formed ({wrong}); {REBUILD_HINT}")
    return raw, manifest


def foreign(manifest: Any) -> bool:
    """Whether a ``manifest.json``'s JSON is one no qa build wrote: every build writes an
    object with ``format_version``."""
    return not isinstance(manifest, dict) or "format_version" not in manifest


def not_ours(path: Path) -> str:
    """What to do about a ``manifest.json`` that no qa build wrote (``foreign``): a build
    will not replace it."""
    return (
        f"{path} is not the manifest of a qa index, and a build would replace it: give "
        "--index (or QA_INDEX) a folder of its own, or move that file away"
    )


def manifest_version(raw: bytes) -> str:
    """An index's version: the hash of its manifest's bytes (each build has its own)."""
    return hashlib.sha256(raw).hexdigest()[:16]


def ill_formed(manifest: dict[str, Any]) -> str | None:
    """What in a manifest of this format is not of the shape this qa reads, or None: the
    parts read without a checksum of their own (a hand-edited or half-written manifest must
    be refused as a whole, not fail later wherever a field is read)."""

    def is_int(x: Any) -> bool:
        return type(x) is int and x >= 0

    def is_str(x: Any) -> bool:
        return isinstance(x, str)

    model, counts, files = manifest["model"], manifest["counts"], manifest["files"]
    sources, skipped = manifest["sources"], manifest.get("skipped", [])
    if not isinstance(model, dict) or not is_str(model.get("name")):
        return "model: not an object with a name"
    if not is_int(model.get("dimension")):
        return "model: its dimension is not a whole number"
    if not isinstance(counts, dict) or not all(
        is_int(counts.get(k)) for k in ("documents", "sentences")
    ):
        return "counts: not whole numbers of documents and sentences"
    if not isinstance(sources, dict) or not all(
        is_str(k) and is_str(v) for k, v in sources.items()
    ):
        return "sources: not an object of document names and checksums"
    if not isinstance(manifest["documents"], list):
        return "documents: not a list"
    if not isinstance(skipped, list) or not all(is_str(m) for m in skipped):
        return "skipped: not a list of messages"
    if not isinstance(files, dict):
        return "files: not an object"
    for key in ("vectors", "sentences", "documents"):
        entry = files.get(key)
        if not isinstance(entry, dict) or not all(is_str(entry.get(k)) for k in ("name", "sha256")):
            return f"files: no name and checksum of the {key} file"
    if not all(isinstance(e, dict) and is_str(e.get("name", "")) for e in files.values()):
        return "files: an entry without a name"
    return None


def read_manifest(index_dir: Path) -> dict[str, Any] | None:
    """The manifest, or None when there is no index; IndexProblem when it is unusable."""
    loaded = _read_manifest(index_dir)
    return loaded[1] if loaded else None


def _read_checked(index_dir: Path, manifest: dict[str, Any], key: str) -> bytes:
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


def jsonl_rows(data: bytes) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file of the index. Lines end at "\n" only: a document's text
    may hold U+2028, U+2029 or U+0085, which JSON keeps as they are and ``str.splitlines``
    would also break at."""
    return [json.loads(line) for line in data.decode("utf-8").split("\n") if line.strip()]


def load_index(index_dir: Path) -> Index:
    """Load and verify the index in ``index_dir``; IndexProblem names what is wrong."""
    index_dir = Path(index_dir)
    loaded = _read_manifest(index_dir)
    if loaded is None:
        raise IndexProblem(f"there is no index in {index_dir}; build it with `qa index`")
    raw, manifest = loaded
    version = manifest_version(raw)

    # checksums first: FAISS never reads a file that is not the one that was written
    vec_bytes = _read_checked(index_dir, manifest, "vectors")
    sent_bytes = _read_checked(index_dir, manifest, "sentences")
    doc_bytes = _read_checked(index_dir, manifest, "documents")
    try:
        documents = {}
        for row in jsonl_rows(doc_bytes):
            documents[row["id"]] = Document(row["id"], row["text"], row["sha256"])
        sentences = []
        for row in jsonl_rows(sent_bytes):
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
        vectors = from_bytes(vec_bytes)
        dimension = int(manifest["model"]["dimension"])
    except Exception as exc:  # any inconsistency in files whose checksums matched
        raise IndexProblem(
            f"the index in {index_dir} is inconsistent ({exc}); {REBUILD_HINT}"
        ) from exc
    if vectors.ntotal != len(sentences) or vectors.d != dimension:
        raise IndexProblem(
            f"the index in {index_dir} holds {vectors.ntotal} vectors of dimension {vectors.d} "
            f"for {len(sentences)} sentences of dimension {dimension}; {REBUILD_HINT}"
        )
    return Index(index_dir, manifest, version, documents, tuple(sentences), vectors)


def stale_reason(
    index_dir: Path, seeds_dir: Path, model: str, embedding: Mapping[str, Any]
) -> str | None:
    """Why the index must be rebuilt (missing, documents changed, other model, its vectors
    made otherwise than ``embedding`` says, as the manifest records it), or None.

    Raises IndexProblem when the manifest exists but is unusable."""
    manifest = read_manifest(index_dir)
    if manifest is None:
        return f"no index in {index_dir}"
    if manifest["model"].get("name") != model:
        return f"the index was built with model {manifest['model'].get('name')!r}, not {model!r}"
    if manifest.get("embedding") != embedding:
        return "the index's sentences were split or embedded otherwise than this qa does"
    current = corpus_fingerprint(seeds_dir)
    if manifest["sources"] != current:
        old = manifest["sources"]
        changed = sorted(set(old) ^ set(current) | {k for k in old if current.get(k) != old[k]})
        return f"documents changed in {seeds_dir}: {', '.join(changed[:5])}"
    return None
