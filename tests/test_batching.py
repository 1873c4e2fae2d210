"""How training rows are dealt into batches (``qa/training/batching.py``): each question's
rows together for the listwise loss, and with ``qa train --hard`` the epochs after the
first on the questions of highest loss."""

from __future__ import annotations

import random

import pytest
import torch

from qa.features import NEG, Candidate
from qa.training.data import Row
from qa.training.model import Encoded, group_batches, listwise_loss


def test_a_questions_rows_are_dealt_into_one_batch(featurizer):
    sentence = "The bridge reopened on Monday after three months of repairs."
    rows = []
    for q in range(12):
        rows.append(
            Row(f"Question {q} about the bridge?", "", "", Candidate(sentence), (23, 29), q)
        )
        for n in range(q % 3 + 1):
            rows.append(
                Row(f"Question {q} about the bridge?", "", "", Candidate(f"Other {n}."), None, q)
            )
    rows.append(Row("A row of no question?", "", "", Candidate(sentence), None))
    data = Encoded(rows, featurizer)
    dealt = group_batches(data, 4, random.Random(1))
    assert sorted(i for b in dealt for i in b) == list(range(len(data)))  # each row once
    where = {}
    for n, batch in enumerate(dealt):
        assert len(batch) < 4 + 4  # at most one question's rows over the size
        for i in batch:
            where.setdefault(data.groups[i], set()).add(n)
    assert all(len(batches) == 1 for batches in where.values())


def test_the_hardest_questions_are_those_of_highest_loss_and_those_not_yet_measured():
    from qa.training.batching import hardest

    losses = {1: 0.2, 2: 3.0, 3: 1.5, 4: 0.1, 5: 2.0}
    assert hardest(losses, [1, 2, 3, 4, 5, 6, -1], 0.4) == {2, 5, 6, -1}
    assert hardest(losses, [1, 2, 3, 4, 5], 1.0) == {1, 2, 3, 4, 5}
    # listwise_loss records each question's loss: the mean of its start and end terms
    start = torch.tensor([[1.0, 2.0, 0.5], [0.0, 3.0, NEG], [2.0, 1.0, 1.0], [0.3, 0.1, 0.2]])
    labels = torch.tensor([[0, 0], [1, 1], [0, 0], [0, 0]])
    record: dict[int, float] = {}
    both = listwise_loss(start, start.flip(1), labels, [7, 7, 9, 9], record=record)
    assert set(record) == {7, 9} and record[7] != record[9]
    assert sum(record.values()) / 2 == pytest.approx(float(both), rel=1e-6)


def test_epochs_after_the_first_train_on_the_hardest_share_only(featurizer, monkeypatch):
    from qa.embed import resolve_model
    from qa.training import model as model_module
    from qa.training.model import fit, load_model

    sentence = "The bridge reopened on Monday after three months of repairs."
    rows = []
    for q in range(10):
        question = f"When did bridge {q} reopen?"
        rows.append(Row(question, "", "", Candidate(sentence), (23, 29) if q % 2 else None, q))
        rows.append(Row(question, "", "", Candidate(f"Another sentence {q}."), None, q))
    data = Encoded(rows, featurizer)
    dealt = []
    real = model_module.group_batches
    monkeypatch.setattr(model_module, "group_batches", lambda *a: dealt.append(a) or real(*a))
    torch.manual_seed(3)
    model = load_model(resolve_model("all-MiniLM-L6-v2"), 1)
    lines: list[str] = []
    fitted = fit(
        model,
        data,
        epochs=3,
        batch_size=4,
        lr=1e-3,
        seed=1,
        log=lines.append,
        listwise=1.0,
        hard=0.5,
    )
    assert len(dealt) == 3  # the first epoch dealt up front, the two others when they come
    assert dealt[0][3:] == () and all(len(d[3]) == 5 for d in dealt[1:])  # 50% of 10
    # every row once in the first epoch, then every row of the hard questions: their 10 rows
    # make 3 batches of 4, more than half the first epoch's 5 (the schedule is stretched)
    assert fitted["rows_seen"] == 20 + 2 * 10 and fitted["steps"] == 5 + 2 * 3
    assert sum("the hardest 50% of the questions, 3 batches" in line for line in lines) == 2
    with pytest.raises(ValueError, match="needs the listwise loss"):
        fit(model, data, epochs=2, batch_size=4, lr=1e-3, seed=1, log=lines.append, hard=0.5)
