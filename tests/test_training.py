"""``qa train`` on a tiny corpus, a few steps only: what it writes, that the service loads
it, that it is reproducible from what it records, and that bad labels stop it. (The full
run, which ships a model, happens when one decides to: see the README.)"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import TRAIN
from helpers import TINY_KIND as KIND
from helpers import refuses_damaged_files

from qa.answer import answer_question
from qa.cards import CARD, card_hash
from qa.cli import cli
from qa.corpus import load_corpus
from qa.decide import FEATURES, RIGHT_INPUTS, Decider
from qa.features import Candidate
from qa.rank import FEATURES as RANKS
from qa.rank import Ranker
from qa.read import OnnxReader, ReaderError
from qa.records import Turn
from qa.training.card import write_card
from qa.training.choosing import REASKS
from qa.training.settings import TrainSettings


@pytest.fixture(scope="module")
def trained(tiny_corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reader") / "reader"
    args = ["train", "--corpus", str(tiny_corpus), "--out", str(out), "--epochs", "1"]
    args += ["--max-steps", "3", "--limit-questions", "12", "--no-sets", "--ranker"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "written to" in result.output
    # the tiny corpus stands in a folder of its own, with no development set beside it
    assert "no development set beside the corpus" in result.output
    # each epoch is judged reading as many sentences as the service may be chosen to read
    most = max(TrainSettings().candidates)
    assert f"validation after epoch 1 (reading {most}):" in result.output
    # the ranker is fitted on the training split first, and judged on validation
    assert "ranker fitted on" in result.output and "validation recall @1" in result.output
    return out


def test_train_writes_the_model_its_tokenizer_and_a_model_card(trained, tiny_corpus):
    card = json.loads((trained / CARD).read_text())
    for name, entry in card["files"].items():
        data = (trained / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
    assert (trained / "README.md").read_text().startswith("# Model card")
    # exported without the NaN guards torch puts after each attention softmax
    import onnx

    ops = {n.op_type for n in onnx.load(str(trained / "model.onnx")).graph.node}
    assert "Softmax" in ops and "IsNaN" not in ops
    t = card["training"]
    assert (
        t["seed"] == TrainSettings().seed
        and 1 <= t["steps"] <= 3
        and t["command"].startswith("qa train")
    )
    # retrieval's FAISS searches set the OpenMP threads torch shares to one; fitting uses all
    assert t["torch_threads"] == (os.cpu_count() or 1)
    # the word embeddings are frozen by default: three steps leave them as pretrained
    assert t["freeze_embeddings"] is True and t["word_embeddings_changed"] is False
    # QA_TABLE_ROWS unset: it reads Markdown table rows after their header, and says so
    assert card["table_rows"] == t["table_rows"] == "header"
    assert OnnxReader(trained).settings.table_rows == "header"
    corpus = load_corpus(tiny_corpus)
    d = card["data"]
    assert d["documents"] == 2 and d["questions"] == len(corpus.examples)
    # what it trained on, so that a student can check a teacher never saw its validation
    assert d["training_documents"] == sorted(set(corpus.documents) - corpus.validation)
    assert len(d["sha256"]["documents"]) == len(d["sha256"]["questions"]) == 64
    assert {"torch", "onnxruntime", "transformers"} <= set(card["versions"])
    assert card["candidates"] in t["candidates"]
    assert card["slack"] in t["slacks"]
    assert set(card["figures"]["validation"]["slacks"]) == {str(x) for x in t["slacks"]}
    chosen = card["figures"]["validation"]["chosen"]
    assert set(chosen["validation"]) >= {"answer_hit", "abstain", "false_abstain"}
    recorded = card["figures"]["validation"]["objective"]
    assert recorded["targets"] == {"answer_hit": 0.85, "false_abstain": 0.05, "abstain": 0.90}

    def short(m):  # the targets, written out here
        gaps = [0.85 - m["answer_hit"], m["false_abstain"] - 0.05]
        gaps += [0.90 - m["abstain"]] if m["abstain"] is not None else []
        return sum(max(0.0, g) for g in gaps)

    expected = -sum(short(m) for m in chosen.values()) / len(chosen)
    assert recorded["score"] == pytest.approx(expected, abs=1e-4)
    assert "come nearest the targets" in (trained / "README.md").read_text()
    assert card["quantization"].startswith("dynamic int8")
    # whether the decider decides is chosen out of sample; the card records the comparison
    crossfitted = card["figures"]["validation"]["crossfitted"]
    assert crossfitted["documents"] == len(d["validation_documents"])
    if "decider" in crossfitted:
        beats = crossfitted["decider"]["mean"] > crossfitted["margin"]["mean"]
        assert ("decider" in card) == beats
    else:  # one validation document: nothing to judge out of sample
        assert "decider" not in card
    assert set(card["calibration"]) >= {"answer", "abstain", "citation"}
    # an answer's confidence from its inputs only if, out of sample, that beats the score's
    curves = crossfitted.get("answer curve")
    by_inputs = bool(curves) and curves["inputs"]["log_loss"] < curves["score"]["log_loss"]
    assert ("right" in card["calibration"]) == by_inputs
    assert (OnnxReader(trained).settings.right is not None) == by_inputs
    if by_inputs:
        assert card["calibration"]["right"]["features"] == list(RIGHT_INPUTS)
    assert Ranker.from_dict(card["ranker"]) == OnnxReader(trained).settings.ranker
    assert "retrieved sentences by a ranker" in (trained / "README.md").read_text()


def test_the_trained_reader_loads_without_torch_and_reads_in_one_batch(trained):
    reader = OnnxReader(trained)
    readings = reader.read(
        "Who stole the painting?",
        [
            Candidate("The painting was stolen on Monday.", "The museum opened in 1900."),
            Candidate("Police arrested a 34-year-old man."),
        ],
    )
    assert len(readings) == 2
    for r in readings:
        assert 0 <= r.start <= r.end
    assert len(reader.name) == 16


def test_a_damaged_or_missing_model_file_is_refused_naming_it(trained, tmp_path):
    copy = tmp_path / "reader"
    refuses_damaged_files(trained, copy, OnnxReader, ReaderError)
    result = CliRunner().invoke(cli, ["ask", "Who?"], env={"QA_READER": str(copy)})
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "Traceback" not in result.output
    assert str(copy / "tokenizer.json") in result.output
    assert f"(the reader set by QA_READER: {copy})" in result.output  # where it came from


def test_a_decider_in_the_card_decides_and_an_ill_formed_one_is_refused(trained, engine, tmp_path):
    """The service decides by the card's decider (here one sure either way, whatever the
    readings); a decider that reads other features, or is ill-formed, is refused at load
    in one line."""
    reader = tmp_path / "reader"
    shutil.copytree(trained, reader)
    card = json.loads((reader / CARD).read_text())
    n = len(FEATURES)
    s = engine.snapshot
    for bias, answered in ((-50.0, False), (50.0, True)):
        decider = Decider((0.0,) * n, (1.0,) * n, (0.0,) * n, bias)
        write_card(reader, {**card, "threshold": 0.0, "decider": decider.to_dict()})
        loaded = OnnxReader(reader)
        assert loaded.settings.decider == decider
        question = "Who was instructed to use military force?"
        answer = answer_question(s.index, s.lexical, engine.embedder, loaded, question)
        assert (answer.answer is not None) == answered
        assert answer.citations  # cited either way
    for broken in ({"features": ["best margin"]}, {"scale": [0.0] * n}, {"bias": "high"}):
        write_card(reader, {**card, "decider": {**decider.to_dict(), **broken}})
        with pytest.raises(ReaderError, match="not a valid model card") as caught:
            OnnxReader(reader)
        assert "\n" not in str(caught.value)


def test_the_cards_answer_curve_sets_an_answers_confidence_and_an_ill_formed_one_is_refused(
    trained, engine, tmp_path
):
    """An answer's confidence is the card's answer curve over the best span's inputs and
    the score that decided (here a decider sure to answer, and curves that read only the
    score, or nothing but their bias); an answer curve that reads other inputs, or is
    ill-formed, is refused at load in one line."""
    reader = tmp_path / "reader"
    shutil.copytree(trained, reader)
    card = json.loads((reader / CARD).read_text())
    n, m = len(FEATURES), len(RIGHT_INPUTS)
    decider = Decider((0.0,) * n, (1.0,) * n, (0.0,) * n, 1.5).to_dict()
    s = engine.snapshot
    question = "Who was instructed to use military force?"
    words = RIGHT_INPUTS.index("log(1 + words in the span)")
    word = re.compile(r"[^\W_]+")  # a word, as the inputs count them

    def sigmoid(z: float) -> float:
        return 1 / (1 + math.exp(-z))

    cases = (  # (weight on the span's words, on the score that decided, bias): expected
        ((0.0, 0.0, -2.0), lambda span: sigmoid(-2.0)),
        ((0.0, 1.0, -1.5), lambda span: 0.5),  # the decider's score is its bias, 1.5
        ((2.0, 0.0, -3.0), lambda span: sigmoid(2.0 * math.log1p(len(word.findall(span))) - 3.0)),
    )
    for (on_words, on_score, bias), expected in cases:
        weights = [0.0] * m
        weights[words], weights[-1] = on_words, on_score
        right = Decider((0.0,) * m, (1.0,) * m, tuple(weights), bias, RIGHT_INPUTS)
        calibration = {**card["calibration"], "right": right.to_dict()}
        chosen = {"threshold": 0.0, "decider": decider, "calibration": calibration}
        write_card(reader, {**card, **chosen})
        loaded = OnnxReader(reader)
        assert loaded.settings.right == right
        answer = answer_question(s.index, s.lexical, engine.embedder, loaded, question)
        assert answer.answer is not None
        assert answer.confidence == pytest.approx(expected(answer.answer))
    ill_formed = ({"scale": [0.0] * m}, {"weights": [1.0]}, {"bias": None}, {"mean": [[1.0]] * m})
    for broken in ({"features": list(FEATURES)}, *ill_formed):
        calibration = {**card["calibration"], "right": {**right.to_dict(), **broken}}
        write_card(reader, {**card, "calibration": calibration})
        with pytest.raises(ReaderError, match="answer curve") as caught:
            OnnxReader(reader)
        assert "\n" not in str(caught.value)
    write_card(reader, {**card, "calibration": {**card["calibration"], "right": [1.0]}})
    with pytest.raises(ReaderError, match="answer curve is not an object"):
        OnnxReader(reader)


def test_a_card_with_numbers_that_are_not_finite_is_refused_saying_why(trained, tmp_path):
    reader = tmp_path / "reader"
    shutil.copytree(trained, reader)
    card = json.loads((reader / CARD).read_text())
    for broken, why in (
        ({"threshold": float("nan")}, "not a finite number"),
        ({"decider": None}, "decider is not an object"),
        ({"table_rows": "cells"}, "reads table rows in an unknown way: 'cells'"),
    ):
        write_card(reader, {**card, **broken})
        with pytest.raises(ReaderError, match=why):
            OnnxReader(reader)


def test_training_and_serving_give_the_decider_and_the_answer_curve_the_same_inputs(
    trained, engine, monkeypatch
):
    """What the decider and the answer curve are fitted on (``outcomes`` of questions asked
    as validation asks them, and the score that decided) is what the service computes when
    it answers the same question, a follow-up included, with the reader's ranker ordering
    what it reads."""
    import qa.answer
    from qa.engine import Engine
    from qa.evaluate import Item
    from qa.training.data import ask_service
    from qa.training.decider import decided_by
    from qa.training.fit import outcomes, read_all

    reader = OnnxReader(trained)
    assert reader.settings.ranker is not None
    engine = Engine(engine.config, notify=lambda m: None, embedder=engine.embedder, reader=reader)
    n = reader.settings.candidates
    first = "Who was instructed to use military force?"
    items = [
        Item("a", (first,), True, ("instructed",), ("Pentagon",)),
        Item("b", (first, "When was that reported?"), True, ("reported",), ("Friday",)),
        # asked after a turn it does not refer back to: read as if alone, here as served
        Item(
            "c",
            (first, "How many members does Tren de Aragua have?"),
            True,
            ("members",),
            ("7,500",),
        ),
    ]
    asked = ask_service(engine, items, n)
    decider = reader.settings.decider
    outs = decided_by(outcomes(asked, read_all(reader, asked, n), n), decider)
    trained_on = [(*o.features, o.score) for o in outs]  # the answer curve's inputs
    served = []
    real = qa.answer.decide

    def recording(readings, threshold, decider=None, evidence=None):
        decision = real(readings, threshold, decider, evidence)
        # what the decider and the answer curve read
        served.append((*decision.features, decision.score))
        return decision

    histories = [[Turn(t, engine.ask(t).answer) for t in item.turns[:-1]] for item in items]
    monkeypatch.setattr(qa.answer, "decide", recording)
    s = engine.snapshot
    for item, history in zip(items, histories, strict=True):
        answer_question(
            s.index, s.lexical, engine.embedder, reader, item.turns[-1], history, top_k=n
        )
    assert len(served) == len(trained_on) == 3
    for fitted, answered in zip(trained_on, served, strict=True):
        assert fitted == pytest.approx(answered, abs=1e-4)
    assert served[0][FEATURES.index("follow-up")] == 0.0
    assert served[1][FEATURES.index("follow-up")] == 1.0
    assert served[2][FEATURES.index("follow-up")] == 0.0 and asked[2].last_question == ""


def test_a_label_outside_its_sentence_stops_training_naming_the_item(tiny_corpus, tmp_path):
    broken = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, broken)
    path = sorted((broken / "questions" / KIND).glob("*.jsonl"))[0]
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    victim = next(r for r in rows if r["answerable"])
    victim["answer_end"] = victim["sentence_end"] + 5
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(
        cli, ["train", "--corpus", str(broken), "--out", str(tmp_path / "r"), "--no-sets"]
    )
    assert result.exit_code == 1
    assert victim["id"] in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def guard_first_softmax(path: Path) -> None:
    """Put back, after the model's first softmax, the NaN guard torch's export makes."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    nodes = model.graph.node
    at, softmax = next((i, n) for i, n in enumerate(nodes) if n.op_type == "Softmax")
    p = softmax.output[0]
    for node in nodes:
        node.input[:] = [f"{p}_guarded" if name == p else name for name in node.input]
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    guard = [
        helper.make_node("IsNaN", [p], [f"{p}_nan"]),
        helper.make_node("Constant", [], [f"{p}_zero"], value=zero),
        helper.make_node("Where", [f"{p}_nan", f"{p}_zero", p], [f"{p}_guarded"]),
    ]
    for offset, node in enumerate(guard, 1):
        nodes.insert(at + offset, node)
    onnx.save(model, str(path))
    write_card(path.parent, json.loads((path.parent / CARD).read_text()))  # its checksum


