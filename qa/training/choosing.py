"""Choosing a reader's settings on validation, and writing them into its model card.

The choice (how many sentences to read, the slack, the no-answer threshold, the confidence
curves) is made on the corpus's validation documents and on the validation sets asked
through the service: the development set beside the project, and the corpus's independent
validation set. ``qa train`` makes it after training; ``qa train --rechoose`` makes it
again for a trained reader, its weights kept, when validation data is added.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..cards import CARD, card_hash
from ..config import Config, table_reading
from ..corpus import Corpus, Example, load_corpus
from ..embed import Embedder
from ..evaluate import load_items
from ..features import Limits
from ..index import Index
from ..lexical import LexicalIndex
from ..onnxgraph import drop_nan_guards, unsigned_weights
from ..rank import Ranker
from ..read import (
    FILES,
    BatchReader,
    OnnxReader,
    ReaderError,
    RememberingReader,
    Settings,
    read_card,
    verify,
)
from ..runner import UNFUSED
from ..versions import package_versions
from .card import write_card
from .choice import Choice, choose
from .data import Asked, ask_all, ask_service, document_indexes
from .fit import TARGETS
from .folders import replace_folder, work_folder
from .provenance import check_sources, corpus_hashes, set_hashes
from .ranking import ask_followups_again, ask_ranked
from .report import available_sets, score_sets, service
from .sets import ValidationSet, check_apart, validation_sets
from .settings import TrainSettings


def score_into_card(
    out: Path,
    sets: Sequence[ValidationSet],
    settings: TrainSettings,
    config: Config,
    embedder: Embedder,
    log: Callable[[str], None],
    score: bool,
) -> dict[str, Any]:
    """With ``score``, the validation ``sets`` and the test sets answered through the
    service by the reader in ``out``, into its card (for the record: nothing is chosen from
    the test sets); the card, with the reader's name."""
    if score:
        tests = available_sets(Path(settings.corpus).resolve().parent)
        scored = [*sets, *(s for s in tests if s not in sets)]
        log(f"scoring {len(scored)} question sets through the service (for the record) ...")
        card = json.loads((out / CARD).read_text())
        card["figures"].update(score_sets(config, embedder, OnnxReader(out), scored, log))
        write_card(out, card)
    final: dict[str, Any] = json.loads((out / CARD).read_text())
    final["hash"] = card_hash(out)
    return final


def rechoose_reader(
    settings: TrainSettings,
    embedder: Embedder,
    log: Callable[[str], None] = print,
    command: str = "qa train --rechoose",
    config: Config | None = None,
    score: bool = False,
) -> dict[str, Any]:
    """Choose again, on today's validation sets, the settings of the reader in
    ``settings.out`` (how many sentences to read, the slack, the threshold, the confidence
    curves), keeping its weights: for when validation data is added. The card keeps how
    the weights were trained and records the new choice. A model exported before the NaN
    guards were dropped loses them here (``onnxgraph``): the same weights and outputs in
    another file, whose checksum the card records."""
    config = config or Config()
    out = Path(settings.out)
    # its settings are chosen again: a decider this version of qa does not read is no matter
    old, name = read_card(out, settings=False)
    verify(out, old)
    if "training" not in old:
        raise ReaderError(f"{out / CARD} records no training: train a reader with `qa train`")
    corpus = load_corpus(settings.corpus)
    trained_on = old["data"]
    if (
        corpus_hashes(corpus.root)["documents"] != trained_on["sha256"]["documents"]
        or sorted(corpus.validation) != trained_on["validation_documents"]
    ):
        raise ReaderError(
            f"the documents of {settings.corpus} or their split changed since reader {name} "
            "was trained, so its validation documents may have been trained on: retrain it "
            "with `qa train`"
        )
    sets = validation_sets(settings.corpus, settings.validation_sets, log)
    check_apart(corpus, sets)
    check_sources(corpus, [], config, log)  # the question encoder the choice asks with
    val_ex = corpus.split("validation")
    # its table rows read as its card says it was trained to, unless QA_TABLE_ROWS says else
    config = replace(config, table_rows=table_reading(config.table_rows, old))
    log(f"re-choosing the settings of reader {name} on {len(val_ex)} validation questions")
    if old["training"].get("ranker") and not settings.ranker:
        # its negatives were drawn in a ranker's order: it reads in one's order again
        log("its weights were trained with a ranker: the ranker is fitted again")
        settings = replace(settings, ranker=True)
    indexes = document_indexes(corpus, embedder)
    named = config.table_rows == "named"
    ranker, val_asked = ranked_validation(corpus, indexes, embedder, val_ex, settings, log, named)
    with work_folder(out, "choosing") as work:
        for f in FILES:
            shutil.copy(out / f, work / f)
        guards = drop_nan_guards(work / "model.onnx")  # as `qa train` exports it today
        if guards:
            log(f"dropped {guards} NaN guards from model.onnx (the same outputs, sooner)")
        unsigned = unsigned_weights(work / "model.onnx")
        if unsigned:
            log(f"stored {unsigned} int8 weight matrices as uint8 (read alike on every CPU)")
        draft = draft_reader(work, Limits.from_dict(old["limits"]), ranker)

        def reask(reader: BatchReader) -> list[Asked]:
            k = settings.retrieve
            return ask_followups_again(val_asked, indexes, embedder, reader, k, ranker, named)

        choice = choose_on_validation(
            draft, val_asked, sets, settings, config, embedder, log, reask
        )
        figures = {k: v for k, v in old["figures"].items() if k in ("epochs",)}
        figures["validation"] = validation_figures(choice, config)
        card = {
            # the choice's own decider and further reading, if any
            **{k: v for k, v in old.items() if k not in ("decider", "further", "ranker")},
            **card_settings(choice, ranker),
            "table_rows": config.table_rows,
            "figures": figures,
            "rechosen": {
                "from": name,
                "command": command,
                "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                "nan_guards_dropped": guards,
                "weights_stored_unsigned": unsigned,
                # what embedded the questions whose retrieval the choice was made on
                "question_encoder": getattr(embedder, "questions_name", None),
                "candidates": list(settings.candidates),
                "slacks": list(settings.slacks),
                "data": validation_data(corpus, val_ex, settings.corpus, sets),
                "versions": package_versions({n: n for n in ("qa", "onnxruntime", "tokenizers")}),
            },
        }
        write_card(work, card)
        replace_folder(work, out)
    log(f"wrote the re-chosen reader to {out}")
    return score_into_card(out, sets, settings, config, embedder, log, score)


