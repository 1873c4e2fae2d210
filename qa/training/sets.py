"""The validation sets a reader's settings are chosen on beside the corpus's own
validation documents, asked through the service: the development set beside the project,
the corpus's independent validation set, and the further sets ``qa train
--validation-set`` names."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ..corpus import Corpus, CorpusError, files_in
from ..evaluate import load_items
from .provenance import INDEPENDENT_FOLDER
from .report import DEFAULT_SETS, TEST_SETS, available_sets

ValidationSet = tuple[str, Path, Path]  # name, questions, documents


# A validation set beside the corpus's own validation documents, written the way the test
# sets are (by writers who saw neither the code nor the corpus), in the ``shared/eval``
# format: (name, questions, documents) relative to the corpus folder
INDEPENDENT = (
    INDEPENDENT_FOLDER,
    f"{INDEPENDENT_FOLDER}/validation.jsonl",
    f"{INDEPENDENT_FOLDER}/validation",
)


def validation_sets(
    corpus: Path, further: Sequence[Path] = (), log: Callable[[str], None] | None = None
) -> list[ValidationSet]:
    """The validation sets asked through the service: the development set when it is
    beside the project (``log`` says so when it is not: a corpus copied outside the project
    is chosen on without it), the corpus's independent validation set when it has one, and
    the ``further`` folders given (``further_set``). CorpusError when a set is half there,
    two share a name, or a set has no questions or a line that is not one (before any
    training, not after it)."""
    project = Path(corpus).resolve().parent
    sets = [s for s in available_sets(project) if s[0] == "dev"]
    if not sets and log is not None:
        _, questions, seeds = next(s for s in DEFAULT_SETS if s[0] == "dev")
        log(
            f"no development set beside the corpus ({(project / questions).resolve()} with "
            f"{project / seeds}/): choosing without it"
        )
    name, questions, documents = INDEPENDENT
    q, d = Path(corpus) / questions, Path(corpus) / documents
    if q.exists() or d.exists():
        if not q.is_file() or not files_in(d):
            raise CorpusError(
                f"{Path(corpus) / INDEPENDENT_FOLDER}: the independent validation set needs "
                f"both {questions} and .txt or .md documents in {documents}/"
            )
        sets.append((name, q, d))
    for folder in further:
        added = further_set(folder)
        # "validation": the corpus's own documents; a test set's name: its figures in the card
        taken = {"validation", *TEST_SETS, *(n for n, _, _ in sets)}
        if added[0] in taken:
            raise CorpusError(
                f"{folder}: a validation set cannot be named {added[0]!r}, the name of "
                f"{'a test set' if added[0] in TEST_SETS else 'a set already chosen on'}: "
                "rename its folder"
            )
        sets.append(added)
    for _, path, _ in sets:
        try:
            items = load_items(path)
        except ValueError as exc:
            raise CorpusError(str(exc)) from exc
        if not items:
            raise CorpusError(f"{path} has no questions: a validation set needs some")
    return sets


# the layouts of a validation set's folder: (questions, documents)
SET_LAYOUTS = (("validation.jsonl", "validation"), ("questions", "documents"))


def further_set(folder: Path) -> ValidationSet:
    """A validation set given by its folder, named after it: its ``validation.jsonl`` with
    the documents of ``validation/`` (as the corpus's independent set), or a labelled
    corpus's ``questions/`` with ``documents/`` (as ``train/technical/``); CorpusError
    saying what a folder in neither layout lacks."""
    folder = Path(folder)
    for questions, documents in SET_LAYOUTS:
        q, d = folder / questions, folder / documents
        if q.exists() and files_in(d):
            return (folder.resolve().name, q, d)
    raise CorpusError(
        f"{folder}: a validation set needs validation.jsonl with .txt or .md documents in "
        "validation/, or questions/ (.jsonl files) with the documents in documents/"
    )


def check_apart(corpus: Corpus, sets: Sequence[ValidationSet]) -> None:
    """CorpusError when a validation set holds a document the reader is trained on (the
    same words as one of the corpus's training documents, however spaced): it would not be
    validation."""

    def words(text: str) -> str:
        return " ".join(text.removeprefix("\ufeff").split())

    trained = {
        words(text): doc for doc, text in corpus.documents.items() if doc not in corpus.validation
    }
    for name, _, documents in sets:
        for path in files_in(documents):
            doc = trained.get(words(path.read_text(encoding="utf-8", errors="replace")))
            if doc is not None:
                raise CorpusError(
                    f"{path} of validation set {name!r} is the training document {doc}: "
                    "a document is either trained on or validated on"
                )
