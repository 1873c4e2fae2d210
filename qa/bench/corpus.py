"""Questions and corpora for the benchmark: distinct questions made from a corpus's own
words (never repeated, so no cache helps), and the 100,000-sentence scale corpus taken from
the docstrings and comments of the Python standard library and installed packages."""

from __future__ import annotations

import random
import re
import sysconfig
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEMPLATES = (
    "What did {a} say about {b}?",
    "When did {a} mention {b}?",
    "Who is {a} in relation to {b}?",
    "How many {b} did {a} have?",
    "Why did {a} talk about {b}?",
    "Where is the {b} of {a}?",
    "What happened to {a} and {b}?",
)


WORD = re.compile(r"\b[A-Za-z][a-z]{3,}\b")


def distinct_questions(texts: list[str], seed: int = 0) -> Iterator[str]:
    """Endless distinct questions from templates over the words of ``texts``."""
    words = sorted({w for t in texts for w in WORD.findall(t)})
    if len(words) < 2:
        words = ["alpha", "beta", "gamma", "delta"]
    rng = random.Random(seed)
    seen: set[str] = set()
    misses = 0
    while True:
        q = rng.choice(TEMPLATES).format(a=rng.choice(words), b=rng.choice(words))
        if q in seen:
            misses += 1
            if misses > 10_000:  # a tiny vocabulary: number the questions instead
                q = f"{q} ({len(seen)})"
            else:
                continue
        seen.add(q)
        yield q


def corpus_texts(seeds: Path) -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(Path(seeds).rglob("*.txt"))]


class QuestionFeed:
    """A thread-safe stream of distinct questions, shared by all clients."""

    def __init__(self, questions: Iterator[str]):
        self._it = questions
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            return next(self._it)


TRIPLE = re.compile(r'"""(.*?)"""', re.S)


COMMENT = re.compile(r"^[ \t]*#[ \t]?(.*)$", re.M)


def scale_corpus(folder: Path, sentences: int) -> dict[str, Any]:
    """Write at least ``sentences`` sentences of English prose taken from the docstrings
    and comments of this Python's standard library (44,000 sentences in 3.11), then of the
    installed packages, one document a module."""
    from ..split import split_sentences

    folder.mkdir(parents=True, exist_ok=True)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    purelib = Path(sysconfig.get_paths()["purelib"])
    sources = [(stdlib, p) for p in sorted(stdlib.rglob("*.py")) if "site-packages" not in p.parts]
    if purelib != stdlib:  # the installed packages' docs, when the standard library is short
        sources += [(purelib, p) for p in sorted(purelib.rglob("*.py"))]
    total = files = 0
    for root, path in sources:
        if total >= sentences:
            break
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        paragraphs = [" ".join(s.split()) for s in TRIPLE.findall(source)]
        paragraphs.append(" ".join(" ".join(COMMENT.findall(source)).split()))
        kept = []
        for paragraph in paragraphs:
            # prose only: sentences of 5 to 40 words, as a document of prose would have
            prose = [paragraph[a:b] for a, b in split_sentences(paragraph)]
            prose = [p for p in prose if 5 <= len(p.split()) <= 40 and p[-1:] in ".?!"]
            if prose:
                kept.append(" ".join(prose))
        if not kept:
            continue
        text = "\n\n".join(kept)
        n = len(split_sentences(text))
        name = path.relative_to(root).as_posix().replace("/", "_").removesuffix(".py")
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
        total += n
        files += 1
    return {
        "source": "docstrings and comments of the standard library and installed packages",
        "documents": files,
        "sentences": total,
    }
