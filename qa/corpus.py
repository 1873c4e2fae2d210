"""The labelled corpus the reader is trained on (``train/``).

Layout::

    train/documents/<kind>/<name>.txt     the documents, one folder a kind of text (.md too)
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
from typing import Any

from .documents import corpus_files, is_markdown
from .errors import QAError
from .files import jsonl_files
from .split import split_sentences

LABELS = ("sentence", "sentence_start", "sentence_end", "answer_start", "answer_end")
VALIDATION_SHARE = 0.25  # of each kind's documents, chosen by a hash of their ids
SPLIT = "split.json"


class CorpusError(QAError, ValueError):
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

    def gold(self) -> tuple[int, tuple[int, int]]:
        """The answering sentence's number and the span's offsets inside that sentence."""
        s, a, b = self.sentence, self.answer_start, self.answer_end
        if s is None or a is None or b is None or self.sentence_start is None:
            raise CorpusError(f"{self.id}: an unanswerable question has no answer")
        return s, (a - self.sentence_start, b - self.sentence_start)


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


def _read_lines(path: Path) -> list[dict[str, Any]]:
    rows = []
    # lines end at "\n" only: a question may hold U+2028, which str.splitlines breaks at
    for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
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


def label_row(row: dict[str, Any], text: str) -> dict[str, Any]:
    """``row`` with its labels filled in from ``span`` and its first support string."""
    where = row.get("id", "?")
    if not row.get("answerable"):
        return {k: v for k, v in row.items() if k not in LABELS and k != "span"}
    span, support = row.get("span"), row.get("support") or []
    if not isinstance(span, str) or not span.strip():
        raise CorpusError(f"{where}: an answerable question needs a span")
    if not support:
        raise CorpusError(f"{where}: an answerable question needs a support string")
    sentences = split_sentences(text, is_markdown(str(row.get("doc", ""))))
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


def check_row(row: dict[str, Any], text: str, sentences: list[tuple[int, int]]) -> Example:
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
        raise CorpusError(
            f"{where}: lacks {', '.join(missing)} (run `python -m qa.corpus label` on its file)"
        )
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


def files_in(folder: Path) -> list[Path]:
    """The ``.txt`` and ``.md`` files under ``folder``, in the order the service reads a
    seeds folder in (``corpus_files``); none when there is no such folder."""
    return corpus_files(folder) if Path(folder).is_dir() else []


def document_files(root: Path) -> list[Path]:
    """The corpus's documents: its files under ``documents/`` (``files_in``)."""
    return files_in(Path(root) / "documents")


def question_files(root: Path) -> list[Path]:
    return jsonl_files(Path(root) / "questions")


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
    for path in document_files(root):
        name = path.relative_to(root / "documents").as_posix()
        _document(root, name, documents)
    kinds = {d: d.split("/")[0] for d in documents}
    split: dict[str, list[tuple[int, int]]] = {}
    examples, seen = [], set()
    for path in question_files(root):
        for row in _read_lines(path):
            doc: Any = row.get("doc")  # a JSON value, checked against the documents
            if doc not in documents:
                raise CorpusError(f"{path}: {row.get('id', '?')}: no document {doc!r}")
            if doc not in split:
                split[doc] = split_sentences(documents[doc], is_markdown(doc))
            example = check_row(row, documents[doc], split[doc])
            if example.id in seen:
                raise CorpusError(f"{path}: the id {example.id!r} is used twice")
            seen.add(example.id)
            examples.append(example)
    if not examples:
        raise CorpusError(f"{root} holds no labelled questions")
    return Corpus(root, documents, kinds, tuple(examples), _validation(root, kinds))


