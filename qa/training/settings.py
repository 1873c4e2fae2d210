"""What a run of ``qa train`` can vary, with the defaults that made the shipped reader (which
was also distilled from a teacher: ``teachers``, see docs/reader.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..config import DEFAULT_READER
from ..features import Limits
from ..runner import CORES


@dataclass(frozen=True)
class TrainSettings:
    corpus: Path = Path("train")
    out: Path = DEFAULT_READER
    seed: int = 14  # the shipped reader's (seed 13 scored -0.302 cross-fitted, 14 -0.244)
    # the seed of the rows' order, the negatives drawn and dropout (None: ``seed``'s), apart
    # from the new layer's initialisation (``seed``'s): readers to be averaged (``soup.py``)
    # share their initialisation and differ in this
    order_seed: int | None = None
    epochs: int = 3
    batch_size: int = 32
    lr: float = 2e-4
    negatives: int = 3  # wrong retrieved sentences per question and epoch
    # with N >= 2, one of them from other documents: each training question is also asked of
    # a pool of N training documents (its own and others, grouped by the seed), as the service
    # asks a folder of documents; 0: each question meets its own document only (as shipped)
    pool: int = 0
    erased: float = 0.0  # share of answerable questions also taught on their sentence, cut
    # share of answerable one-turn questions also taught a contrast question (one detail of
    # their sentence changed: ``contrast.py``) on their sentence, with no answer
    contrast: float = 0.0
    layers: int = 4  # of the transformer's six layers kept
    # of those, how many lowest are not trained (with the embeddings): their outputs are
    # computed once and each step runs only the layers above (0: all trained, as shipped)
    frozen: int = 0
    previous: int = Limits().previous  # tokens of the previous sentence read with a sentence
    previous_head: int = Limits().previous_head  # ... from its start, before those of its end
    retrieve: int = 10  # sentences retrieved for each validation question
    # folders of further validation sets to choose on (``sets.further_set``), beside
    # the development set and the corpus's independent set
    validation_sets: tuple[Path, ...] = ()
    # how many sentences to read, chosen on validation among counts the latency target allows:
    # each sentence read adds about 1.4 ms to every answer, and reading 3 already takes the
    # /api/ask p50 to about 1.2 to 1.35 of the 1.5 times the bare encode the issue allows
    candidates: tuple[int, ...] = (2, 3)
    slacks: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)  # ... and this
    # whether to try reading the next batch when the first leaves the decider unsure
    # (``further.py``): off by default, since it lengthens the /api/ask p50 on the bench's
    # questions (2026-11-30: +2.5 to +4.3 ms served, with 32% of them reading twice)
    further: bool = False
    # whether to fit the ranker (``qa/rank.py``) on the training split and read in its order:
    # off by default, since it raised validation recall@3 (0.893 -> 0.914) but, cross-fitted,
    # the decider did worse with it (-0.369 against -0.344; the development set -0.48)
    ranker: bool = False
    int8: bool = True
    bf16: bool = field(default_factory=lambda: cpu_has_bf16())  # the forward pass in bfloat16
    max_steps: int = 0  # stop after this many steps (0: every epoch); for tests
    limit_questions: int = 0  # use only this many questions of each split; for tests
    threads: int = CORES  # torch's threads to fit with
    freeze_embeddings: bool = True  # keep the word embeddings as pretrained (chosen on validation)
    teachers: tuple[Path, ...] = ()  # trained readers whose mean logits the reader also learns
    distill: float = 0.5  # with teachers: the distillation loss's weight against the labels'
    temperature: float = 2.0  # with teachers: the softening of their distributions
    # the weight of the shared normalisation over each question's rows (model.listwise_loss)
    # added to the loss (0: none, as every reader before the listwise ones was trained)
    listwise: float = 1.0
    # whether the training questions are repeated, band by band of how much they repeat
    # their document's nearest sentence, toward the overall share of unanswerable ones
    # (balance.py): off, as every reader before was trained
    balance_overlap: bool = False
    # under 1: the epochs after the first train only on this share of the questions, those
    # whose listwise loss was highest when last trained (1: every epoch reads every row)
    hard: float = 1.0

    @property
    def order(self) -> int:
        """The seed of everything but the new layer's initialisation."""
        return self.seed if self.order_seed is None else self.order_seed


def cpu_has_bf16() -> bool:
    """Whether the CPU computes in bfloat16 natively (elsewhere torch emulates it, slower)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def model_layers(path: str) -> int:
    """How many transformer layers the model at ``path`` has (its config.json), or a number
    that limits nothing when that cannot be read."""
    try:
        return int(json.loads((Path(path) / "config.json").read_text())["num_hidden_layers"])
    except (OSError, ValueError, KeyError, TypeError):
        return 1_000
