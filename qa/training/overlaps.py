"""The table of docs/reader.md's "Questions that repeat their sentence's words": the share
of the answerable and of the unanswerable questions in each band of their overlap with
the nearest sentence (``balance.band_of``), for the corpus's splits and for question sets
asked of a folder of documents.

    python -m qa.training.overlaps [ROOT] [--set QUESTIONS.jsonl DOCUMENTS]...
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..corpus import Example, load_corpus
from ..documents import corpus_files, is_markdown
from .balance import BANDS, band, band_of, nearest_overlap

KINDS = ("answerable", "unanswerable")


def shares(counts: dict[str, list[int]]) -> dict[str, list[float]]:
    return {k: [round(c / (sum(v) or 1), 3) for c in v] for k, v in counts.items()}


def bands_by_kind(
    examples: Sequence[Example], documents: Mapping[str, str]
) -> dict[str, list[float]]:
    """For the corpus's ``examples``: each against its own document."""
    counts = {k: [0] * BANDS for k in KINDS}
    for e in examples:
        counts[KINDS[not e.answerable]][band_of(e, documents)] += 1
    return shares(counts)


def set_bands(questions: Path, folder: Path) -> dict[str, list[float]]:
    """For a question set (``shared/eval``'s format) asked of the documents in ``folder``:
    each question's last turn against the nearest sentence of any of them."""
    from ..evaluate import load_items

    texts = [(p.read_text(encoding="utf-8"), is_markdown(p.name)) for p in corpus_files(folder)]
    counts = {k: [0] * BANDS for k in KINDS}
    for item in load_items(questions):
        share = max((nearest_overlap(item.turns[-1], *t) for t in texts), default=0.0)
        counts[KINDS[not item.answerable]][band(share)] += 1
    return shares(counts)


def main(argv: Iterable[str]) -> int:
    args = list(argv)
    sets = []
    while "--set" in args:
        i = args.index("--set")
        sets.append((Path(args[i + 1]), Path(args[i + 2])))
        del args[i : i + 3]
    corpus = load_corpus(Path(args[0] if args else "train"))
    for part in ("train", "validation"):
        print(part, json.dumps(bands_by_kind(corpus.split(part), corpus.documents)))
    for questions, folder in sets:
        print(questions, json.dumps(set_bands(questions, folder)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
