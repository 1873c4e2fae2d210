"""``qa train --average``: readers trained alike, their weights averaged into one reader
(``qa/training/soup.py``), and ``--order-seed``, which makes the readers to average."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from qa.cards import card_hash, sha256_of
from qa.cli import cli
from qa.features import Candidate
from qa.read import OnnxReader, ReaderError
from qa.training.soup import (
    _arrays,
    average_models,
    dequantize,
    quantize_columns,
    quantize_tensor,
    write_soup,
)

SHIPPED = Path(__file__).resolve().parents[1] / "qa" / "models" / "reader"


def train_tiny(corpus: Path, out: Path, *more: str) -> Path:
    args = ["train", "--corpus", str(corpus), "--out", str(out), "--epochs", "1"]
    args += ["--max-steps", "3", "--limit-questions", "12", "--no-sets", *more]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def pair(tiny_corpus, tmp_path_factory) -> tuple[Path, Path]:
    """Two tiny readers of one seed, the second with another order of its rows."""
    root = tmp_path_factory.mktemp("soup")
    first = train_tiny(tiny_corpus, root / "a")
    second = train_tiny(tiny_corpus, root / "b", "--order-seed", "15")
    return first, second


def tensors(folder: Path) -> dict[str, np.ndarray]:
    return _arrays(onnx.load(str(folder / "model.onnx")))


def test_the_order_seed_changes_the_weights_and_is_recorded(pair):
    first, second = pair
    cards = [json.loads((f / "card.json").read_text())["training"] for f in pair]
    assert [c["seed"] for c in cards] == [14, 14]
    assert [c["order_seed"] for c in cards] == [None, 15]
    a, b = tensors(first), tensors(second)
    assert a.keys() == b.keys()
    assert not np.array_equal(a["head.bias"], b["head.bias"])  # other rows, other steps


def test_stored_int8_weights_read_back_and_quantised_again_are_the_same_bytes():
    arrays = tensors(SHIPPED)
    checked = 0
    for name, q in arrays.items():
        if not name.endswith("_quantized"):
            continue
        base = name.removesuffix("_quantized")
        scale, zero = arrays[base + "_scale"], arrays[base + "_zero_point"]
        floats = dequantize(q, scale, zero)
        again = quantize_columns(floats) if scale.ndim == 1 else quantize_tensor(floats)
        assert np.array_equal(again[0], q), name
        np.testing.assert_allclose(again[1], scale, rtol=1e-6)
        assert np.array_equal(again[2], zero), name
        checked += 1
    assert checked >= 25  # every matrix product and the three embedding tables


def test_a_reader_averaged_with_itself_is_itself(pair, tmp_path):
    first, _ = pair
    assert average_models([first / "model.onnx"] * 2, tmp_path / "m.onnx") == 0
    mine, again = tensors(first), _arrays(onnx.load(str(tmp_path / "m.onnx")))
    assert mine.keys() == again.keys()
    assert all(np.array_equal(mine[k], again[k]) for k in mine)


def test_qa_train_average_writes_the_mean_reader_names_its_readers_and_chooses(
    pair, tiny_corpus, tmp_path
):
    first, second = pair
    out = tmp_path / "soup"
    args = ["train", "--corpus", str(tiny_corpus), "--out", str(out), "--no-sets"]
    result = CliRunner().invoke(cli, [*args, "--average", str(first), "--average", str(second)])
    assert result.exit_code == 0, result.output
    assert "averaged the weights of 2 readers" in result.output
    card = json.loads((out / "card.json").read_text())
    named = card["training"]["averaged"]
    assert [r["name"] for r in named] == [card_hash(first), card_hash(second)]
    assert [r["model_sha256"] for r in named] == [sha256_of(f / "model.onnx") for f in pair]
    assert [r["order_seed"] for r in named] == [None, 15]
    assert card["rechosen"]["command"].startswith("qa train")  # its settings chosen for it
    assert "--average" in card["rechosen"]["command"]
    a, b, mean = tensors(first), tensors(second), tensors(out)
    # float tensors: the mean
    np.testing.assert_allclose(mean["head.bias"], (a["head.bias"] + b["head.bias"]) / 2, atol=1e-6)
    # quantised matrices: the mean of what they stand for, within one step of the new scale
    moved = 0
    for name in a:
        if name.endswith("_quantized") and not np.array_equal(a[name], b[name]):
            base = name.removesuffix("_quantized")
            real = [
                dequantize(t[name], t[base + "_scale"], t[base + "_zero_point"]) for t in (a, b)
            ]
            got = dequantize(mean[name], mean[base + "_scale"], mean[base + "_zero_point"])
            step = np.broadcast_to(mean[base + "_scale"], got.shape)
            assert np.all(np.abs(got - (real[0] + real[1]) / 2) <= step / 2 + 1e-7), name
            moved += 1
    assert moved > 0
    # frozen word embeddings: the same in both, kept byte for byte
    words = "encoder.embeddings.word_embeddings.weight_quantized"
    assert np.array_equal(mean[words], a[words])
    reader = OnnxReader(out)  # it serves as any reader
    readings = reader.read("Who stole it?", [Candidate("Police arrested a man.")])
    assert len(readings) == 1 and reader.name == card_hash(out)


def test_averaging_refuses_readers_of_other_documents_damaged_files_and_bad_options(
    pair, tiny_corpus, tmp_path
):
    first, second = pair
    base = ["train", "--corpus", str(tiny_corpus), "--out", str(tmp_path / "o"), "--no-sets"]
    # the shipped reader was trained on other documents: a validation document of one might
    # have been trained on by the other
    result = CliRunner().invoke(cli, [*base, "--average", str(first), "--average", str(SHIPPED)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "other documents or another split" in result.output
    assert not (tmp_path / "o").exists()  # nothing written
    broken = tmp_path / "broken"
    shutil.copytree(first, broken)
    with open(broken / "model.onnx", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(ReaderError, match="model.onnx is damaged"):
        write_soup([first, broken], tmp_path / "never")
    assert not (tmp_path / "never").exists()
    # a reader that reads another part of the previous sentence learnt from other inputs:
    # `--previous-head` reaches its card and the reader serving it
    other = train_tiny(tiny_corpus, tmp_path / "head", "--previous", "4", "--previous-head", "4")
    limits = json.loads((other / "card.json").read_text())["limits"]
    assert (limits["previous"], limits["previous_head"]) == (4, 4)
    assert OnnxReader(other).featurizer.limits.previous_head == 4
    with pytest.raises(ReaderError, match="reads with other token limits"):
        write_soup([first, other], tmp_path / "never")
    assert not (tmp_path / "never").exists()
    result = CliRunner().invoke(cli, [*base, "--average", str(first)])
    assert result.exit_code == 2 and "give at least two readers" in result.output
    twice = ["--average", str(first), "--average", str(second)]
    for option in ("--epochs", "--previous-head"):
        result = CliRunner().invoke(cli, [*base, *twice, option, "2"])
        assert result.exit_code == 2 and f"{option} would need training" in result.output
    result = CliRunner().invoke(cli, [*base, *twice, "--rechoose"])
    assert result.exit_code == 2 and "drop --rechoose" in result.output


def test_models_of_another_graph_are_not_averaged(pair, tmp_path):
    first, _ = pair
    model = onnx.load(str(first / "model.onnx"))
    del model.graph.node[-1]
    other = tmp_path / "other.onnx"
    other.write_bytes(model.SerializeToString())
    with pytest.raises(ReaderError, match="is not the graph of"):
        average_models([first / "model.onnx", other], tmp_path / "m.onnx")