def test_rechoose_keeps_the_weights_and_chooses_again_on_an_independent_set(
    trained, tiny_corpus, tmp_path
):
    """``qa train --rechoose``: validation data was added (here an independent validation set
    beside the corpus); the reader's weights stay, its settings are chosen again there."""
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    loaded = load_corpus(corpus)
    doc = sorted(loaded.validation)[0]
    seeds = corpus / "independent" / "validation"
    seeds.mkdir(parents=True)
    (seeds / Path(doc).name).write_text(loaded.documents[doc])
    fields = ("id", "turns", "answerable", "support", "answer")
    items = [e for e in loaded.examples if e.doc == doc][:12]
    (corpus / "independent" / "validation.jsonl").write_text(
        "".join(json.dumps({f: getattr(e, f) for f in fields}) + "\n" for e in items)
    )
    reader = tmp_path / "reader"
    shutil.copytree(trained, reader)
    # as exported before the guards were dropped: re-choosing drops it, the weights stay
    guard_first_softmax(reader / "model.onnx")
    # a decider fitted for other settings must not outlive the choice made again
    n = len(FEATURES)
    stale = Decider((0.0,) * n, (1.0,) * n, (0.0,) * n, 50.0).to_dict()
    further = {
        "below": -50.0,
        "threshold": 50.0,
        "calibration": {"answer": [1, 0], "abstain": [1, 0]},
    }
    stale_ranker = Ranker((0.0,) * len(RANKS), (1.0,) * len(RANKS), (0.0,) * len(RANKS))
    card = {**json.loads((reader / CARD).read_text()), "decider": stale, "further": further}
    card["ranker"] = stale_ranker.to_dict()
    write_card(reader, card)
    before, name = json.loads((reader / CARD).read_text()), card_hash(reader)
    args = ["train", "--corpus", str(corpus), "--out", str(reader), "--rechoose", "--no-sets"]
    result = CliRunner().invoke(cli, [*args, "--further", "--ranker"])
    assert result.exit_code == 0, result.output
    assert "dropped 1 NaN guards" in result.output
    # the further reading was tried, and judged out of sample
    assert "more when unsure" in result.output

    card = json.loads((reader / CARD).read_text())
    assert (reader / "model.onnx").read_bytes() == (trained / "model.onnx").read_bytes()
    assert card["rechosen"]["nan_guards_dropped"] == 1
    assert card["runtime"] == {"disabled_optimizers": ["SkipLayerNormFusion"]}
    # how the weights were trained, and on what, stays as it was
    for key in ("training", "limits", "data"):
        assert card[key] == before[key], key
    assert card["rechosen"]["from"] == name
    assert card.get("decider") != stale and card.get("further") != further
    assert card["ranker"] != stale_ranker.to_dict()  # fitted again on the training split
    assert "further" in card["figures"]["validation"]["crossfitted"]
    assert set(card["figures"]["validation"]["chosen"]) == {"validation", "independent"}
    today = card["rechosen"]["data"]
    assert today["validation_sets"] == ["corpus/independent/validation.jsonl"]
    # the sets are recorded by their bytes, as the corpus is
    recorded = today["validation_sets_sha256"]["independent"]["questions"]
    questions = (corpus / "independent" / "validation.jsonl").read_bytes()
    assert recorded == hashlib.sha256(questions).hexdigest()
    assert "independent" in today["sha256"] and "independent" not in card["data"]["sha256"]
    assert "Settings chosen again" in (reader / "README.md").read_text()
    # the independent set's follow-ups were asked again with the settings chosen
    reasked = card["figures"]["validation"]["followups_asked_again"]
    assert reasked and (reasked[-1] == 0 or len(reasked) == REASKS + 1)
    assert "follow-ups were asked again" in (reader / "README.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "reader"]  # nothing left

    # weights trained with a ranker are read in a ranker's order again, --ranker or not
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "trained with a ranker" in result.output and "ranker fitted on" in result.output
    assert "ranker" in json.loads((reader / CARD).read_text())
    # weights trained without one (the default): the choice is made on the fused order
    card = json.loads((reader / CARD).read_text())
    write_card(reader, {**card, "training": {**card["training"], "ranker": False}})
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "ranker fitted" not in result.output
    card = json.loads((reader / CARD).read_text())
    assert "ranker" not in card and OnnxReader(reader).settings.ranker is None

    # chosen again reading table rows as named cells: the card says so, and a later choice
    # (and the service) reads them as the card says unless QA_TABLE_ROWS says otherwise
    for env, way in (
        ({"QA_TABLE_ROWS": "named"}, "named"),
        ({}, "named"),
        ({"QA_TABLE_ROWS": "header"}, "header"),
    ):
        result = CliRunner().invoke(cli, args, env=env)
        assert result.exit_code == 0, result.output
        card = json.loads((reader / CARD).read_text())
        assert card["table_rows"] == card["figures"]["validation"]["table_rows"] == way
        assert OnnxReader(reader).settings.table_rows == way
        assert ("QA_TABLE_ROWS=named reads them" in result.output) == (way == "named")
        told = (reader / "README.md").read_text()  # the model card says how to reproduce it
        assert ("rows read as named cells" in told) == (way == "named")
        assert ("QA_TABLE_ROWS=named qa train --rechoose" in told) == (way == "named")
        assert "\n    qa train\n" in told  # trained reading rows after their header

    # a line that is not a question is refused in one line, naming it; the reader stays
    with open(corpus / "independent" / "validation.jsonl", "a") as f:
        f.write('{"id": "x", "turns": ["Who?"]}\n')
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "validation.jsonl:13" in result.output
    assert json.loads((reader / CARD).read_text()) == card


def further_set_folder(extra: Path) -> Path:
    """A labelled corpus's layout (documents/ and questions/, a folder a kind) holding a
    document of the tiny corpus's kind that is in neither of its splits."""
    for part, suffix in (("documents", ".txt"), ("questions", ".jsonl")):
        path = sorted((TRAIN / part / KIND).glob(f"*{suffix}"))[2]
        (extra / part / KIND).mkdir(parents=True)
        shutil.copy(path, extra / part / KIND / path.name)
    return extra


def test_rechoose_chooses_on_a_further_set_given_by_its_folder(trained, tiny_corpus, tmp_path):
    """``--validation-set``: a labelled corpus's documents/ and questions/ (as train/technical/)
    is a validation set of its own, named after its folder and recorded by its bytes; a
    folder that is no set, or one holding a document the reader trained on, is refused in
    one line before anything is chosen."""
    extra = further_set_folder(tmp_path / "technical")
    reader = tmp_path / "reader"
    shutil.copytree(trained, reader)
    args = ["train", "--corpus", str(tiny_corpus), "--out", str(reader), "--rechoose", "--no-sets"]
    result = CliRunner().invoke(cli, [*args, "--validation-set", str(extra)])
    assert result.exit_code == 0, result.output
    assert "technical (" in result.output  # it was asked through the service
    card = json.loads((reader / CARD).read_text())
    figures = card["figures"]["validation"]
    assert set(figures["chosen"]) == {"validation", "technical"}
    assert "technical" in figures["crossfitted"]["margin"]["sets"]  # judged out of sample too
    today = card["rechosen"]["data"]
    assert today["validation_sets"] == [os.path.relpath(extra / "questions", tiny_corpus.parent)]
    asked = hashlib.sha256()
    for path in sorted((extra / "questions").rglob("*.jsonl")):
        asked.update(path.relative_to(extra / "questions").as_posix().encode() + b"\0")
        asked.update(path.read_bytes())
    assert today["validation_sets_sha256"]["technical"]["questions"] == asked.hexdigest()

    chosen = (reader / CARD).read_bytes()
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    trained_on = tmp_path / "trained-on"
    corpus = load_corpus(tiny_corpus)
    doc = next(d for d in sorted(corpus.documents) if d not in corpus.validation)
    shutil.copytree(tiny_corpus / "questions", trained_on / "questions")
    (trained_on / "documents").mkdir(parents=True)
    shutil.copy(tiny_corpus / "documents" / doc, trained_on / "documents" / "renamed.txt")
    no_questions = tmp_path / "no-questions"
    shutil.copytree(extra / "documents", no_questions / "documents")
    (no_questions / "questions").mkdir()
    heldout = further_set_folder(tmp_path / "heldout")  # a test set's name
    for folder, message in (
        (nothing, "a validation set needs validation.jsonl with .txt or .md documents"),
        (no_questions, "a folder of questions needs .jsonl files"),
        (trained_on, "is the training document " + doc),
        (heldout, "cannot be named 'heldout', the name of a test set: rename its folder"),
    ):
        result = CliRunner().invoke(cli, [*args, "--validation-set", str(folder)])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert message in result.output, result.output
        assert (reader / CARD).read_bytes() == chosen


def test_rechoose_refuses_training_options_and_a_corpus_changed_since_training(
    trained, tiny_corpus, tmp_path
):
    args = ["train", "--corpus", str(tiny_corpus), "--out", str(trained), "--rechoose"]
    result = CliRunner().invoke(cli, [*args, "--epochs", "3", "--float", "--teacher", str(trained)])
    assert result.exit_code == 2
    assert "--epochs, --float, --teacher would need training" in result.output

    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    doc = sorted((corpus / "documents" / KIND).glob("*.txt"))[0]
    doc.write_text(doc.read_text() + "\nA sentence added after training.\n")
    args = ["train", "--corpus", str(corpus), "--out", str(trained), "--rechoose", "--no-sets"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "changed since reader" in result.output and "retrain it" in result.output


def test_a_half_present_independent_set_stops_training_before_it_fits(tiny_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    (corpus / "independent").mkdir()
    (corpus / "independent" / "validation.jsonl").write_text("")  # and no documents
    args = ["train", "--corpus", str(corpus), "--out", str(tmp_path / "r"), "--no-sets"]
    result = CliRunner().invoke(cli, [*args, "--max-steps", "1"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "independent validation set needs both" in result.output
    assert "epoch" not in result.output and not (tmp_path / "r").exists()


def test_an_empty_validation_set_stops_training_before_it_fits(tiny_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    seeds = corpus / "independent" / "validation"
    seeds.mkdir(parents=True)
    (seeds / "a.txt").write_text("The ferry leaves at noon.\n", encoding="utf-8")
    (corpus / "independent" / "validation.jsonl").write_text("\n")
    args = ["train", "--corpus", str(corpus), "--out", str(tmp_path / "r"), "--no-sets"]
    result = CliRunner().invoke(cli, [*args, "--max-steps", "1"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "validation.jsonl has no questions" in result.output
    assert "epoch" not in result.output and not (tmp_path / "r").exists()


def test_the_development_set_is_found_beside_the_corpus_and_its_absence_said(tiny_corpus, tmp_path):
    """../shared/eval/dev.jsonl and seeds/ beside the corpus's folder: chosen on; a corpus
    copied elsewhere is chosen on without it, and qa train says so rather than choosing
    silently on fewer sets."""
    from qa.training.sets import validation_sets

    corpus = tmp_path / "project" / "train"
    shutil.copytree(tiny_corpus, corpus)
    said: list[str] = []
    assert [name for name, _, _ in validation_sets(corpus, log=said.append)] == []
    (line,) = said
    assert f"({(tmp_path / 'shared' / 'eval' / 'dev.jsonl').resolve()} with " in line
    seeds = tmp_path / "project" / "seeds"
    seeds.mkdir()
    (seeds / "a.txt").write_text("The ferry leaves at noon.\n", encoding="utf-8")
    dev = tmp_path / "shared" / "eval" / "dev.jsonl"
    dev.parent.mkdir(parents=True)
    row = {"id": "d1", "turns": ["When does the ferry leave?"], "answerable": True}
    dev.write_text(json.dumps(row | {"support": ["leaves at noon"], "answer": ["noon"]}) + "\n")
    said.clear()
    assert [name for name, _, _ in validation_sets(corpus, log=said.append)] == ["dev"]
    assert said == []


@pytest.mark.parametrize("lists", [False, True])
def test_a_teacher_that_trained_on_todays_validation_documents_is_refused(
    trained, tiny_corpus, tmp_path, lists
):
    """Its logits would carry what it learned of them into the student and every choice."""
    teacher = tmp_path / "teacher"
    shutil.copytree(trained, teacher)
    card = json.loads((teacher / CARD).read_text())
    validation = sorted(load_corpus(tiny_corpus).validation)
    if lists:  # cards list what they trained on: one of today's validation documents
        card["data"]["training_documents"].append(validation[0])
    else:  # an older card, the same documents, validated on none of them
        del card["data"]["training_documents"]
        card["data"]["validation_documents"] = []
    (teacher / CARD).write_text(json.dumps(card))
    args = ["train", "--corpus", str(tiny_corpus), "--out", str(tmp_path / "r"), "--no-sets"]
    result = CliRunner().invoke(cli, [*args, "--max-steps", "1", "--teacher", str(teacher)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"the teacher in {teacher} trained on 1 of today's validation documents" in (
        result.output
    )
    assert validation[0] in result.output and not (tmp_path / "r").exists()


def test_a_student_learns_from_teachers_that_read_as_it_does_and_names_them(
    trained, tiny_corpus, tmp_path
):
    args = ["train", "--corpus", str(tiny_corpus), "--epochs", "1", "--max-steps", "2"]
    args += ["--no-sets", "--teacher", str(trained)]
    student = tmp_path / "student"
    extra = further_set_folder(tmp_path / "extra")
    taught = [*args, "--out", str(student), "--distill", "0.7", "--contrast", "1"]
    result = CliRunner().invoke(cli, [*taught, "--validation-set", str(extra)])
    assert result.exit_code == 0, result.output
    assert "teachers read every row" in result.output
    # contrast questions, learnt from their label only, beside the teachers' rows
    made = re.search(r"contrast questions: (\d+), each on its sentence", result.output)
    assert made and int(made.group(1)) >= 1
    card = json.loads((student / CARD).read_text())
    t = card["training"]
    assert t["distill"] == 0.7 and t["temperature"] == 2.0 and t["contrast"] == 1.0
    # the further validation set: in the card as the command gave it, and chosen on
    assert t["validation_sets"] == [str(extra)]
    assert set(card["figures"]["validation"]["chosen"]) == {"validation", "extra"}
    assert [x["name"] for x in t["teachers"]] == [card_hash(trained)]
    own = json.loads((trained / CARD).read_text())
    assert t["teachers"][0]["model_sha256"] == own["files"]["model.onnx"]["sha256"]
    readable = (student / "README.md").read_text()
    assert "with one command, given its teachers (below):" in readable
    assert (
        "Distilled from 1 teacher(s), weighed 0.7 against the labels at temperature 2.0" in readable
    )
    assert f"reader {card_hash(trained)} (`{own['training']['command']}`)" in readable
    alone = (trained / "README.md").read_text()  # trained without teachers
    assert "Distilled" not in alone and "with one command:" in alone

    # a student reading the start of the previous sentence learns from a teacher that
    # read its end: the teacher reads the rows its own way
    head = tmp_path / "head"
    result = CliRunner().invoke(
        cli, [*args, "--out", str(head), "--previous", "0", "--previous-head", "6"]
    )
    assert result.exit_code == 0, result.output
    assert "teachers read every row" in result.output
    assert json.loads((head / CARD).read_text())["limits"]["previous_head"] == 6

    # a teacher that reads other tokens than the student would (here sentences cut at
    # another length; another part of the previous sentence it may) is refused before fitting
    cut = tmp_path / "cut"
    shutil.copytree(trained, cut)
    own["limits"]["sentence"] = 48
    (cut / CARD).write_text(json.dumps(own))
    other = tmp_path / "other"
    refused = [*args[: args.index("--teacher")], "--teacher", str(cut), "--out", str(other)]
    result = CliRunner().invoke(cli, refused)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"the teacher in {cut} reads with another tokenizer" in result.output
    assert "epoch" not in result.output and not other.exists()


def test_listwise_training_deals_questions_whole_and_says_so_in_its_card(
    tiny_corpus, tmp_path, monkeypatch
):
    from qa.training import model

    dealt, losses = [], []
    real, loss = model.group_batches, model.listwise_loss
    monkeypatch.setattr(model, "group_batches", lambda *a: dealt.append(a) or real(*a))

    def listwise_loss(*args):
        value = loss(*args)
        losses.append(value.item())
        return value

    monkeypatch.setattr(model, "listwise_loss", listwise_loss)
    out = tmp_path / "listwise"
    args = ["train", "--corpus", str(tiny_corpus), "--epochs", "1", "--max-steps", "2"]
    args += ["--limit-questions", "8", "--no-sets", "--listwise", "1.5", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert len(dealt) == 1  # the one epoch's batches, each question's rows together
    assert losses and all(v > 0 for v in losses)  # each step compares its questions' rows
    assert json.loads((out / CARD).read_text())["training"]["listwise"] == 1.5
    readable = (out / "README.md").read_text()
    assert "A shared normalisation over each question's sentences added to the loss, " in readable
    assert "weighed 1.5 (`--listwise`)" in readable
    # it is a way of training: a re-choice, which keeps the weights, refuses it
    again = CliRunner().invoke(cli, ["train", "--rechoose", "--out", str(out), "--listwise", "1"])
    assert again.exit_code == 2 and "--listwise would need training" in again.output


def test_pooled_training_asks_each_question_of_its_pool_and_says_so_in_its_card(
    tiny_corpus, tmp_path
):
    """`qa train --pool 2` on a corpus of two training documents: one pool of both, whose
    other document gives questions a negative; the card records it."""
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    validation = sorted(load_corpus(corpus).validation)
    train = Path(__file__).resolve().parents[1] / "train"
    for part, suffix in (("documents", ".txt"), ("questions", ".jsonl")):
        third = sorted((train / part / KIND).glob(f"*{suffix}"))[2]
        shutil.copy(third, corpus / part / KIND / third.name)
    (corpus / "split.json").write_text(json.dumps({"validation": validation}))
    out = tmp_path / "pooled"
    args = ["train", "--corpus", str(corpus), "--epochs", "1", "--max-steps", "1"]
    args += ["--limit-questions", "8", "--no-sets", "--pool", "2", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    met = re.search(r"pool of 2 training documents \(1 pools\): (\d+) of 8 meet", result.output)
    assert met and int(met.group(1)) > 0, result.output
    training = json.loads((out / CARD).read_text())["training"]
    assert training["pool"] == 2
    # the pools' searches set OpenMP to one thread: training took its threads back
    assert training["torch_threads"] == training["threads"]
    assert "a pool of 2 training documents" in (out / "README.md").read_text()


class _Stop(Exception):
    pass


@pytest.mark.parametrize(("way", "ranker"), [("named", False), ("named", True), ("", False)])
def test_qa_train_reads_table_rows_as_qa_table_rows_says_everywhere(
    tiny_corpus, embedder, monkeypatch, tmp_path, way, ranker
):
    """`QA_TABLE_ROWS=named qa train` reads table rows as named cells in what it asks for
    training and validation (with the ranker or without) and in the rows it learns from;
    unset, it reads them after their header (a card it replaces does not count)."""
    import qa.training.run as run
    from qa.config import Config
    from qa.embed import resolve_model

    seen: dict[str, object] = {}

    def asked(*args, **kwargs):
        seen["asked"] = args[-1] if len(args) >= 5 else kwargs.get("named_rows", False)
        return []

    def ranked(*args, **kwargs):
        seen["asked"] = args[6] if len(args) > 6 else kwargs.get("named_rows", False)
        return None, [], []

    def rows(*args, **kwargs):
        seen["rows"] = kwargs.get("named_rows", False)
        raise _Stop

    monkeypatch.setattr(run, "ask_all", asked)
    monkeypatch.setattr(run, "ask_ranked", ranked)
    monkeypatch.setattr(run, "training_rows", rows)
    settings = TrainSettings(corpus=tiny_corpus, out=tmp_path / "reader", ranker=ranker)
    with pytest.raises(_Stop):
        run.train_reader(
            settings,
            embedder,
            resolve_model(Config().model),
            log=lambda m: None,
            config=Config(table_rows=way),
        )
    assert seen == {"asked": way == "named", "rows": way == "named"}


def test_the_defaults_are_the_shipped_readers_recipe():
    """``qa train`` with a teacher reproduces the shipped reader: every setting its card
    records as a choice of recipe is the default (where it ran and how much of the corpus
    it used are not: those record the run)."""
    from dataclasses import asdict

    from qa.config import DEFAULT_READER

    trained = json.loads((DEFAULT_READER / CARD).read_text())["training"]
    run_only = {"corpus", "out", "threads", "bf16", "max_steps", "limit_questions", "teachers"}
    defaults = asdict(TrainSettings())
    recipe = {k: v for k, v in defaults.items() if k not in run_only}
    assert {"epochs", "listwise", "seed", "lr", "negatives", "layers"} <= set(recipe)
    for key, value in recipe.items():
        recorded = trained.get(key, value)  # a card older than the setting: its default
        if isinstance(value, tuple):
            recorded = tuple(recorded)
        assert recorded == value, f"{key}: the shipped reader was trained with {recorded!r}"
    assert trained["teachers"], "the shipped reader was distilled: docs/reader.md names it"


def test_qa_train_balance_overlap_repeats_questions_by_their_overlap_and_records_it(
    tiny_corpus, tmp_path
):
    out = tmp_path / "balanced"
    args = ["train", "--corpus", str(tiny_corpus), "--epochs", "1", "--max-steps", "1"]
    result = CliRunner().invoke(cli, [*args, "--no-sets", "--balance-overlap", "--out", str(out)])
    assert result.exit_code == 0, result.output
    said = re.search(
        r"questions repeated by their overlap with their sentence: (\{.*\})", result.output
    )
    assert said, result.output
    report = json.loads(said.group(1))
    corpus = load_corpus(tiny_corpus)
    asked = corpus.split("train")
    assert sum(b["answerable"] + b["unanswerable"] for b in report["bands"]) == len(asked)
    assert report["unanswerable_share"] == round(
        sum(not e.answerable for e in asked) / len(asked), 4
    )
    rows = re.search(r"training rows: (\d+)", result.output)
    plain = CliRunner().invoke(cli, [*args, "--no-sets", "--out", str(tmp_path / "plain")])
    rows_plain = re.search(r"training rows: (\d+)", plain.output)
    assert rows and rows_plain
    repeated = sum(b["repeated"] for b in report["bands"])
    # the tiny corpus's training document has both kinds in its bands: some are repeated
    assert repeated > 0 and int(rows.group(1)) > int(rows_plain.group(1))
    assert json.loads((out / CARD).read_text())["training"]["balance_overlap"] is True
    card = json.loads((out / CARD).read_text())
    assert card["training"]["balanced"] == report  # what was repeated, in the card
    assert f"{repeated} repeats (`--balance-overlap`)" in (out / "README.md").read_text()
    plain_card = json.loads((tmp_path / "plain" / CARD).read_text())["training"]
    assert plain_card["balance_overlap"] is False and "balanced" not in plain_card
    assert "questions repeated" not in plain.output
    for other in (["--erased", "0.2"], ["--contrast", "0.5"]):
        refused = CliRunner().invoke(cli, [*args, "--balance-overlap", *other, "--out", str(out)])
        assert refused.exit_code == 2 and "the habit it balances away" in refused.output
    result = CliRunner().invoke(
        cli, ["train", "--rechoose", "--out", str(out), "--balance-overlap"]
    )
    assert result.exit_code == 2 and "--balance-overlap would need training" in result.output


def test_qa_train_hard_trains_later_epochs_on_the_hardest_questions_and_records_it(
    tiny_corpus, tmp_path
):
    out = tmp_path / "hard"
    args = ["train", "--corpus", str(tiny_corpus), "--epochs", "2", "--limit-questions", "8"]
    args += ["--no-sets", "--hard", "0.5", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "epoch 2: the hardest 50% of the questions" in result.output
    assert json.loads((out / CARD).read_text())["training"]["hard"] == 0.5
    for flags, message in (
        (["--hard", "0.5", "--listwise", "0"], "it needs --listwise above 0"),
        (["--hard", "0.5", "--epochs", "1"], "it needs --epochs 2 or more"),
        (["--hard", "0.5", "--negatives", "0"], "it needs --negatives 1 or more"),
        (["--hard", "0"], "0<x<=1"),
        (["--rechoose", "--out", str(out), "--hard", "0.5"], "--hard would need training"),
    ):
        refused = CliRunner().invoke(cli, ["train", *flags])
        assert refused.exit_code == 2 and message in refused.output, refused.output
