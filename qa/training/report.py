"""Scoring a trained reader through the service on question sets, for the record.

Each set is answered as users meet the service: an index built from the set's documents,
the engine answering with the reader, scored with the metrics of ``shared/eval``. Nothing
here chooses anything: the figures go into the model card and the README.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..build import build_index
from ..config import Config
from ..embed import Embedder
from ..engine import Engine
from ..evaluate import Report, evaluate, library_asker, load_items, reliability
from ..read import Reader

# (name, question set, documents), relative to the project's folder; the development set
# is validation data (it may guide choices, never training), the others are test sets
DEFAULT_SETS = (
    ("dev", "../shared/eval/dev.jsonl", "seeds"),
    ("article", "tests/data/independent/article.jsonl", "seeds"),
    ("flood", "tests/data/independent/flood.jsonl", "tests/data/independent/flood"),
    ("hospital", "tests/data/independent/hospital.jsonl", "tests/data/independent/hospital"),
    ("football", "tests/data/independent/football.jsonl", "tests/data/independent/football"),
    ("heldout", "tests/data/independent/heldout.jsonl", "tests/data/independent/heldout"),
    ("heldout2", "tests/data/independent/heldout2.jsonl", "tests/data/independent/heldout2"),
    ("markdown", "tests/data/independent/markdown.jsonl", "tests/data/independent/markdown"),
    ("wrapped", "tests/data/independent/wrapped.jsonl", "tests/data/independent/wrapped"),
    ("devdocs", "tests/data/independent/devdocs.jsonl", "tests/data/independent/devdocs"),
)
TEST_SETS = frozenset(name for name, _, _ in DEFAULT_SETS) - {"dev"}


def available_sets(root: Path) -> list[tuple[str, Path, Path]]:
    """The default sets that exist under ``root``."""
    return [
        (name, root / q, root / s)
        for name, q, s in DEFAULT_SETS
        if (root / q).is_file() and (root / s).is_dir()
    ]


@contextmanager
def service(config: Config, embedder: Embedder, reader: Reader, seeds: Path) -> Iterator[Engine]:
    """The service over the documents in ``seeds``, with an index in a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = replace(config, seeds_dir=Path(seeds), index_dir=Path(tmp) / "index")
        build_index(settings, embedder)
        yield Engine(settings, notify=lambda m: None, embedder=embedder, reader=reader)


def score_set(
    config: Config, embedder: Embedder, reader: Reader, questions: Path, seeds: Path
) -> Report:
    with service(config, embedder, reader, seeds) as engine:
        return evaluate(library_asker(engine), load_items(questions))


def score_sets(
    config: Config,
    embedder: Embedder,
    reader: Reader,
    sets: Sequence[tuple[str, Path, Path]],
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Each set's metrics, and the reliability of ``confidence`` over the test sets."""
    out: dict[str, Any] = {"sets": {}}
    answered: list[tuple[float, bool]] = []
    withheld: list[tuple[float, bool]] = []
    for name, questions, seeds in sets:
        report = score_set(config, embedder, reader, questions, seeds)
        out["sets"][name] = {"metrics": report.metrics, "counts": report.counts}
        log(f"  {name}: {report.metrics}")
        if name in TEST_SETS:
            given, declined = report.confidences()
            answered += given
            withheld += declined
    out["reliability"] = reliability(answered)
    out["reliability_abstentions"] = reliability(withheld)
    return out
