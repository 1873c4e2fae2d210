"""Small helpers shared by the tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa.build import build_index
from qa.config import Config

# the kind of text the training commands' tests train on (see conftest.tiny_corpus)
TINY_KIND = "news-crime"


def build(seeds: Path, index: Path, embedder, progress=None, **settings):
    """Build the index of ``seeds`` into ``index`` with the default configuration (and
    any ``settings`` given)."""
    config = Config(seeds_dir=Path(seeds), index_dir=Path(index), **settings)
    return build_index(config, embedder, progress=progress)


def refuses_damaged_files(model: Path, copy: Path, load, error) -> None:
    """A copy of the model folder ``model`` with its model.onnx damaged, then with its
    tokenizer.json missing, is refused by ``load(copy)`` with ``error`` naming the file (the
    copy is left without its tokenizer)."""
    shutil.copytree(model, copy)
    with open(copy / "model.onnx", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(error, match="model.onnx is damaged"):
        load(copy)
    shutil.copy(model / "model.onnx", copy / "model.onnx")
    (copy / "tokenizer.json").unlink()
    with pytest.raises(error, match="tokenizer.json is missing"):
        load(copy)
