"""The embedder: documents at full precision, questions micro-batched across lanes."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from qa.config import Config
from qa.embed import SentenceEmbedder

QUESTIONS = [f"How many boats did harbour number {i} send to the regatta?" for i in range(24)]
DOCUMENTS = [
    "The bridge reopened to traffic on Monday after two years of repairs.",
    "Divers counted 42 species of coral on the northern reef.",
    "Officials said the repair cost 410 million euros.",
]


@pytest.fixture(scope="module")
def fp32() -> SentenceEmbedder:
    return SentenceEmbedder("all-MiniLM-L6-v2", "onnx", 1, Config().cache_dir, lanes=2)


@pytest.fixture(scope="module")
def int8() -> SentenceEmbedder:
    return SentenceEmbedder("all-MiniLM-L6-v2", "onnx-int8", 1, Config().cache_dir, lanes=2)


def ask_together(embedder: SentenceEmbedder, questions: list[str]) -> dict[int, np.ndarray]:
    """Each question from its own thread, all released at once."""
    start = threading.Barrier(len(questions))
    out: dict[int, np.ndarray] = {}

    def one(i: int) -> None:
        start.wait()
        out[i] = embedder.encode_questions([questions[i]])[0]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_questions_asked_together_share_runs_and_get_their_own_vectors(fp32, int8, backend):
    """Whatever a question is asked with, it gets the vector it gets alone (the int8 model
    scales activations by the batch, so it must run questions one by one)."""
    embedder = fp32 if backend == "onnx" else int8
    runs: list[int] = []
    runner = embedder._runner
    original = runner.encode

    def counting(texts, *args, **kwargs):
        runs.append(len(texts))
        return original(texts, *args, **kwargs)

    alone = {i: embedder.encode_questions([q])[0] for i, q in enumerate(QUESTIONS)}
    runner.encode = counting
    try:
        together = ask_together(embedder, QUESTIONS)
    finally:
        runner.encode = original
    assert sorted(together) == list(range(len(QUESTIONS)))
    for i in range(len(QUESTIONS)):
        np.testing.assert_allclose(together[i], alone[i], atol=1e-5)
    assert sum(runs) == len(QUESTIONS)  # every question embedded exactly once
    assert len(runs) < len(QUESTIONS)  # and some of them in the same run


def test_documents_are_embedded_at_full_precision_whatever_the_question_backend(fp32, int8):
    np.testing.assert_allclose(int8.encode(DOCUMENTS), fp32.encode(DOCUMENTS), atol=1e-5)
    q8, q32 = int8.encode_questions(QUESTIONS[:3]), fp32.encode_questions(QUESTIONS[:3])
    cosines = (q8 * q32).sum(axis=1)
    assert (cosines > 0.95).all()  # the int8 model is a close approximation ...
    assert not np.allclose(q8, q32, atol=1e-5)  # ... and really is another model
    np.testing.assert_allclose(np.linalg.norm(q8, axis=1), 1.0, atol=1e-5)


def test_a_failed_run_reaches_every_caller_and_frees_its_lane(fp32):
    runner = fp32._runner
    original = runner.encode

    def failing(texts, *args, **kwargs):
        raise RuntimeError("the model run failed")

    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def one(i: int) -> None:
        start.wait()
        try:
            fp32.encode_questions([QUESTIONS[i]])
        except RuntimeError as exc:
            errors.append(exc)

    runner.encode = failing
    try:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        runner.encode = original
    assert len(errors) == 6
    assert fp32.encode_questions([QUESTIONS[0]]).shape == (1, fp32.dimension)


def test_the_onnx_export_has_no_nan_guards_and_gives_pytorchs_vectors(fp32):
    """The export drops the guards torch puts after each attention softmax (they never fire:
    every token attends to [CLS]); its vectors are still sentence-transformers' own."""
    import onnx

    from qa.runner import export_folder

    graph = onnx.load(str(export_folder("all-MiniLM-L6-v2", Config().cache_dir) / "model.onnx"))
    assert not [n for n in graph.graph.node if n.op_type == "IsNaN"]
    reference = SentenceEmbedder("all-MiniLM-L6-v2", "torch", 1, Config().cache_dir)
    # "[SEP]" written in a text is read as text by both backends
    texts = DOCUMENTS + QUESTIONS[:3] + ["Fields are joined by [SEP], with [CLS] first."]
    np.testing.assert_allclose(fp32.encode(texts), reference.encode(texts), atol=1e-5)
    np.testing.assert_allclose(fp32.encode_questions(texts), reference.encode(texts), atol=1e-5)


def test_control_tokens_written_in_a_text_are_text_to_every_tokenizer():
    """The ONNX runs' tokenizer, and sentence-transformers' (serving on torch, and
    `qa train --questions`, which tokenises through it)."""
    from qa.export import load_sentence_transformer
    from qa.runner import export_folder, load_tokenizer

    text = "Fields are joined by [SEP], [CLS] first, [MASK] or [PAD]."
    folder = export_folder("all-MiniLM-L6-v2", Config().cache_dir)
    onnx = load_tokenizer(folder, {"max_seq_length": 256}).encode(text).tokens
    st = load_sentence_transformer("all-MiniLM-L6-v2")
    tokenize = getattr(st, "preprocess", None) or st.tokenize
    torch = st.tokenizer.convert_ids_to_tokens(tokenize([text])["input_ids"][0])
    for tokens in (onnx, torch):
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
        assert not {"[CLS]", "[SEP]", "[MASK]", "[PAD]"} & set(tokens[1:-1])


def test_the_same_model_installed_twice_shares_one_export(tmp_path):
    """The export is named by the model files' contents, not their times: another clone or
    venv (the same files, other times) finds the export already made; a changed file does
    not, nor one rewritten in place. Each file's digest is remembered, so a later start
    reads no model file again."""
    import os
    import shutil

    from qa.embed import resolve_model
    from qa.runner import export_folder

    first, second = tmp_path / "a", tmp_path / "b"
    shutil.copytree(resolve_model("all-MiniLM-L6-v2"), first)
    shutil.copytree(first, second)
    for p in second.rglob("*"):
        os.utime(p, (1_000_000_000, 1_000_000_000))  # installed at another time
    cache = tmp_path / "cache"
    assert export_folder(str(first), cache) == export_folder(str(second), cache)
    assert len(list((cache / "onnx" / "digests").iterdir())) == 2 * sum(
        p.is_file() for p in first.rglob("*")
    )
    changed = second / "config.json"
    changed.write_text(changed.read_text().replace("}", ' , "x": 1}', 1))
    assert export_folder(str(first), cache) != export_folder(str(second), cache)
    # a file rewritten in place with its size and time put back is read again (its ctime)
    config = first / "config.json"
    before, st = export_folder(str(first), cache), config.stat()
    config.write_text(config.read_text().upper())
    os.utime(config, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert config.stat().st_size == st.st_size and export_folder(str(first), cache) != before
    # remembered: the digests kept are what a later start reads (a planted one is believed);
    # one that is not a digest (a write cut short) is not, and the file is read again
    truth = export_folder(str(first), cache)
    memos = list((cache / "onnx" / "digests").iterdir())
    for memo in memos:
        memo.write_text("0" * 64)
    assert export_folder(str(first), cache) != truth
    for memo in memos:
        memo.write_text("")
    assert export_folder(str(first), cache) == truth
