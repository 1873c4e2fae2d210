"""Choosing a reader's settings on the validation sets asked through the service: a
follow-up's earlier turn is answered as the service will answer it, with the settings
chosen, not with the draft's."""

from __future__ import annotations

import json
import shutil

from conftest import ARTICLE

from qa.cards import CARD
from qa.config import Config
from qa.features import Limits
from qa.read import DEFAULT_READER, FILES
from qa.training import choosing
from qa.training.choice import Choice
from qa.training.settings import TrainSettings

EARLIER = "When did Trump sign the directive?"


def test_the_sets_follow_ups_are_asked_again_with_the_chosen_settings(
    embedder, tmp_path, monkeypatch
):
    work = tmp_path / "reader"
    work.mkdir()
    for name in FILES:
        shutil.copy(DEFAULT_READER / name, work / name)
    card = json.loads((DEFAULT_READER / CARD).read_text())
    draft = choosing.draft_reader(work, Limits.from_dict(card["limits"]))
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(ARTICLE, seeds / ARTICLE.name)
    questions = tmp_path / "questions.jsonl"
    rows = [
        {"id": "f", "turns": [EARLIER, "Who signed it?"], "answerable": True},
        {"id": "s", "turns": [EARLIER], "answerable": True},
    ]
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))

    # the choice itself is another test's: here a choice under which nothing is answered
    # (so that the earlier answers it gives differ from the draft's), and what it was made on
    made_on = []

    def choose(reader, sets, *args):
        made_on.append({k: list(v) for k, v in sets.items()})
        return Choice(3, 1e9, card["calibration"], {}, {})

    monkeypatch.setattr(choosing, "choose", choose)
    logged: list[str] = []
    choice = choosing.choose_on_validation(
        draft,
        [],
        [("set", questions, seeds)],
        TrainSettings(),
        Config(),
        embedder,
        logged.append,
    )
    # the draft (threshold 0) answers the earlier turn; asked again with the choice, it
    # abstains, and the choice is made again on that; asked once more, nothing changes
    first, second = ([a.last_answer for a in m["set"]] for m in made_on)
    assert len(made_on) == 2 and choice.reasked == (1, 0)
    assert first[0] and "January" in first[0] and not second[0]
    assert first[1] == second[1] == ""  # a question alone has no earlier answer
    assert [a.question for a in made_on[1]["set"]] == ["Who signed it?", EARLIER]
    assert "1 follow-ups' earlier answers change" in "\n".join(logged)
    assert "every follow-up's earlier answer stays" in logged[-1]
    # the card records it; the draft reader itself is left as it was
    figures = choosing.validation_figures(choice, Config())
    assert figures["followups_asked_again"] == [1, 0]
    assert draft.settings.threshold == 0.0 and draft.settings.decider is None
