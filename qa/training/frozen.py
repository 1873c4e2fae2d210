"""Training with the lower layers frozen (``qa train --frozen K``): the embeddings and the
first K transformer layers are not trained, so their outputs for every row are computed
once and replayed, and each step runs and differentiates only the layers above. The model,
and so its export, is the whole model all along."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import torch

from ..features import Batch


class Rows(Protocol):
    """Featurised rows (``model.Encoded``): their token ids, and a padded batch of some."""

    ids: list[np.ndarray]

    def __len__(self) -> int: ...

    def inputs(self, idx: list[int]) -> Batch: ...


class Replay(torch.nn.Module):
    """Stands in for the embeddings while the frozen lower layers are skipped: it returns the
    hidden states they gave the batch's rows (``replaying``), whatever it is called with."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden: torch.Tensor | None = None

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.hidden is None:
            raise RuntimeError("no hidden states to replay")
        return self.hidden


@contextmanager
def replaying(model: Any, frozen: int) -> Iterator[Replay | None]:
    """The model with its embeddings and first ``frozen`` layers replaced by a ``Replay``
    (None and the model unchanged when ``frozen`` is 0); restored on leaving."""
    if not frozen:
        yield None
        return
    encoder = model.encoder
    embeddings, layers = encoder.embeddings, encoder.encoder.layer
    replay = Replay()
    encoder.embeddings = replay
    encoder.encoder.layer = torch.nn.ModuleList(list(layers)[frozen:])
    try:
        yield replay
    finally:
        encoder.embeddings, encoder.encoder.layer = embeddings, layers


def freeze(model: Any, frozen: int) -> None:
    """Keep the embeddings and the first ``frozen`` transformer layers as they are (0: none)."""
    if not frozen:
        return
    encoder = model.encoder
    for module in (encoder.embeddings, *list(encoder.encoder.layer)[:frozen]):
        for p in module.parameters():
            p.requires_grad_(False)


@torch.no_grad()
def lower_outputs(model: Any, data: Rows, frozen: int, size: int = 64) -> list[torch.Tensor]:
    """Each row's hidden states after the embeddings and the first ``frozen`` layers, in
    evaluation mode (no dropout), computed once: frozen, they are the same every epoch."""
    encoder = model.encoder
    layers = encoder.encoder.layer
    encoder.encoder.layer = torch.nn.ModuleList(list(layers)[:frozen])
    was_training = model.training
    model.eval()
    out: list[torch.Tensor] = [torch.empty(0)] * len(data)
    try:
        order = sorted(range(len(data)), key=lambda i: len(data.ids[i]))
        for c in range(0, len(order), size):
            idx = order[c : c + size]
            b = data.inputs(idx)
            hidden = encoder(
                input_ids=torch.from_numpy(b.ids),
                attention_mask=torch.from_numpy(b.mask),
                token_type_ids=torch.from_numpy(b.types),
            ).last_hidden_state
            for r, i in enumerate(idx):
                out[i] = hidden[r, : len(data.ids[i])].clone()
    finally:
        encoder.encoder.layer = layers
        model.train(was_training)
    return out


def stacked(hidden: Sequence[torch.Tensor], width: int) -> torch.Tensor:
    """Rows' hidden states padded with zeros to ``width`` tokens, as one batch (the padding
    is masked out of attention and of the loss)."""
    out = hidden[0].new_zeros((len(hidden), width, hidden[0].shape[-1]))
    for r, h in enumerate(hidden):
        out[r, : h.shape[0]] = h
    return out
