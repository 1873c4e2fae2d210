"""``qa train``: the reader, reproduced from the labelled corpus."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from .cli_options import corpus_options, library_errors
from .config import Config

# what only training uses: refused with --rechoose and --average, which train nothing
TRAINING_ONLY = tuple(
    "seed order_seed epochs layers frozen lr previous previous_head negatives pool erased "
    "contrast max_steps limit_questions threads freeze_embeddings float_model teachers "
    "distill temperature listwise hard balance_overlap".split()
)
# the options that are TrainSettings' fields of the same name, when given
SETTINGS = tuple(
    "seed order_seed epochs layers frozen hard lr previous previous_head negatives pool "
    "erased contrast threads freeze_embeddings distill temperature listwise balance_overlap".split()
)

BALANCE_HELP = (
    "Repeat training questions so that unanswerable ones are no likelier among those that "
    "repeat their sentence's words (docs/reader.md)."
)
# what --questions takes (the rest belongs to the reader)
QUESTION_OPTIONS = tuple(
    "questions corpus out seed epochs lr max_steps limit_questions threads model".split()
)


@click.command("train")
@click.option(
    "--corpus",
    type=click.Path(file_okay=False, exists=True),
    default="train",
    show_default=True,
    help="The labelled corpus: documents/, questions/ (see train/README.md).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to write the reader [default: QA_READER, the package's qa/models/reader], "
    "or with --questions the question encoder [QA_QUESTIONS, qa/models/questions].",
)
@click.option(
    "--seed", type=int, default=None, help="Random seed [14; the question encoder's: 13]."
)
@click.option(
    "--order-seed",
    type=int,
    default=None,
    help="Seed of the rows' order, the negatives and dropout, apart from the new layer's "
    "initialisation (--seed's) [--seed]: for readers to average with --average.",
)
@click.option("--epochs", type=click.IntRange(1, 50), default=None, help="Training epochs [3].")
@click.option("--layers", type=click.IntRange(1, 12), default=None, help="Transformer layers kept.")
@click.option(
    "--frozen",
    type=click.IntRange(0, 11),
    default=None,
    help="Of the layers kept, how many lowest are not trained (nor the embeddings): their "
    "outputs are computed once, so each step runs only the layers above [0].",
)
@click.option(
    "--hard",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="The epochs after the first train only on this share of the questions, those "
    "whose loss was highest when last trained (needs the listwise loss) [1: all].",
)
@click.option("--lr", type=float, default=None, help="Peak learning rate.")
@click.option(
    "--previous",
    type=click.IntRange(0, 64),
    default=None,
    help="Tokens of the end of the previous sentence read with each sentence [12].",
)
@click.option(
    "--previous-head",
    type=click.IntRange(0, 64),
    default=None,
    help="Tokens of the start of the previous sentence read before its end [0].",
)
@click.option(
    "--negatives",
    type=click.IntRange(0, 20),
    default=None,
    help="Wrong retrieved sentences per question (drawn once among the first 2 x N: "
    "every epoch reads the same).",
)
@click.option(
    "--pool",
    type=click.IntRange(0, 1000),
    default=None,
    help="Also ask each training question of a pool of this many training documents (2 or "
    "more) and draw one of its --negatives from the others there (0: its own document "
    "only) [0].",
)
@click.option(
    "--erased",
    type=click.FloatRange(0, 1),
    default=None,
    help="Share of answerable questions also taught, with no answer, on their sentence "
    "with the answer cut out.",
)
@click.option(
    "--contrast",
    type=click.FloatRange(0, 1),
    default=None,
    help="Share of answerable one-turn questions also taught a contrast question (a number, "
    "a unit of time or a name of their sentence changed) with no answer on it [0].",
)
@click.option(
    "--max-steps",
    type=click.IntRange(0),
    default=0,
    help="Stop after this many steps (a smoke run; 0: every epoch).",
)
@click.option(
    "--limit-questions",
    type=click.IntRange(0),
    default=0,
    help="Use only this many questions of each split (a smoke run; 0: all).",
)
@click.option(
    "--sets/--no-sets",
    default=True,
    show_default=True,
    help="Score the development and test sets at the end, for the model card.",
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=None,
    help="Threads torch fits with [default: one a core]; results depend on it.",
)
@click.option(
    "--freeze-embeddings/--train-embeddings",
    default=None,
    help="Keep the word embeddings as pretrained [default: freeze].",
)
@click.option(
    "--teacher",
    "teachers",
    multiple=True,
    type=click.Path(file_okay=False, exists=True),
    help="A trained reader (folder) to distil from; repeat it for an ensemble of teachers.",
)
@click.option(
    "--distill",
    type=click.FloatRange(0, 1),
    default=None,
    help="With --teacher: the weight of matching the teachers against the labels [0.5].",
)
@click.option(
    "--listwise",
    type=click.FloatRange(0, 10),
    default=None,
    help="Weight of a shared normalisation over each question's sentences added to the "
    "loss (spans learned on one scale across sentences; 0: none) [1.0].",
)
@click.option(
    "--temperature",
    type=click.FloatRange(0.1, 20),
    default=None,
    help="With --teacher: how much the teachers' distributions are softened [2.0].",
)
@click.option("--balance-overlap", is_flag=True, default=None, help=BALANCE_HELP)
@click.option("--float", "float_model", is_flag=True, help="Ship the float model, not int8.")
@click.option(
    "--further",
    is_flag=True,
    help="Also try reading the next batch of sentences when the first leaves the decider "
    "unsure (kept if it beats the first batch alone out of sample; costs latency).",
)
@click.option(
    "--ranker/--no-ranker",
    default=False,
    show_default=True,
    help="Fit a ranker on the training split to order the retrieved sentences before the "
    "reader reads the first of them (more right sentences read on validation, but a worse "
    "decision out of sample: off by default; --rechoose fits one again when the weights "
    "were trained with one).",
)
@click.option(
    "--validation-set",
    "validation_sets",
    multiple=True,
    type=click.Path(file_okay=False, exists=True),
    help="A further validation set to choose on (repeatable): a folder with validation.jsonl "
    "and validation/, or a labelled corpus's questions/ and documents/ (not trained on).",
)
@click.option(
    "--rechoose",
    is_flag=True,
    help="Do not train: keep the weights of the reader in --out and choose its settings "
    "again on today's validation sets (after validation data was added).",
)
@click.option(
    "--average",
    "averaged",
    multiple=True,
    type=click.Path(file_okay=False, exists=True),
    help="Do not train: average the weights of these readers (repeat, at least 2; trained "
    "alike on the same documents, same --seed) into --out and choose its settings.",
)
@click.option(
    "--questions",
    is_flag=True,
    help="Train the question encoder (retrieval's question side) instead of the reader "
    "[--out default: the package's qa/models/questions].",
)
@corpus_options
@library_errors
def train_cmd(
    config: Config,
    corpus: str,
    out: str | None,
    seed: int | None,
    order_seed: int | None,
    epochs: int | None,
    layers: int | None,
    frozen: int | None,
    hard: float | None,
    lr: float | None,
    previous: int | None,
    previous_head: int | None,
    negatives: int | None,
    pool: int | None,
    erased: float | None,
    contrast: float | None,
    max_steps: int,
    limit_questions: int,
    sets: bool,
    threads: int | None,
    freeze_embeddings: bool | None,
    teachers: tuple[str, ...],
    distill: float | None,
    temperature: float | None,
    listwise: float | None,
    balance_overlap: bool | None,
    float_model: bool,
    further: bool,
    ranker: bool,
    validation_sets: tuple[str, ...],
    rechoose: bool,
    averaged: tuple[str, ...],
    questions: bool,
) -> None:
    """Train the reader on the labelled corpus, choose its settings on the validation
    documents, export it to ONNX and write it with its model card; with --questions, train
    the question encoder instead.

    Reproducible: seeded, CPU only; the corpus's hashes and the library versions go into
    the model card."""
    context = click.get_current_context()
    flags = {p.name: p.opts[0] for p in context.command.params}

    def given_flags(names: tuple[str, ...]) -> list[str]:
        return [
            flags[name]
            for name in names
            if context.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
        ]

    if questions:
        if others := given_flags(tuple(n for n in flags if n not in QUESTION_OPTIONS)):
            raise click.UsageError(
                f"--questions trains the question encoder: {', '.join(others)} apply to the reader"
            )
        return _train_questions(
            config, corpus, out, seed, epochs, lr, max_steps, limit_questions, threads
        )
    if rechoose or averaged:
        what = "--rechoose keeps the reader's" if rechoose else "--average averages readers'"
        if trains := given_flags(TRAINING_ONLY):
            raise click.UsageError(f"{what} weights: {', '.join(trains)} would need training")
        if rechoose and averaged:
            raise click.UsageError("--average chooses the settings itself: drop --rechoose")
        if len(averaged) == 1:
            raise click.BadParameter("give at least two readers", param_hint="'--average'")
    if pool == 1:
        raise click.BadParameter(
            "a pool of 1 is a document alone: give 0 or 2 or more", param_hint="'--pool'"
        )
    from .embed import load_embedder, resolve_model
    from .training.batching import refusal
    from .training.choosing import rechoose_reader
    from .training.run import train_reader
    from .training.settings import TrainSettings, model_layers

    if frozen:
        if freeze_embeddings is False:
            raise click.BadParameter(
                "it keeps the embeddings as pretrained: it cannot go with --train-embeddings",
                param_hint="'--frozen'",
            )
        kept = min(layers or TrainSettings().layers, model_layers(resolve_model(config.model)))
        if frozen >= kept:
            raise click.BadParameter(
                f"at least the top layer must be trained: give fewer than the {kept} layers kept",
                param_hint="'--frozen'",
            )

    given = {k: v for k, v in context.params.items() if k in SETTINGS and v is not None}
    settings = TrainSettings(
        corpus=Path(corpus),
        out=Path(out) if out else config.reader,
        max_steps=max_steps,
        limit_questions=limit_questions,
        int8=not float_model,
        further=further,
        ranker=ranker,
        teachers=tuple(Path(t) for t in teachers),
        validation_sets=tuple(Path(v) for v in validation_sets),
        **given,
    )
    if refused := refusal(settings):
        raise click.BadParameter(refused[0], param_hint=f"'{refused[1]}'")
    default = (
        "qa train --rechoose" if rechoose else "qa train --average" if averaged else "qa train"
    )
    command = "qa " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else default
    embedder = load_embedder(config)
    log = lambda m: click.echo(m, err=True)  # noqa: E731
    if rechoose:
        card = rechoose_reader(settings, embedder, log, command, config, sets)
    elif averaged:
        from .training.soup import average_readers

        folders = [Path(f) for f in averaged]
        card = average_readers(folders, settings, embedder, log, command, config, sets)
    else:
        card = train_reader(
            settings,
            embedder,
            resolve_model(config.model),
            log=log,
            command=command,
            config=config,
            score=sets,
        )
    click.echo(
        f"reader {card['hash']} written to {settings.out}: reads {card['candidates']} "
        f"sentences, threshold {card['threshold']}; validation "
        f"{json.dumps(card['figures']['validation']['chosen'])}"
    )


def _train_questions(
    config: Config,
    corpus: str,
    out: str | None,
    seed: int | None,
    epochs: int | None,
    lr: float | None,
    max_steps: int,
    limit_questions: int,
    threads: int | None,
) -> None:
    """``qa train --questions``: the question encoder (qa/training/questions.py)."""
    from dataclasses import replace

    from .embed import load_embedder, resolve_model
    from .questions import question_folder
    from .training.questions import QuestionSettings, check_model, train_questions

    check_model(config.model)  # before loading it
    given: dict[str, Any] = {"seed": seed, "epochs": epochs, "lr": lr, "threads": threads}
    settings = QuestionSettings(
        corpus=Path(corpus),
        max_steps=max_steps,
        limit_questions=limit_questions,
        **{k: v for k, v in given.items() if v is not None},
    )
    # --out, or the folder QA_QUESTIONS names (as QA_READER is the reader's), or the package's
    settings = replace(settings, out=Path(out) if out else question_folder(config) or settings.out)
    default = "qa train --questions"
    command = "qa " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else default
    # documents are embedded by the embedding model itself, whatever QA_QUESTIONS says
    embedder = load_embedder(replace(config, questions="off"))
    card = train_questions(
        settings,
        embedder,
        config.model,
        resolve_model(config.model),
        log=lambda m: click.echo(m, err=True),
        command=command,
    )
    click.echo(
        f"question encoder written to {settings.out}: validation "
        f"{json.dumps(card['figures']['validation']['exported'])}"
    )
