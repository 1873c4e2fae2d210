"""The reader as a PyTorch model, and the loop that fits it (training only: serving runs the
ONNX export in ``qa/read.py``).

A cross-encoder: the bundled all-MiniLM-L6-v2 transformer (optionally its first layers only)
with one linear layer that gives each token a start and an end logit. The loss is SQuAD
2.0's: cross-entropy of the start and of the end position over [CLS] and the sentence's
tokens, [CLS] being the target of a sentence that does not answer. With teachers (trained
readers), part of the loss is distillation: the student also matches the teachers' mean
start and end distributions, softened by a temperature (Hinton et al., 2015). With
``listwise``, part of it is a shared normalisation over each question's rows (Clark and
Gardner, 2018): one softmax over the positions of all the sentences read for a question.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np
import torch

from ..features import NEG, Batch, Featurizer, Reading, concatenate, read_spans, span_tokens
from .batching import batches, group_batches, hardest
from .data import Asked, Row
from .frozen import freeze, lower_outputs, replaying, stacked


class SpanModel(torch.nn.Module):
    """The transformer and a linear layer giving each token a start and an end logit."""

    def __init__(self, encoder: Any) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = torch.nn.Linear(encoder.config.hidden_size, 2)
        torch.nn.init.normal_(self.head.weight, std=0.02)
        torch.nn.init.zeros_(self.head.bias)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        logits = self.head(hidden)
        return logits[..., 0], logits[..., 1]


def load_model(path: str, layers: int) -> SpanModel:
    """The transformer of the sentence-transformers model at ``path``, cut to ``layers``."""
    from ..export import offline

    offline()  # a local model: nothing may be fetched from a hub
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    encoder = AutoModel.from_pretrained(path)
    total = len(encoder.encoder.layer)
    if 0 < layers < total:
        encoder.encoder.layer = encoder.encoder.layer[:layers]
        encoder.config.num_hidden_layers = layers
    return SpanModel(encoder)


class Encoded:
    """The rows featurised once: token ids, the positions that may hold an answer, labels."""

    def __init__(self, rows: list[Row], featurizer: Featurizer):
        self.ids: list[np.ndarray] = []
        self.types: list[np.ndarray] = []
        self.valid: list[tuple[int, int]] = []  # sentence tokens: [first, stop)
        self.labels: list[tuple[int, int]] = []
        self.teacher: list[np.ndarray] | None = None  # (2, tokens): start and end logits
        self.groups: list[int] = []  # each row's question (Row.group)
        self.broken: set[int] = set()  # questions whose answering row is not here
        self.own: set[int] = set()  # rows that learn their label only (Row.distilled False)
        for r in rows:
            b = featurizer.encode(r.question, [r.candidate], r.last_question, r.last_answer)
            label = (0, 0)
            if r.span is not None:
                found = span_tokens(b, 0, *r.span)
                if found is None:
                    self.broken.add(r.group)
                    continue  # the span lies beyond the sentence's token budget
                label = found
            if not r.distilled:
                self.own.add(len(self.ids))
            self.groups.append(r.group)
            self.ids.append(b.ids[0])
            self.types.append(b.types[0])
            self.valid.append((b.first[0], b.first[0] + len(b.offsets[0])))
            self.labels.append(label)

    def __len__(self) -> int:
        return len(self.ids)

    def inputs(self, idx: list[int]) -> Batch:
        """The rows ``idx`` padded to the widest, as the model's inputs."""
        width = max(len(self.ids[i]) for i in idx)
        ids = np.zeros((len(idx), width), dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for r, i in enumerate(idx):
            n = len(self.ids[i])
            ids[r, :n] = self.ids[i]
            types[r, :n] = self.types[i]
            mask[r, :n] = 1
        return Batch(ids, mask, types, [], [], [], [])

    def tensors(self, idx: list[int]) -> tuple[torch.Tensor, ...]:
        inputs = self.inputs(idx)
        width = inputs.ids.shape[1]
        allowed = torch.zeros((len(idx), width), dtype=torch.bool)
        taught = torch.zeros((len(idx), 2, width), dtype=torch.float32)
        for r, i in enumerate(idx):
            a, b = self.valid[i]
            allowed[r, 0] = True
            allowed[r, a:b] = True
            if self.teacher is not None:
                taught[r, :, : self.teacher[i].shape[1]] = torch.from_numpy(self.teacher[i])
        labels = torch.tensor([self.labels[i] for i in idx], dtype=torch.long)
        ids, mask, types = (torch.from_numpy(x) for x in (inputs.ids, inputs.mask, inputs.types))
        return ids, mask, types, allowed, labels, taught


def distillation_loss(
    start: torch.Tensor,
    end: torch.Tensor,
    taught: torch.Tensor,
    allowed: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """KL divergence from the teachers' softened start and end distributions to the
    student's, scaled by the squared temperature (so its gradients keep their size)."""
    t = temperature
    loss = start.new_zeros(())
    for student, teacher in ((start, taught[:, 0]), (end, taught[:, 1])):
        target = torch.softmax(teacher.masked_fill(~allowed, NEG) / t, dim=-1)
        log_p = torch.log_softmax(student / t, dim=-1)
        loss = loss + torch.nn.functional.kl_div(log_p, target, reduction="batchmean")
    return loss * t * t / 2


def listwise_loss(
    start: torch.Tensor,
    end: torch.Tensor,
    labels: torch.Tensor,
    groups: Sequence[int],
    broken: Collection[int] = (),
    record: dict[int, float] | None = None,
) -> torch.Tensor:
    """The shared normalisation of each question's rows in the batch: one softmax over the
    (masked) start logits of all of them, and one over the end logits; the target is the
    answering row's gold position, or, for a question none of them answers, any row's
    no-answer position ([CLS]). Spans are so learned on one scale across sentences, as the
    service compares them. Questions with one row here, or whose answering row is missing
    (``broken``), are left to the per-row loss. ``record`` gets each question's loss."""
    members: dict[int, list[int]] = {}
    for r, g in enumerate(groups):
        if g >= 0 and g not in broken:
            members.setdefault(g, []).append(r)
    width = start.shape[1]
    losses = []
    for g, rows in members.items():
        if len(rows) < 2:
            continue
        at = torch.tensor(rows)
        answering = [k for k, r in enumerate(rows) if int(labels[r, 0]) > 0]
        for col, logits in enumerate((start, end)):
            flat = logits[at].reshape(-1)
            if answering:
                k = answering[0]
                target = flat[k * width + int(labels[rows[k], col])]
            else:
                target = torch.logsumexp(logits[at, 0], 0)
            losses.append(torch.logsumexp(flat, 0) - target)
        if record is not None:  # the mean of its start and end losses, the two just added
            record[g] = float(losses[-1].detach() + losses[-2].detach()) / 2
    return torch.stack(losses).mean() if losses else start.new_zeros(())


def fit(
    model: SpanModel,
    data: Encoded,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    max_steps: int = 0,
    log: Callable[[str], None] = print,
    after_epoch: Callable[[int], None] | None = None,
    bf16: bool = False,
    distill: float = 0.0,
    temperature: float = 2.0,
    listwise: float = 0.0,
    frozen: int = 0,
    hard: float = 1.0,
) -> dict[str, Any]:
    """Fit ``model`` on ``data``: AdamW, linear warm-up over 6% of the steps and decay.
    With ``frozen``, the embeddings and the first ``frozen`` layers are not trained: their
    outputs are computed once (``lower_outputs``) and each step runs only the layers above
    (about half the time a step with 2 of 4 frozen).
    With ``bf16``, the forward pass runs in bfloat16 (the weights and the optimiser stay in
    float32): 1.7 times the rows a second on a CPU with AVX-512 BF16. When ``data`` holds
    teachers' logits, ``distill`` weighs the distillation loss against the labels'.
    ``listwise`` weighs ``listwise_loss`` added to that (each question's rows then in one
    batch). With ``hard`` under 1, the epochs after the first train only on that share of the
    questions, those whose listwise loss was highest when last trained (``hardest``)."""
    if hard < 1 and not listwise:
        raise ValueError("choosing the hardest questions needs the listwise loss")
    distill = distill if data.teacher is not None else 0.0
    rng = random.Random(seed)
    torch.manual_seed(seed)
    freeze(model, frozen)
    lower: list[torch.Tensor] = []
    if frozen:
        began = time.perf_counter()
        lower = lower_outputs(model, data, frozen)
        log(
            f"the first {frozen} layers, frozen, read every row once "
            f"({time.perf_counter() - began:.0f} s)"
        )
    deal = group_batches if listwise else batches
    plan = [deal(data, batch_size, rng) for _ in range(epochs if hard >= 1 else 1)]
    # an epoch of hard questions is dealt when it comes: counted until then as its share
    counts = [len(p) for p in plan] + [max(1, round(hard * len(plan[0])))] * (epochs - len(plan))

    def steps() -> int:
        return min(sum(counts), max_steps) if max_steps else sum(counts)

    total = steps()
    trained = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trained if p.ndim > 1]
    rest = [p for p in trained if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}], lr=lr
    )
    warmup = max(1, int(0.06 * total))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    step, started, seen, losses = 0, time.perf_counter(), 0, []
    record: dict[int, float] = {}  # each question's listwise loss when last trained
    for epoch in range(1, epochs + 1):
        if epoch <= len(plan):
            plan_e = plan[epoch - 1]
        else:
            plan_e = group_batches(data, batch_size, rng, hardest(record, data.groups, hard))
            counts[epoch - 1] = len(plan_e)  # the schedule stretched to every batch dealt
            total = steps()
            log(f"epoch {epoch}: the hardest {hard:.0%} of the questions, {len(plan_e)} batches")
        model.train()
        with replaying(model, frozen) as replay:
            for idx in plan_e:
                if step >= total:
                    break
                ids, mask, types, allowed, labels, taught = data.tensors(idx)
                if replay is not None:
                    replay.hidden = stacked([lower[i] for i in idx], ids.shape[1])
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    start, end = model(ids, mask, types)
                start = start.float().masked_fill(~allowed, NEG)
                end = end.float().masked_fill(~allowed, NEG)
                loss = (
                    torch.nn.functional.cross_entropy(start, labels[:, 0])
                    + torch.nn.functional.cross_entropy(end, labels[:, 1])
                ) / 2
                if distill:
                    soft = distillation_loss(start, end, taught, allowed, temperature)
                    loss = (1 - distill) * loss + distill * soft
                if listwise:
                    groups = [data.groups[i] for i in idx]
                    loss = loss + listwise * listwise_loss(
                        start, end, labels, groups, data.broken, record
                    )
                optimizer.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                step += 1
                seen += len(idx)
                losses.append(loss.item())
                if step % 50 == 0 or step == total:
                    rate = seen / (time.perf_counter() - started)
                    log(
                        f"  epoch {epoch} step {step}/{total}: loss {np.mean(losses[-50:]):.3f}, "
                        f"{rate:.1f} rows/s"
                    )
        if after_epoch is not None:
            after_epoch(epoch)
        if step >= total:
            break
    return {
        "steps": step,
        "rows_seen": seen,
        "seconds": round(time.perf_counter() - started, 1),
        "final_loss": round(float(np.mean(losses[-50:])), 4) if losses else math.nan,
    }


