"""Training with the lower layers frozen (``qa train --frozen``): their outputs are computed
once and replayed, so a step runs only the layers above, and the model is the same model."""

from __future__ import annotations

import pytest
import torch

from qa.features import Candidate
from qa.training.data import Row
from qa.training.frozen import lower_outputs, replaying, stacked
from qa.training.model import Encoded, fit, load_model

ROWS = [
    ("When did the bridge reopen?", "The bridge reopened on Monday after repairs.", (23, 29)),
    ("Who paid for the repairs?", "The council paid for the repairs of the bridge.", (0, 11)),
    ("How long did the works last?", "Traffic stopped for three months.", (20, 32)),
    ("What colour is the bridge?", "The bridge reopened on Monday after repairs.", None),
    ("Who built the bridge in 1901?", "It was built by a firm from the north of the county.", None),
]


@pytest.fixture(scope="module")
def data(featurizer) -> Encoded:
    rows = [Row(q, "", "", Candidate(s), span, group=g) for g, (q, s, span) in enumerate(ROWS)]
    return Encoded(rows, featurizer)


def _model():
    from qa.embed import resolve_model

    torch.manual_seed(3)
    return load_model(resolve_model("all-MiniLM-L6-v2"), 4)


def test_the_layers_above_read_the_replayed_states_as_the_whole_model_reads_the_rows(data):
    model = _model().eval()
    idx = [0, 2, 4, 1]  # rows of unequal lengths: the replayed states are padded like them
    ids, mask, types, *_ = data.tensors(idx)
    with torch.no_grad():
        whole = model(ids, mask, types)
        lower = lower_outputs(model, data, 2)
        assert [h.shape[0] for h in lower] == [len(i) for i in data.ids]  # no padding kept
        with replaying(model, 2) as replay:
            assert replay is not None and len(model.encoder.encoder.layer) == 2
            replay.hidden = stacked([lower[i] for i in idx], ids.shape[1])
            replayed = model(ids, mask, types)
    assert len(model.encoder.encoder.layer) == 4  # restored on leaving
    for a, b in zip(whole, replayed, strict=True):
        real = mask.bool()
        torch.testing.assert_close(a[real], b[real], atol=1e-4, rtol=1e-4)
    # a model with nothing frozen is left as it is
    with replaying(model, 0) as replay:
        assert replay is None and len(model.encoder.encoder.layer) == 4


def test_fitting_with_two_layers_frozen_trains_only_the_layers_above(data):
    model = _model()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    fit(model, data, epochs=2, batch_size=2, lr=1e-3, seed=1, log=lambda m: None, frozen=2)
    after = model.state_dict()
    assert set(after) == set(before)  # the whole model, its layers restored
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    frozen = ("encoder.embeddings.", "encoder.encoder.layer.0.", "encoder.encoder.layer.1.")
    assert not {k for k in changed if k.startswith(frozen)}
    assert any(k.startswith("encoder.encoder.layer.3.") for k in changed)
    assert "head.weight" in changed
    assert all(p.requires_grad is False for p in model.encoder.embeddings.parameters())


def test_qa_train_frozen_records_it_and_refuses_freezing_every_layer(tiny_corpus, tmp_path):
    import json

    from click.testing import CliRunner

    from qa.cards import CARD
    from qa.cli import cli

    out = tmp_path / "frozen"
    args = ["train", "--corpus", str(tiny_corpus), "--epochs", "1", "--max-steps", "2"]
    args += ["--limit-questions", "8", "--no-sets", "--frozen", "3", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "the first 3 layers, frozen, read every row once" in result.output
    assert json.loads((out / CARD).read_text())["training"]["frozen"] == 3
    assert "the first 3 of the 4 layers kept as pretrained" in (out / "README.md").read_text()
    # the model has 6 layers: --layers 12 keeps 6 of them
    for frozen, layers in (("4", []), ("2", ["--layers", "2"]), ("6", ["--layers", "12"])):
        refused = CliRunner().invoke(cli, ["train", "--frozen", frozen, *layers])
        assert refused.exit_code == 2 and "at least the top layer must be trained" in refused.output
    refused = CliRunner().invoke(cli, ["train", "--frozen", "1", "--train-embeddings"])
    assert refused.exit_code == 2 and "cannot go with --train-embeddings" in refused.output
    # a way of training: a re-choice, which keeps the weights, refuses it
    again = CliRunner().invoke(cli, ["train", "--rechoose", "--out", str(out), "--frozen", "1"])
    assert again.exit_code == 2 and "--frozen would need training" in again.output
