"""The question encoder: ``qa train --questions`` on a tiny corpus, a few steps only (what it
writes, that the service loads it for questions and only for questions), how a broken one is
refused, and which one the service picks."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import refuses_damaged_files

from qa.cards import CARD, card_hash
from qa.cli import cli
from qa.config import DEFAULT_QUESTIONS, Config
from qa.embed import SentenceEmbedder
from qa.questions import embeddings_sha256, question_folder, word_embeddings
from qa.runner import ModelError

QUESTIONS = ["Who stole the painting?", "When did the police arrest the man?"]
SENTENCES = ["The painting was stolen on Monday.", "Police arrested a 34-year-old man."]


@pytest.fixture(scope="module")
def encoder(tiny_corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("questions") / "questions"
    args = ["train", "--questions", "--corpus", str(tiny_corpus), "--out", str(out)]
    args += ["--epochs", "1", "--max-steps", "3", "--limit-questions", "12", "--lr", "1e-4"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"question encoder written to {out}" in result.output
    assert "validation after epoch 1:" in result.output
    return out


def embedder_with(folder: Path | None) -> SentenceEmbedder:
    config = Config()
    return SentenceEmbedder(config.model, config.backend, 1, Path(config.cache_dir), 1, folder)


def test_train_writes_a_small_encoder_and_its_card(encoder, tiny_corpus):
    card = json.loads((encoder / CARD).read_text())
    for name, entry in card["files"].items():
        data = (encoder / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
    # the word embeddings are the embedding model's own, left out of the file
    import onnx

    graph = onnx.load(str(encoder / "model.onnx"), load_external_data=False).graph
    spec = card["word_embeddings"]
    (words,) = [t for t in graph.initializer if t.name == spec["initializer"]]
    assert words.data_location == onnx.TensorProto.EXTERNAL and not words.raw_data
    assert spec["sha256"] == embeddings_sha256(word_embeddings(Config().model, spec["key"]))
    assert (encoder / "model.onnx").stat().st_size < 15_000_000
    ops = {n.op_type for n in graph.node}
    assert "MatMulInteger" in ops and "IsNaN" not in ops  # int8, without the NaN guards
    t = card["training"]
    assert t["seed"] == 13 and 1 <= t["steps"] <= 3 and t["command"].startswith("qa train")
    assert card["data"]["documents"] == 2 and len(card["data"]["sha256"]["documents"]) == 64
    figures = card["figures"]["validation"]
    assert set(figures) == {"start", "epochs", "exported"}
    assert set(figures["exported"]) == {"recall@1", "recall@3", "recall@10"}
    assert {"torch", "onnxruntime", "sentence-transformers"} <= set(card["versions"])


def test_it_embeds_questions_and_leaves_documents_to_the_embedding_model(encoder):
    plain, tuned = embedder_with(None), embedder_with(encoder)
    assert tuned.questions_name and plain.questions_name is None
    np.testing.assert_array_equal(tuned.encode(SENTENCES), plain.encode(SENTENCES))
    before, after = plain.encode_questions(QUESTIONS), tuned.encode_questions(QUESTIONS)
    assert after.shape == before.shape
    np.testing.assert_allclose(np.linalg.norm(after, axis=1), 1.0, atol=1e-5)
    cosines = (before * after).sum(axis=1)
    # three steps move the questions a little, and only a little
    assert np.all(cosines > 0.9) and np.all(cosines < 0.99999)
    # one question's vector does not depend on the others asked with it (int8: one a run)
    np.testing.assert_allclose(tuned.encode_questions(QUESTIONS[:1])[0], after[0], atol=1e-6)


def test_the_service_answers_with_it_without_torch_and_names_it(encoder, seeds_copy, tmp_path):
    env = {"QA_QUESTIONS": str(encoder), "QA_SEEDS": str(seeds_copy), "QA_INDEX": str(tmp_path)}
    code = (
        "import json, sys\n"
        "from qa.config import Config\n"
        "from qa.engine import Engine\n"
        "e = Engine(Config.load(), notify=lambda m: None)\n"
        "answer = e.ask('How many members does the gang have?')\n"
        "heavy = ('torch', 'sentence_transformers', 'transformers')\n"
        "print(json.dumps({'questions': e.embedder.questions_name,\n"
        "    'citations': len(answer.citations),\n"
        "    'heavy': sorted(m for m in sys.modules if m.split('.')[0] in heavy)}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen == {"questions": card_hash(encoder), "citations": seen["citations"], "heavy": []}
    assert seen["citations"] > 0
    version = CliRunner().invoke(cli, ["--version"], env=env)
    assert f", question encoder {card_hash(encoder)} ({encoder})" in version.output
    off = CliRunner().invoke(cli, ["--version"], env={**env, "QA_QUESTIONS": "off"})
    assert "questions embedded by the embedding model" in off.output


def test_a_damaged_missing_or_mismatched_encoder_is_refused_naming_it(
    encoder, seeds_copy, tmp_path
):
    copy = tmp_path / "questions"
    refuses_damaged_files(encoder, copy, embedder_with, ModelError)
    env = {"QA_QUESTIONS": str(copy), "QA_SEEDS": str(seeds_copy), "QA_INDEX": str(tmp_path)}
    result = CliRunner().invoke(cli, ["ask", "Who?"], env=env)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "Traceback" not in result.output
    assert str(copy / "tokenizer.json") in result.output and "QA_QUESTIONS=off" in result.output
    # an index holds documents only: a broken encoder does not stop a build
    result = CliRunner().invoke(cli, ["index"], env=env)
    assert result.exit_code == 0, result.output
    assert "indexed 1 document, " in result.output
    # trained for other word embeddings than the embedding model has
    shutil.copy(encoder / "tokenizer.json", copy / "tokenizer.json")
    card = json.loads((copy / CARD).read_text())
    card["word_embeddings"]["sha256"] = "0" * 64
    (copy / CARD).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="trained with the word embeddings of"):
        embedder_with(copy)
    # a card that lacks what the loader needs is refused as such, not with a traceback
    del card["word_embeddings"]["key"]
    (copy / CARD).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="card.json is not a valid model card"):
        embedder_with(copy)
    card["files"] = ["model.onnx"]
    (copy / CARD).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="card.json is not a valid model card"):
        embedder_with(copy)


def test_which_encoder_the_service_uses(tmp_path):
    config = Config()
    assert (DEFAULT_QUESTIONS / CARD).exists()  # the package ships one, used by default
    assert question_folder(config) == DEFAULT_QUESTIONS
    assert question_folder(replace(config, questions="off")) is None
    assert question_folder(replace(config, questions=str(tmp_path))) == tmp_path
    # another embedding model has other vectors: the shipped encoder is not paired with it
    assert question_folder(replace(config, model=str(tmp_path))) is None
    assert Config.load(questions=None).questions == "auto"


def test_reader_options_and_other_models_are_refused_with_questions(tiny_corpus, tmp_path):
    base = ["train", "--questions", "--corpus", str(tiny_corpus), "--out", str(tmp_path / "q")]
    for extra in (["--negatives", "2"], ["--rechoose"], ["--seeds", str(tmp_path)]):
        result = CliRunner().invoke(cli, base + extra)
        assert result.exit_code == 2 and extra[0] in result.output
    result = CliRunner().invoke(cli, [*base, "--model", str(tmp_path)])
    assert result.exit_code == 1 and "bundled all-MiniLM-L6-v2 only" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "q").exists()


def test_without_out_it_writes_where_qa_questions_points(tiny_corpus, tmp_path):
    args = ["train", "--questions", "--corpus", str(tiny_corpus), "--epochs", "1"]
    args += ["--max-steps", "1", "--limit-questions", "4"]
    result = CliRunner().invoke(cli, args, env={"QA_QUESTIONS": str(tmp_path / "q")})
    assert result.exit_code == 0, result.output
    assert card_hash(tmp_path / "q") and embedder_with(tmp_path / "q").questions_name