@torch.no_grad()
def logits(model: SpanModel, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """Start and end logits of a featurised batch (evaluation mode)."""
    model.eval()
    start, end = model(
        torch.from_numpy(batch.ids), torch.from_numpy(batch.mask), torch.from_numpy(batch.types)
    )
    return start.numpy(), end.numpy()


def read_validation(
    model: SpanModel, featurizer: Featurizer, asked: Sequence[Asked], n: int, rows: int = 64
) -> list[list[Reading]]:
    """The first ``n`` sentences of each question read by the PyTorch model, many
    questions to a batch (the exported model reads a sentence a run, as the service)."""
    batches = [
        featurizer.encode(a.question, a.candidates(n), a.last_question, a.last_answer)
        for a in asked
    ]
    order = sorted(range(len(batches)), key=lambda i: batches[i].ids.shape[1])
    out: list[list[Reading]] = [[] for _ in batches]
    group: list[int] = []
    for position, i in enumerate(order):
        group.append(i)
        full = sum(len(batches[j].first) for j in group) >= rows
        if full or position == len(order) - 1:
            start, end = logits(model, concatenate([batches[j] for j in group], featurizer.pad))
            row = 0
            for j in group:
                k = len(batches[j].first)
                out[j] = read_spans(
                    start[row : row + k], end[row : row + k], batches[j], featurizer.limits.span
                )
                row += k
            group = []
    return out
