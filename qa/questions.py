"""The question encoder: the bundled all-MiniLM-L6-v2 fine-tuned on the question side only,
to put a question near the sentence that answers it (``qa train --questions``).

Documents keep the embedding model's own vectors, so an index, and every document a user
adds, is embedded as before; only the questions go through this model. Retrieval is
asymmetric, as in a dual encoder: the question side learned from the corpus's questions
where the answer is, against the index's vectors.

A question encoder is a folder (``qa/models/questions/`` ships with the package):

- ``model.onnx``: the transformer, its matrix products in dynamic int8 (weights stored as
  uint8, exact on every x86 kernel, and served as int8 where that gives the same vectors:
  ``serving_model``, as the reader's). Its word
  embeddings were frozen in training, so they are the embedding model's own: the file
  leaves them out (an external initializer), and they are taken from the embedding model
  when the encoder loads. That keeps the shipped file at 12 MB instead of 58.
- ``tokenizer.json`` and ``qa-onnx.json`` (pooling, length), as in an embedding export;
- ``card.json``: how it was trained, its figures, the sha256 of every file and of the word
  embeddings it expects. A missing or damaged file, or an embedding model with other word
  embeddings, is refused at start with one line that says what to do.

``QA_QUESTIONS``: ``auto`` (the default: the shipped encoder, when the embedding model is
the bundled one), ``off`` (questions embedded by the embedding model, as documents are), or
the folder of one that ``qa train --questions`` wrote.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .cards import CARD, load_card, verify_files
from .config import DEFAULT_QUESTIONS, Config
from .runner import (
    BUNDLED_NAMES,
    ModelError,
    OnnxRunner,
    load_tokenizer,
    model_feeds,
    resolve_model,
    serve_signed,
)

FILES = ("model.onnx", "tokenizer.json", "qa-onnx.json")
# the questions on which the served model must give the file's outputs bit for bit
CHECK = (
    "How many vehicles cross the bridge each day, and since when?",
    "Who said the arch would outlast every building in the city?",
    "what did the council decide about the 2025 budget",
)
WEIGHTS = "model.safetensors"  # where a sentence-transformers folder keeps its weights


def question_folder(config: Config) -> Path | None:
    """The question encoder that ``config`` names (QA_QUESTIONS), or None: questions are
    then embedded by the embedding model itself."""
    choice = str(config.questions).strip()
    if choice.lower() == "off":
        return None
    if choice.lower() == "auto":
        shipped = (DEFAULT_QUESTIONS / CARD).exists() and config.model in BUNDLED_NAMES
        return DEFAULT_QUESTIONS if shipped else None
    return Path(choice)


def _fail(problem: str) -> ModelError:
    return ModelError(
        f"{problem}: the question encoder cannot load; reinstall qa, retrain it with "
        "`qa train --questions`, or set QA_QUESTIONS=off"
    )


def read_card(folder: Path) -> tuple[dict[str, Any], str]:
    """The card of the question encoder in ``folder`` and its hash (which names it)."""

    def check(card: dict[str, Any]) -> None:
        spec = card["word_embeddings"]
        if not all(isinstance(spec[k], str) for k in ("key", "sha256", "initializer")):
            raise TypeError("word_embeddings")

    return load_card(folder, check, _fail)


def word_embeddings(model: str, key: str) -> np.ndarray:
    """The word-embedding matrix ``key`` of the sentence-transformers model ``model``, read
    from its safetensors file (no torch)."""
    path = Path(resolve_model(model)) / WEIGHTS
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            return np.ascontiguousarray(f.get_tensor(key), dtype=np.float32)
    except Exception as exc:  # a missing file or key, or a format it cannot read
        raise ModelError(
            f"cannot read the word embeddings {key!r} of the embedding model {model!r} "
            f"from {path} ({exc}): set QA_QUESTIONS=off"
        ) from exc


def embeddings_sha256(matrix: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(matrix, dtype="<f4").tobytes()).hexdigest()


def encoder_initializers(folder: Path, card: dict[str, Any], model: str) -> dict[str, np.ndarray]:
    """The weights the encoder's file leaves out: the word embeddings of the embedding model
    ``model``, checked against the ones it was trained with (its card)."""
    spec = card["word_embeddings"]
    matrix = word_embeddings(model, spec["key"])
    if embeddings_sha256(matrix) != spec["sha256"]:
        raise ModelError(
            f"the question encoder in {folder} was trained with the word embeddings of "
            f"{spec.get('model', 'another model')}, and the embedding model {model!r} has "
            "others: set QA_QUESTIONS=off, or train one for this model with "
            "`qa train --questions`"
        )
    return {spec["initializer"]: matrix}


def load_question_runner(folder: Path, model: str, threads: int) -> tuple[OnnxRunner, str]:
    """The question encoder in ``folder``, paired with the embedding model ``model`` (whose
    word embeddings it runs with), and its name."""
    folder = Path(folder)
    card, name = read_card(folder)
    verify_files(folder, card, FILES, _fail)
    initializers = encoder_initializers(folder, card, model)
    try:
        served = serving_model(folder, initializers)
        runner = OnnxRunner(folder, threads, initializers=initializers, served=served)
    except Exception as exc:  # onnxruntime and tokenizers raise their own kinds
        raise _fail(f"{folder / 'model.onnx'} does not run ({exc})") from exc
    return runner, name


def question_feeds(folder: Path, texts: list[str]) -> list[dict[str, np.ndarray]]:
    """The encoder's inputs for each of ``texts``, one question a run, as questions are
    served (for checks and the benchmark, which run its sessions directly)."""
    meta = json.loads((folder / "qa-onnx.json").read_text())
    encodings = load_tokenizer(folder, meta).encode_batch(texts)
    return [model_feeds([encoding], meta) for encoding in encodings]


def serving_model(folder: Path, initializers: Mapping[str, np.ndarray]) -> Path | bytes:
    """The encoder's model as this CPU serves it (``runner.serve_signed``): its weights as
    int8 where that gives the file's outputs bit for bit on ``CHECK``, each question a run
    as questions are served, else the file."""
    return serve_signed(
        folder / "model.onnx", lambda: question_feeds(folder, list(CHECK)), initializers
    )
