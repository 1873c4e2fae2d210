"""The labelled corpus the reader is trained on (``train/``).

Layout::

    train/documents/<kind>/<name>.txt     the documents, one folder a kind of text
    train/questions/<kind>/<name>.jsonl   questions about the document of the same name
    train/split.json                      which documents are for validation (by document)

A question line is the ``shared/eval`` format (``id``, ``turns``, ``answerable``,
``support``, ``answer``) plus ``doc`` (the document's path under ``documents/``) and, for an
answerable question, ``span`` (the answer as it stands in the document) and its labels:
``sentence`` (the answering sentence's number, as ``split_sentences`` splits the document),
``sentence_start``/``sentence_end`` and ``answer_start``/``answer_end`` (character offsets in
the document). A follow-up may carry ``history_answer``: the answer to its earlier turn.

Writers give ``span`` and ``support`` only; ``label`` finds the one sentence that holds the
first support string and the span inside it, and fills in the offsets. ``check`` verifies
every label: it is what ``qa train`` and the tests run.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .split import split_sentences

LABELS = ("sentence", "sentence_start", "sentence_end", "answer_start", "answer_end")
VALIDATION_SHARE = 0.25  # of each kind's documents, chosen by a hash of their ids


class CorpusError(ValueError):
    """A document or a question of the corpus is not usable; the message names it."""


@dataclass(frozen=True)
class Example:
    """One labelled question about one document."""

    id: str
    doc: str
    turns: tuple[str, ...]
    answerable: bool
    support: tuple[str, ...]
    answer: tuple[str, ...]
    span: str | None = None
    sentence: int | None = None
    sentence_start: int | None = None
    sentence_end: int | None = None
    answer_start: int | None = None
    answer_end: int | None = None
    history_answer: str | None = None

    @property
    def question(self) -> str:
        return self.turns[-1]

    @property
    def followup(self) -> bool:
        return len(self.turns) > 1


@dataclass(frozen=True)
class Corpus:
    root: Path
    documents: dict[str, str]  # id -> text
    kinds: dict[str, str]  # id -> kind (its folder)
    examples: tuple[Example, ...]
    validation: frozenset[str]  # document ids

    def split(self, part: str) -> list[Example]:
        """The examples of ``part`` ("train" or "validation"), split by document."""
        want = part == "validation"
        return [e for e in self.examples if (e.doc in self.validation) == want]


def _read_lines(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{path}:{n}: not JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise CorpusError(f"{path}:{n}: not a JSON object")
        rows.append(row)
    return rows


def label_row(row: dict, text: str) -> dict:
    """``row`` with its labels filled in from ``span`` and its first support string."""
    where = row.get("id", "?")
    if not row.get("answerable"):
        return {k: v for k, v in row.items() if k not in LABELS and k != "span"}
    span, support = row.get("span"), row.get("support") or []
    if not isinstance(span, str) or not span.strip():
        raise CorpusError(f"{where}: an answerable question needs a span")
    if not support:
        raise CorpusError(f"{where}: an answerable question needs a support string")
    sentences = split_sentences(text)
    key = support[0].lower()
    holding = [i for i, (s, e) in enumerate(sentences) if key in text[s:e].lower()]
    if len(holding) != 1:
        raise CorpusError(
            f"{where}: support {support[0]!r} is in {len(holding)} sentences, it must be in one"
        )
    i = holding[0]
    s, e = sentences[i]
    at = text.find(span, s, e)
    if at < 0:
        raise CorpusError(f"{where}: span {span!r} is not in its sentence {text[s:e]!r}")
    out = {k: v for k, v in row.items() if k not in LABELS}
    out.update(
        sentence=i, sentence_start=s, sentence_end=e, answer_start=at, answer_end=at + len(span)
    )
    return out


def check_row(row: dict, text: str, sentences: list[tuple[int, int]]) -> Example:
    """The example of a labelled ``row``; CorpusError naming it when a label is wrong."""
    where = row.get("id", "?")
    try:
        turns = tuple(row["turns"])
        answerable = row["answerable"]
        support = tuple(row.get("support") or ())
        answer = tuple(row.get("answer") or ())
    except (KeyError, TypeError) as exc:
        raise CorpusError(f"{where}: lacks {exc}") from exc
    if not turns or not all(isinstance(t, str) and t.strip() for t in turns):
        raise CorpusError(f"{where}: turns must be non-empty questions")
    if not isinstance(answerable, bool):
        raise CorpusError(f"{where}: answerable must be true or false")
    if not answerable:
        return Example(str(where), row["doc"], turns, False, support, answer)
    missing = [k for k in ("span", *LABELS) if row.get(k) is None]
    if missing:
        raise CorpusError(f"{where}: lacks {', '.join(missing)} (run `qa label` on its file)")
    i, ss, se, a, b = (row[k] for k in LABELS)
    if not (0 <= i < len(sentences)) or tuple(sentences[i]) != (ss, se):
        raise CorpusError(f"{where}: sentence {i} is not at {ss}-{se} in {row['doc']}")
    if text[a:b] != row["span"]:
        raise CorpusError(f"{where}: the span {row['span']!r} is not at {a}-{b} in {row['doc']}")
    if not (ss <= a < b <= se):
        raise CorpusError(f"{where}: the span {a}-{b} lies outside its sentence {ss}-{se}")
    if not answer or not any(x.lower() in row["span"].lower() for x in answer):
        raise CorpusError(f"{where}: no acceptable answer is contained in the span")
    return Example(
        str(where),
        row["doc"],
        turns,
        True,
        support,
        answer,
        row["span"],
        i,
        ss,
        se,
        a,
        b,
        row.get("history_answer"),
    )


def question_files(root: Path) -> list[Path]:
    return sorted((Path(root) / "questions").rglob("*.jsonl"))


def _document(root: Path, doc: str, cache: dict[str, str]) -> str:
    if doc not in cache:
        path = Path(root) / "documents" / doc
        try:
            cache[doc] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CorpusError(f"{path}: cannot be read as UTF-8 ({exc})") from exc
    return cache[doc]


def validation_documents(kinds: dict[str, str]) -> frozenset[str]:
    """A quarter of each kind's documents (at least one), chosen by a hash of their ids:
    the same documents whatever is added to other kinds."""
    chosen = set()
    for kind in sorted(set(kinds.values())):
        ids = sorted(
            (d for d, k in kinds.items() if k == kind),
            key=lambda d: hashlib.sha256(d.encode()).hexdigest(),
        )
        chosen.update(ids[: max(1, round(len(ids) * VALIDATION_SHARE))])
    return frozenset(chosen)


def load_corpus(root: Path) -> Corpus:
    """Read and check the whole corpus in ``root``; CorpusError names the first bad item."""
    root = Path(root)
    documents: dict[str, str] = {}
    for path in sorted((root / "documents").rglob("*.txt")):
        doc = path.relative_to(root / "documents").as_posix()
        _document(root, doc, documents)
    kinds = {d: d.split("/")[0] for d in documents}
    split: dict[str, list[tuple[int, int]]] = {}
    examples, seen = [], set()
    for path in question_files(root):
        for row in _read_lines(path):
            doc = row.get("doc")
            if doc not in documents:
                raise CorpusError(f"{path}: {row.get('id', '?')}: no document {doc!r}")
            if doc not in split:
                split[doc] = split_sentences(documents[doc])
            example = check_row(row, documents[doc], split[doc])
            if example.id in seen:
                raise CorpusError(f"{path}: the id {example.id!r} is used twice")
            seen.add(example.id)
            examples.append(example)
    if not examples:
        raise CorpusError(f"{root} holds no labelled questions")
    return Corpus(root, documents, kinds, tuple(examples), validation_documents(kinds))


def label_file(path: Path, root: Path) -> list[str]:
    """Fill in the labels of every question in ``path`` (in place); the problems found."""
    rows, problems, cache = _read_lines(path), [], {}
    out = []
    for row in rows:
        try:
            text = _document(root, row.get("doc", ""), cache)
            out.append(label_row(row, text))
        except CorpusError as exc:
            problems.append(f"{path.name}: {exc}")
            out.append(row)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out), "utf-8")
    return problems


def main(argv: Iterable[str]) -> int:
    """``python -m qa.corpus label FILE...`` labels files; ``check [ROOT]`` checks all."""
    args = list(argv)
    if args[:1] == ["label"] and len(args) > 1:
        problems = []
        for name in args[1:]:
            path = Path(name).resolve()
            root = next(p for p in path.parents if (p / "documents").is_dir())
            problems += label_file(path, root)
        print("\n".join(problems) or "all labelled")
        return 1 if problems else 0
    if args[:1] == ["check"]:
        corpus = load_corpus(Path(args[1] if len(args) > 1 else "train"))
        print(f"{len(corpus.documents)} documents, {len(corpus.examples)} questions: ok")
        return 0
    print("usage: python -m qa.corpus label FILE... | check [ROOT]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
