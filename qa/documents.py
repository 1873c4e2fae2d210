"""Reading the corpus: every ``.txt`` and ``.md`` file under the seeds folder."""

from __future__ import annotations

import codecs
import hashlib
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .errors import QAError
from .records import Document

# the byte-order marks of other encodings than UTF-8 (UTF-32's before UTF-16's: it begins so)
BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
# what no file name should hold: control characters (a line break, a tab), line and
# paragraph separators, and the stand-ins for bytes that are not UTF-8 (surrogates)
UNNAMEABLE = frozenset({"Cc", "Cs", "Zl", "Zp"})
MARKDOWN = ".md"
SUFFIXES = (".txt", MARKDOWN)


def is_markdown(doc: str) -> bool:
    """Whether the document ``doc`` (its id: its path under the seeds folder) is Markdown."""
    return doc.lower().endswith(MARKDOWN)


class DocumentError(QAError):
    """A document, or the corpus as a whole, cannot be used."""


@dataclass(frozen=True)
class Corpus:
    documents: tuple[Document, ...]
    skipped: tuple[str, ...]  # one message per file left out, naming it and why


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def corpus_files(seeds_dir: Path) -> list[Path]:
    """The corpus files under ``seeds_dir``, in a stable order (hidden files excluded)."""
    return [p for p in _walk(Path(seeds_dir))[0] if p.is_file()]


def _walk(seeds_dir: Path) -> tuple[list[Path], list[Path]]:
    """What under ``seeds_dir`` is named like a corpus file, and the links to folders (not
    followed: a link can loop), each in a stable order (hidden files and folders
    excluded); DocumentError when there is no such folder."""
    if not seeds_dir.is_dir():
        why = "is not a folder" if seeds_dir.exists() else "does not exist"
        raise DocumentError(f"seeds folder {seeds_dir} {why}")
    found, links = [], []
    for p in seeds_dir.rglob("*"):
        if any(part.startswith(".") for part in p.relative_to(seeds_dir).parts):
            continue
        if p.is_symlink() and p.is_dir():  # whatever its name
            links.append(p)
        elif p.suffix.lower() in SUFFIXES:
            found.append(p)
    order = lambda p: p.relative_to(seeds_dir).as_posix()  # noqa: E731
    return sorted(found, key=order), sorted(links, key=order)


class NotUTF8(QAError, ValueError):
    """Bytes that are not UTF-8; ``at``: the offset of the first byte that is not."""

    def __init__(self, at: int) -> None:
        super().__init__(f"not UTF-8 at byte offset {at}")
        self.at = at


def utf8_text(data: bytes) -> str:
    """``data`` read as UTF-8, a leading byte-order mark not part of the text; NotUTF8
    with the first bad byte's offset counted in ``data`` (the mark included)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        at = exc.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
        raise NotUTF8(at) from None


def read_document(path: Path, doc_id: str) -> Document:
    """Read one UTF-8 document; raise DocumentError naming the file when it is unusable."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{doc_id}: cannot be read ({exc.strerror})") from exc
    for mark, name in BYTE_ORDER_MARKS:
        if data.startswith(mark):
            raise DocumentError(f"{doc_id}: {name} text, not UTF-8; save it as UTF-8")
    try:
        text = utf8_text(data)
    except NotUTF8 as exc:
        raise DocumentError(
            f"{doc_id}: not valid UTF-8 (at byte offset {exc.at}); save it as UTF-8"
        ) from exc
    if "\x00" in text:  # no text has NUL: a binary file, or UTF-16 without its mark
        raise DocumentError(
            f"{doc_id}: not text (it holds NUL bytes: a binary file, or UTF-16); "
            "save it as UTF-8 text"
        )
    if not text.strip():
        raise DocumentError(f"{doc_id}: the document is empty")
    return Document(id=doc_id, text=text, sha256=sha256_bytes(data))


def load_corpus(seeds_dir: Path) -> Corpus:
    """Read every corpus file. Unusable files are skipped with a message; a corpus with no
    usable document at all is an error."""
    seeds_dir = Path(seeds_dir)
    documents, skipped = [], []
    named, links = _walk(seeds_dir)
    for link in links:
        skipped.append(
            f"{link.relative_to(seeds_dir).as_posix()}/: a link to a folder, not followed "
            "(link its files one by one, or copy the folder in)"
        )
    for path in named:
        doc_id = path.relative_to(seeds_dir).as_posix()
        if any(unicodedata.category(c) in UNNAMEABLE for c in doc_id):
            shown = "".join(
                repr(c)[1:-1] if unicodedata.category(c) in UNNAMEABLE else c for c in doc_id
            )
            skipped.append(
                f"{shown}: its name holds a control character or a byte that is not UTF-8; "
                "rename it"
            )
        elif path.is_file():  # as corpus_files takes them
            try:
                documents.append(read_document(path, doc_id))
            except DocumentError as exc:
                skipped.append(str(exc))
        elif not path.is_dir():  # a broken link, a pipe (reading it would wait), a device
            skipped.append(f"{doc_id}: not a file to read (a broken link, a pipe or a device)")
    if not documents:
        why = f" ({'; '.join(skipped)})" if skipped else ""
        raise DocumentError(
            f"no usable documents in {seeds_dir}: add .txt or .md files (UTF-8){why}"
        )
    return Corpus(tuple(documents), tuple(skipped))


def corpus_fingerprint(seeds_dir: Path) -> dict[str, str]:
    """doc id -> sha256 of its bytes, for every corpus file (usable or not): cheap to
    compute, so a loader can tell whether the index is stale without reading the model."""
    seeds_dir = Path(seeds_dir)
    return {p.relative_to(seeds_dir).as_posix(): _fingerprint(p) for p in corpus_files(seeds_dir)}


def _fingerprint(path: Path) -> str:
    """The sha256 of a file's bytes; for a file that cannot be read (no permission), what
    stops it, so that it counts as changed once it can be read (``load_corpus`` skips it
    with a warning)."""
    try:
        return sha256_bytes(path.read_bytes())
    except OSError as exc:
        return f"unreadable: {exc.strerror or type(exc).__name__}"
