"""The shared normalisation over each question's rows (``qa train --listwise``): one softmax
over the positions of all the sentences read for a question."""

from __future__ import annotations

import pytest
import torch

from qa.features import NEG, Candidate
from qa.training.data import Row
from qa.training.model import Encoded, listwise_loss


def test_the_loss_is_one_softmax_over_all_the_rows_of_a_question():
    start = torch.tensor([[1.0, 2.0, 0.5], [0.0, 3.0, NEG], [2.0, 1.0, 1.0], [0.3, 0.1, 0.2]])
    end = start.flip(1)
    labels = torch.tensor([[0, 0], [1, 1], [0, 0], [0, 0]])
    # rows 0 and 1 are one question, answered in row 1 at (1, 1); rows 2 and 3 another, which
    # neither answers; row 3 alone is compared with nothing
    loss = listwise_loss(start, end, labels, [7, 7, 9, 9])
    expected = []
    for logits in (start, end):
        first = logits[:2].reshape(-1)
        expected.append(torch.logsumexp(first, 0) - first[3 + 1])  # row 1, position 1
        second = logits[2:].reshape(-1)
        expected.append(torch.logsumexp(second, 0) - torch.logsumexp(logits[2:, 0], 0))
    assert float(loss) == pytest.approx(float(torch.stack(expected).mean()), rel=1e-6)
    # a question whose answering row is missing, or read once, is left to the per-row loss
    assert float(listwise_loss(start, end, labels, [7, 7, 9, 9], broken={7})) == pytest.approx(
        float(torch.stack(expected[1::2]).mean()), rel=1e-6
    )
    assert float(listwise_loss(start, end, labels, [1, 2, 3, -1])) == 0.0


def test_it_teaches_the_answering_sentence_to_outscore_the_others():
    """Within each row the loss per row is indifferent to the rows' scales; this one lifts
    the answering sentence's span over the other sentences' best spans."""
    g = torch.Generator().manual_seed(3)
    start = (torch.randn(3, 6, generator=g) * 2).requires_grad_(True)
    end = (torch.randn(3, 6, generator=g) * 2).requires_grad_(True)
    labels = torch.tensor([[0, 0], [2, 4], [0, 0]])
    optimizer = torch.optim.SGD([start, end], lr=0.5)
    for _ in range(100):
        loss = listwise_loss(start, end, labels, [0, 0, 0])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    best = start.detach().reshape(-1).argmax()
    assert divmod(int(best), 6) == (1, 2)
    assert divmod(int(end.detach().reshape(-1).argmax()), 6) == (1, 4)


def test_a_question_whose_answer_lies_beyond_the_token_budget_is_marked(featurizer):
    long = " ".join(["word"] * 400) + " answer here."
    rows = [
        Row("Where is the answer?", "", "", Candidate(long), (len(long) - 12, len(long) - 1), 5),
        Row("Where is the answer?", "", "", Candidate("Nothing."), None, 5),
    ]
    data = Encoded(rows, featurizer)
    assert len(data) == 1 and data.groups == [5] and data.broken == {5}
