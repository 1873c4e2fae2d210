"""Distillation: the reader also learns the mean start and end distributions of teacher
readers (``qa train --teacher``), softened by a temperature."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qa.features import NEG, Candidate
from qa.training.data import Row
from qa.training.model import Encoded, distillation_loss
from qa.training.teachers import add_teacher_logits


def _logits(seed: int, rows: int = 4, width: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, width, generator=g) * 3, torch.randn(rows, width, generator=g) * 3


def test_the_loss_vanishes_when_the_student_agrees_and_pulls_it_towards_its_teachers():
    allowed = torch.ones((4, 12), dtype=torch.bool)
    allowed[:, 9:] = False  # padding: never a start or an end
    t_start, t_end = _logits(1)
    taught = torch.stack([t_start, t_end], dim=1)
    # a student equal to its teachers where it may answer (masked as fit() masks it)
    same = distillation_loss(
        t_start.masked_fill(~allowed, NEG), t_end.masked_fill(~allowed, NEG), taught, allowed, 2.0
    )
    assert float(same) == pytest.approx(0.0, abs=1e-5)

    s_start, s_end = (x.clone().requires_grad_(True) for x in _logits(2))
    optimizer = torch.optim.SGD([s_start, s_end], lr=1.0)
    losses = []
    for _ in range(200):
        loss = distillation_loss(
            s_start.masked_fill(~allowed, NEG),
            s_end.masked_fill(~allowed, NEG),
            taught,
            allowed,
            2.0,
        )
        losses.append(float(loss.detach()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[0] > 0.1 and losses[-1] < losses[0] / 4
    # what the student learnt is the teachers' choice of start on each row
    assert torch.equal(s_start[:, :9].argmax(1), t_start[:, :9].argmax(1))


def test_the_teachers_logits_are_their_mean_for_every_row(featurizer):
    sentence = "The bridge reopened on Monday after three months of repairs."
    rows = [
        Row("When did the bridge reopen?", "", "", Candidate(sentence), (23, 29)),
        Row(
            "Who paid for the repairs of the old bridge over the river?",
            "",
            "",
            Candidate(sentence),
            None,
        ),
        Row("How long were the repairs?", "", "", Candidate(sentence, "Traffic stopped."), None),
    ]
    data = Encoded(rows, featurizer)

    def teacher(scale: float):
        def run(batch):
            ids = batch.ids.astype(np.float32)
            return scale * ids, -scale * ids

        return run

    add_teacher_logits(data, [teacher(1.0), teacher(3.0)], size=2)  # batches of unequal widths
    assert data.teacher is not None and len(data.teacher) == len(data) == 3
    for ids, taught in zip(data.ids, data.teacher, strict=True):
        assert taught.shape == (2, len(ids))
        np.testing.assert_allclose(taught[0], 2.0 * ids)
        np.testing.assert_allclose(taught[1], -2.0 * ids)
    # the batches fit() draws carry them, padded like the rows
    *_, allowed, labels, taught = data.tensors([0, 1])
    assert taught.shape == (2, 2, allowed.shape[1])
    np.testing.assert_allclose(taught[1, 0, : len(data.ids[1])].numpy(), 2.0 * data.ids[1])


def test_a_teacher_reading_another_part_of_the_previous_sentence_gives_its_sentence_logits(
    featurizer,
):
    """A teacher trained on the previous sentence's end teaches a student that reads its
    start: each reads the rows as it was trained to, and the teacher's logits of [CLS] and
    of each sentence token land on the student's same tokens."""
    from dataclasses import replace

    from qa.features import Featurizer

    before = "The old bridge over the river, closed since the spring floods, was a landmark."
    sentence = "It reopened on Monday after three months of repairs."
    rows = [
        Row("When did the bridge reopen?", "", "", Candidate(sentence, before), (15, 21)),
        Row("Who built the bridge?", "", "", Candidate(sentence, before), None),
        Row("How long were the repairs?", "", "", Candidate(sentence), None),
    ]
    limits = replace(featurizer.limits, previous=0, previous_head=5)
    student = Encoded(rows, Featurizer(featurizer.tokenizer, limits))
    teacher_rows = Encoded(rows, featurizer)  # the teacher reads the last 12 tokens
    assert student.valid[0][0] != teacher_rows.valid[0][0]  # the sentence starts elsewhere

    def run(batch):  # each token's logits: its id (start) and minus its id (end)
        ids = batch.ids.astype(np.float32)
        return ids + 1000 * batch.types, -ids

    add_teacher_logits(student, [run], size=2, reads=[teacher_rows])
    assert student.teacher is not None
    for i, taught in enumerate(student.teacher):
        first, stop = student.valid[i]
        ids = student.ids[i]
        assert taught.shape == (2, len(ids))
        # [CLS] and the sentence's tokens: the teacher's logits of the same tokens
        np.testing.assert_allclose(taught[0, first:stop], ids[first:stop] + 1000)
        np.testing.assert_allclose(taught[1, first:stop], -ids[first:stop])
        assert taught[0, 0] == ids[0] and taught[1, 0] == -ids[0]
        # the rest (question, previous sentence, separators) can never hold a span
        rest = np.ones(len(ids), dtype=bool)
        rest[0] = False
        rest[first:stop] = False
        assert (taught[:, rest] == NEG).all()

    # rows that are not the student's are refused, not misread: other questions, or the
    # same questions with their sentences cut shorter
    with pytest.raises(ValueError, match="not the student's"):
        add_teacher_logits(student, [run], reads=[Encoded(rows[:2], featurizer)])
    cut = Featurizer(featurizer.tokenizer, replace(featurizer.limits, sentence=8))
    with pytest.raises(ValueError, match="not the student's"):
        add_teacher_logits(student, [run], reads=[Encoded(rows, cut)])


def test_a_teacher_may_read_another_part_of_the_previous_sentence_but_nothing_else(tmp_path):
    """``qa train --teacher``: the shipped reader (the last 12 tokens of the previous
    sentence) teaches a student reading its first 12; one reading sentences cut shorter is
    refused, named."""
    import json
    import shutil
    from pathlib import Path

    from qa.embed import resolve_model
    from qa.read import ReaderError
    from qa.training.run import load_teachers, student_limits
    from qa.training.settings import TrainSettings

    shipped = Path(__file__).resolve().parents[1] / "qa" / "models" / "reader"
    model = Path(resolve_model("all-MiniLM-L6-v2"))
    settings = TrainSettings(teachers=(shipped,), previous=0, previous_head=12)
    (teacher,) = load_teachers(settings, model)
    assert teacher.featurizer.limits != student_limits(settings)
    assert student_limits(settings).previous_head == 12
    other = tmp_path / "cut"
    shutil.copytree(shipped, other)
    card = json.loads((other / "card.json").read_text())
    card["limits"]["sentence"] = 48
    (other / "card.json").write_text(json.dumps(card))
    with pytest.raises(ReaderError, match=f"the teacher in {other} reads with .*other token"):
        load_teachers(TrainSettings(teachers=(other,)), model)
