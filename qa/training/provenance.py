"""What a training run may start from, and what its card records of the data it chose on.

A teacher whose logits are distilled, or a question encoder whose retrieval gives the
training rows and the validation readings, must not have trained on a document that is a
validation document now: what it learned of that document would reach the student, and
every choice made on validation after it (``check_split``). The validation sets asked
through the service are recorded by their bytes, as the corpus is (``set_hashes``)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..config import Config
from ..corpus import Corpus, document_files, files_in, question_files
from ..documents import corpus_fingerprint
from ..files import jsonl_files
from ..questions import question_folder, read_card
from ..read import OnnxReader, ReaderError


def check_split(
    card: dict[str, Any], what: str, corpus: Corpus, documents_sha256: str
) -> str | None:
    """ReaderError naming ``what`` (a teacher, the question encoder) when its card shows it
    trained on a document that is a validation document of ``corpus`` now; a warning when
    its card cannot tell (trained on other documents, before cards listed them: the shipped
    question encoder on another corpus than ``train/``); None when it did not.
    ``documents_sha256``: the corpus's documents hash, as the cards record it."""
    data = card.get("data", {})
    theirs = data.get("validation_documents")
    now = set(corpus.validation)
    trained = data.get("training_documents")
    if isinstance(trained, list):  # listed since 2026-12-01: checked whatever its corpus
        seen = now & set(trained)
    elif isinstance(theirs, list) and data.get("sha256", {}).get("documents") == documents_sha256:
        seen = now - set(theirs)  # the same documents: it trained on all but its own
    else:
        return (
            f"{what} was trained on other documents than these and its card does not list "
            "them: whether it saw today's validation documents cannot be checked"
        )
    if seen:
        names = ", ".join(sorted(seen)[:3])
        raise ReaderError(
            f"{what} trained on {len(seen)} of today's validation documents ({names}): "
            "train it again on this split"
        )
    return None


def check_sources(
    corpus: Corpus, teachers: Sequence[OnnxReader], config: Config, log: Callable[[str], None]
) -> None:
    """Refuse a teacher or a question encoder trained on today's validation documents, and
    say when that cannot be checked (``provenance.check_split``)."""
    documents = corpus_hashes(corpus.root)["documents"]
    cards = [(t.card, f"the teacher in {t.folder}") for t in teachers]
    folder = question_folder(config)
    if folder is not None:
        cards.append((read_card(folder)[0], f"the question encoder in {folder}"))
    for card, what in cards:
        warning = check_split(card, what, corpus, documents)
        if warning:
            log(f"warning: {warning}")


def training_documents(corpus: Corpus) -> list[str]:
    """The documents a run trains on (all but the validation ones), for its card."""
    return sorted(set(corpus.documents) - set(corpus.validation))


def set_hashes(sets: Sequence[tuple[str, Path, Path]]) -> dict[str, dict[str, str]]:
    """For each validation set (name, questions, documents), the sha256 of its question
    file (of a folder of them: each one's path and bytes, in order) and of its documents
    (as the index's staleness check fingerprints them)."""
    out = {}
    for name, questions, seeds in sets:
        documents = hashlib.sha256()
        for doc, digest in sorted(corpus_fingerprint(seeds).items()):
            documents.update(f"{doc}\0{digest}\n".encode())
        if Path(questions).is_dir():
            asked = files_sha256(jsonl_files(Path(questions)), Path(questions))
        else:
            asked = hashlib.sha256(Path(questions).read_bytes()).hexdigest()
        out[name] = {
            "questions": asked,
            "documents": documents.hexdigest(),
        }
    return out


INDEPENDENT_FOLDER = "independent"  # the corpus's independent validation set (qa train)


def corpus_hashes(root: Path) -> dict[str, str]:
    """sha256 of the documents, of the questions and of the independent validation set when
    there is one (paths and bytes, in order)."""
    parts = {
        "documents": document_files(root),
        "questions": question_files(root),
        INDEPENDENT_FOLDER: sorted((Path(root) / INDEPENDENT_FOLDER).glob("validation.jsonl"))
        + files_in(Path(root) / INDEPENDENT_FOLDER / "validation"),
    }
    out = {}
    for part, paths in parts.items():
        if part == INDEPENDENT_FOLDER and not paths:
            continue
        out[part] = files_sha256(paths, Path(root))
    return out


def files_sha256(paths: Sequence[Path], root: Path) -> str:
    """sha256 of ``paths`` in order: each one's path under ``root`` and its bytes."""
    h = hashlib.sha256()
    for path in paths:
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()