def ranked_validation(
    corpus: Corpus,
    indexes: dict[str, tuple[Index, LexicalIndex]],
    embedder: Embedder,
    val_ex: list[Example],
    settings: TrainSettings,
    log: Callable[[str], None],
    named_rows: bool = False,
) -> tuple[Ranker | None, list[Asked]]:
    """With ``settings.ranker``, the ranker fitted on the training split (``ranking.py``)
    and the validation questions asked with it; without, no ranker and the fused order.
    ``named_rows``: Markdown table rows read as named cells."""
    if not settings.ranker:
        return None, ask_all(val_ex, indexes, embedder, settings.retrieve, named_rows)
    train_ex = [e for e in corpus.split("train") if e.answerable]  # all the fit reads
    ks = (0, settings.retrieve)  # the training questions only fit it
    ranker, _, val_asked = ask_ranked(train_ex, val_ex, indexes, embedder, ks, log, named_rows)
    return ranker, val_asked


def validation_figures(choice: Choice, config: Config) -> dict[str, Any]:
    """The choice's figures on each validation set, and what it maximised, for the card;
    and how the sets asked through the service read Markdown table rows (``table_rows``:
    the card's top-level ``table_rows`` says the same since it was added, and is what the
    service reads; this one stays for the cards written before)."""
    return {
        "table_rows": config.table_rows,
        "objective": {
            "maximised": "minus the shortfall from the targets, in rate points, mean of the sets",
            "targets": TARGETS,
            "score": round(choice.score, 4),
        },
        "chosen": choice.chosen,
        "tried": choice.tried,
        "slacks": choice.slacks,
        # out of sample: each fold decided by what was fitted on the others
        "crossfitted": choice.crossfitted,
        # the follow-ups (of the sets and the validation documents) whose earlier answer
        # changed each time they were asked again with the choice
        "followups_asked_again": list(choice.reasked),
    }


def validation_data(
    corpus: Corpus,
    val_ex: list[Example],
    root: Path,
    sets: Sequence[ValidationSet],
) -> dict[str, Any]:
    """What the choice was made on, for the card (paths relative to the project)."""
    project = os.path.abspath(Path(root).parent)
    return {
        "validation_documents": sorted(corpus.validation),
        "validation_questions": len(val_ex),
        "validation_sets": [os.path.relpath(os.path.abspath(q), project) for _, q, _ in sets],
        "sha256": corpus_hashes(corpus.root),
        "validation_sets_sha256": set_hashes(sets),
    }