def _validation(root: Path, kinds: dict[str, str]) -> frozenset[str]:
    """The validation documents listed in ``split.json`` (written once, so that the split
    never moves), or, without one, those ``validation_documents`` chooses."""
    path = Path(root) / SPLIT
    if not path.exists():
        return validation_documents(kinds)
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))["validation"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CorpusError(f"{path} is not a split file ({exc})") from exc
    missing = [d for d in listed if d not in kinds]
    if missing:
        raise CorpusError(f"{path} names documents that do not exist: {', '.join(missing)}")
    return frozenset(listed)


def write_split(root: Path) -> Path:
    """Record the current validation documents in ``split.json``."""
    documents = {
        p.relative_to(Path(root) / "documents").as_posix(): "" for p in document_files(root)
    }
    chosen = validation_documents({d: d.split("/")[0] for d in documents})
    path = Path(root) / SPLIT
    path.write_text(json.dumps({"validation": sorted(chosen)}, indent=1) + "\n")
    return path


def stats(root: Path) -> dict[str, Any]:
    """The datasheet's figures: counts by kind and split, and the word overlap of each
    question with its sentence, next to the same for the test sets beside the corpus."""
    corpus = load_corpus(root)
    words = {d: len(text.split()) for d, text in corpus.documents.items()}
    kinds: dict[str, dict[str, int]] = {}
    for doc, kind in corpus.kinds.items():
        k = kinds.setdefault(kind, {"documents": 0, "validation": 0, "questions": 0})
        k["documents"] += 1
        k["validation"] += doc in corpus.validation
    for e in corpus.examples:
        kinds[corpus.kinds[e.doc]]["questions"] += 1
    train_pairs = [
        (e.question, corpus.documents[e.doc][e.sentence_start : e.sentence_end])
        for e in corpus.examples
        if e.answerable
    ]
    hist = {"train/ (answerable)": overlap_histogram(train_pairs)}
    tests = Path(root).resolve().parent / "tests" / "data" / "independent"
    for q in sorted(tests.glob("*.jsonl")):
        seeds = tests / q.stem if (tests / q.stem).is_dir() else tests.parents[2] / "seeds"
        hist[f"tests/data/independent/{q.name}"] = overlap_histogram(eval_pairs(q, seeds))
    n = len(corpus.examples)
    return {
        "documents": len(corpus.documents),
        "words": {
            "min": min(words.values()),
            "max": max(words.values()),
            "median": sorted(words.values())[len(words) // 2],
        },
        "questions": n,
        "unanswerable": round(sum(not e.answerable for e in corpus.examples) / n, 3),
        "followups": round(sum(e.followup for e in corpus.examples) / n, 3),
        "validation_documents": len(corpus.validation),
        "validation_questions": len(corpus.split("validation")),
        "kinds": kinds,
        "overlap_bins": ["0-0.2", "0.2-0.4", "0.4-0.6", "0.6-0.8", "0.8-1"],
        "overlap": hist,
    }


def label_file(path: Path, root: Path) -> list[str]:
    """Fill in the labels of every question in ``path`` (in place); the problems found."""
    rows = _read_lines(path)
    problems: list[str] = []
    cache: dict[str, str] = {}
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


def overlap(question: str, sentence: str) -> float:
    """The share of the question's content words (stems) that the sentence holds."""
    from .text import content_stems

    asked = set(content_stems(question))
    return len(asked & set(content_stems(sentence))) / len(asked) if asked else 0.0


def overlap_histogram(pairs: Iterable[tuple[str, str]], bins: int = 5) -> list[float]:
    """Shares of (question, sentence) pairs by word overlap, in ``bins`` equal bins."""
    counts = [0] * bins
    for q, s in pairs:
        counts[min(bins - 1, int(overlap(q, s) * bins))] += 1
    total = sum(counts) or 1
    return [round(c / total, 3) for c in counts]


def eval_pairs(questions: Path, seeds: Path) -> list[tuple[str, str]]:
    """(question, answering sentence) of each answerable question of a ``shared/eval``
    set: the sentence of its documents that holds its first support string."""
    sentences = []
    for path in corpus_files(seeds):
        text = path.read_text(encoding="utf-8")
        sentences += [text[s:e] for s, e in split_sentences(text, is_markdown(path.name))]
    pairs = []
    for row in _read_lines(Path(questions)):
        if row.get("answerable") and row.get("support"):
            key = row["support"][0].lower()
            hit = next((s for s in sentences if key in s.lower()), None)
            if hit is not None:
                pairs.append((row["turns"][-1], hit))
    return pairs


def main(argv: Iterable[str]) -> int:
    """``python -m qa.corpus label FILE...`` labels files; ``check [ROOT]`` checks all;
    ``stats [ROOT]`` prints the datasheet's figures; ``split [ROOT]`` writes split.json."""
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
    if args[:1] == ["split"]:
        print(write_split(Path(args[1] if len(args) > 1 else "train")))
        return 0
    if args[:1] == ["stats"]:
        print(json.dumps(stats(Path(args[1] if len(args) > 1 else "train")), indent=2))
        return 0
    print("usage: python -m qa.corpus label FILE... | check [ROOT] | stats [ROOT]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
