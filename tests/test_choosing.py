"""Choosing a reader's settings on the validation sets asked through the service: a
follow-up's earlier turn is answered as the service will answer it, with the settings
chosen, not with the draft's."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from conftest import ARTICLE

from qa.answer import answer_question
from qa.cards import CARD
from qa.config import Config
from qa.corpus import load_corpus
from qa.decide import FEATURES, Decider
from qa.features import Limits
from qa.rank import FEATURES as RANKS
from qa.rank import Ranker
from qa.read import DEFAULT_READER, FILES, OnnxReader, with_slack
from qa.records import Turn
from qa.training import choosing
from qa.training.card import _reasked, write_card
from qa.training.choice import Choice
from qa.training.data import ask_all, document_indexes
from qa.training.ranking import ask_followups_again
from qa.training.settings import TrainSettings

EARLIER = "When did Trump sign the directive?"
SIGNED = {"support": ["Trump signed"], "answer": ["Trump"]}
DATED = {"support": ["January 20"], "answer": ["January 20"]}


CARD_NOW = json.loads((DEFAULT_READER / CARD).read_text())


def model_files(folder: Path) -> Path:
    folder.mkdir()
    for name in FILES:
        shutil.copy(DEFAULT_READER / name, folder / name)
    return folder


def test_the_sets_follow_ups_are_asked_again_with_the_chosen_settings(
    embedder, tmp_path, monkeypatch
):
    card = CARD_NOW
    draft = choosing.draft_reader(
        model_files(tmp_path / "reader"), Limits.from_dict(card["limits"])
    )
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(ARTICLE, seeds / ARTICLE.name)
    questions = tmp_path / "questions.jsonl"
    rows = [
        {"id": "f", "turns": [EARLIER, "Who signed it?"], "answerable": True, **SIGNED},
        {"id": "s", "turns": [EARLIER], "answerable": True, **DATED},
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
    assert "1 follow-ups are read otherwise" in "\n".join(logged)
    assert "every follow-up is read as before" in logged[-1]
    # the card records it; the draft reader itself is left as it was
    figures = choosing.validation_figures(choice, Config())
    assert figures["followups_asked_again"] == [1, 0]
    assert draft.settings.threshold == 0.0 and draft.settings.decider is None


def test_the_reader_asked_again_answers_as_the_card_written_will_make_the_service_answer(
    tmp_path,
):
    """Every setting the choice writes into the card (the decider, the slack, the further
    reading, the curves) and the draft's ranker and limits reach the reader that answers
    the earlier turns, as they reach the service once the card is written."""
    limits = Limits.from_dict(CARD_NOW["limits"])
    n, r = len(FEATURES), len(RANKS)
    ranker = Ranker((0.1,) * r, (2.0,) * r, (0.5,) * r)
    draft = choosing.draft_reader(model_files(tmp_path / "draft"), limits, ranker)
    further = {
        "below": -5.0,
        "threshold": 1.5,
        "calibration": {"answer": [2, 1], "abstain": [1, 0]},
    }
    decider = Decider((0.5,) * n, (1.5,) * n, (0.25,) * n, -0.75)
    choice = Choice(2, 0.3, CARD_NOW["calibration"], {}, {}, 2.0, decider=decider, further=further)

    written = model_files(tmp_path / "written")  # as `qa train` writes the card (run.py)
    write_card(written, {"limits": limits.to_dict(), **choosing.card_settings(choice, ranker)})
    served = OnnxReader(written).settings
    chosen = choosing.as_chosen(draft, draft.card, choice).settings
    assert chosen == served
    assert (chosen.decider, chosen.ranker, chosen.slack) == (decider, ranker, 2.0)
    assert chosen.further is not None and chosen.right is not None
    assert draft.settings.threshold == 0.0 and draft.settings.decider is None  # untouched


def test_the_model_card_says_how_the_follow_ups_fared_when_asked_again():
    def told(changed):
        return "".join(_reasked({"followups_asked_again": changed}))

    assert told([]) == "" and "every earlier answer stayed" in told([0])
    assert "the follow-ups read otherwise: 27, then 0 (an earlier answer changed" in told([27, 0])
    assert "the choice was made again after each change)" in told([27, 0])
    assert "the last choice stands on the earlier answers of the one before" in told([5, 3, 2])


def test_the_validation_documents_follow_ups_are_asked_with_the_readers_own_answers(
    tiny_corpus, embedder
):
    """The corpus gives a follow-up's earlier answer from its label; asked again, it gets
    the answer the reader gives there, as the service would; the rest stay as they were."""
    corpus = load_corpus(tiny_corpus)
    indexes = document_indexes(corpus, embedder)
    asked = ask_all(corpus.examples, indexes, embedder, 3)
    follow = [i for i, a in enumerate(asked) if a.example.followup]
    assert any(asked[i].last_answer for i in follow)  # labelled answers (or none)
    shipped = OnnxReader(DEFAULT_READER)
    silent = with_slack(shipped, 0.0)  # a copy of it that answers nothing
    silent.settings = replace(shipped.settings, threshold=1e9, decider=None, further=None)
    again = ask_followups_again(asked, indexes, embedder, silent, 3)
    assert all(not again[i].last_answer for i in follow)
    assert all(again[i] is asked[i] for i in range(len(asked)) if i not in follow)
    assert [a.question for a in again] == [a.question for a in asked]
    own = ask_followups_again(asked, indexes, embedder, shipped, 3)
    e = own[follow[0]].example
    index, lexical = indexes[e.doc]
    history: list[Turn] = []
    for turn in e.turns[:-1]:
        history.append(
            Turn(turn, answer_question(index, lexical, embedder, shipped, turn, history).answer)
        )
    assert own[follow[0]].last_answer == (history[-1].answer or "")