def choose_on_validation(
    reader: OnnxReader,
    validation: list[Asked],
    sets: Sequence[ValidationSet],
    settings: TrainSettings,
    config: Config,
    embedder: Embedder,
    log: Callable[[str], None],
    reask: Callable[[BatchReader], list[Asked]] | None = None,
) -> Choice:
    """The choice on the corpus's validation documents and on the validation ``sets``
    asked through the service (each set weighs the same). ``reask(reader)``: the
    validation documents' questions with their follow-ups asked again, their earlier
    turns answered by ``reader`` (``ranking.ask_followups_again``).

    A follow-up's earlier turns are answered by the service, and the service answers with
    the chosen settings, not the draft's (threshold 0, no decider) nor a label: once a
    choice is made, the sets (and with ``reask`` the validation documents' follow-ups) are
    asked again with it, and while that changes an earlier answer the choice is made again,
    at most ``REASKS`` times (a change left after the last is logged and recorded). The
    model's logits are remembered across the rounds."""
    asked: dict[str, Sequence[Asked]] = {"validation": validation}
    items = {name: load_items(questions) for name, questions, _ in sets}
    remembering = RememberingReader(reader)  # the rounds read mostly the same batches
    changed: list[int] = []
    with ExitStack() as stack:
        engines = {
            name: stack.enter_context(service(config, embedder, remembering, seeds))
            for name, _, seeds in sets
        }

        def ask_sets() -> dict[str, Sequence[Asked]]:
            return {n: ask_service(e, items[n], settings.retrieve) for n, e in engines.items()}

        again = ask_sets()
        sizes = {**asked, **again}
        log(f"choosing on {', '.join(f'{k} ({len(v)} questions)' for k, v in sizes.items())}")
        if config.table_rows != "header":
            way = config.table_rows
            log(f"the sets' Markdown table rows read as QA_TABLE_ROWS={way} reads them")
        while True:
            asked.update(again)
            choice = choose(
                remembering, asked, settings.candidates, settings.slacks, log, settings.further
            )
            if not engines and reask is None:
                break
            chosen = as_chosen(remembering, reader.card, choice)
            for engine in engines.values():
                engine.reader = chosen
            again = ask_sets()
            if reask is not None:
                again["validation"] = reask(chosen)
            changed.append(
                sum(
                    (a.last_question, a.last_answer) != (b.last_question, b.last_answer)
                    for name in again
                    for a, b in zip(asked[name], again[name], strict=True)
                )
            )
            if not changed[-1]:
                log("asked with the chosen settings, every follow-up is read as before")
                break
            if len(changed) > REASKS:
                log(
                    f"warning: asked with the chosen settings, {changed[-1]} follow-ups are "
                    "still read otherwise: the choice stands on their reading of the one before"
                )
                break
            log(
                f"asked with the chosen settings, {changed[-1]} follow-ups are read otherwise "
                "(an earlier answer changed, or one that does not refer back is read alone): "
                "choosing again on them"
            )
    return replace(choice, reasked=tuple(changed), validation=tuple(asked["validation"]))


# how many times at most the choice is made again on the sets asked with the one before
REASKS = 2


def as_chosen(reader: BatchReader, card: dict[str, Any], choice: Choice) -> BatchReader:
    """A copy of the draft ``reader`` (sharing its model) that answers with the ``choice``,
    as the service will once the card is written: the draft's ``card`` (its limits and
    ranker) with the choice's settings (``card_settings``, as ``qa train`` writes them)."""
    chosen = copy.copy(reader)
    chosen.settings = Settings.from_card({**card, **card_settings(choice)})
    return chosen


def card_settings(choice: Choice, ranker: Ranker | None = None) -> dict[str, Any]:
    """What the service reads from the card to answer as validated, and the ONNX Runtime
    graph optimisations left out when the choice was read (they move the logits a little)."""
    return {
        **({"ranker": ranker.to_dict()} if ranker else {}),
        "candidates": choice.candidates,
        "slack": choice.slack,
        "threshold": choice.threshold,
        "calibration": choice.calibration,
        **({"decider": choice.decider.to_dict()} if choice.decider else {}),
        **({"further": choice.further} if choice.further else {}),
        "runtime": {"disabled_optimizers": list(UNFUSED)},
    }


def draft_reader(work: Path, limits: Limits, ranker: Ranker | None = None) -> OnnxReader:
    """The model in ``work`` as the service will load it, before its settings are chosen
    (with the ranker the choice is made on)."""
    draft = {
        **({"ranker": ranker.to_dict()} if ranker else {}),
        "limits": limits.to_dict(),
        "candidates": 1,
        "threshold": 0.0,
        "calibration": {"answer": [1.0, 0.0], "abstain": [1.0, 0.0]},
    }
    write_card(work, draft)
    return OnnxReader(work)
