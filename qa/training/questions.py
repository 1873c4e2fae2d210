"""``qa train --questions``: the question encoder (see ``qa/questions.py``), reproduced from
``train/`` in one command.

1. Check every label of the corpus and embed every document's sentences with the embedding
   model, as the index keeps them (with their context).
2. Fine-tune the embedding model on the question side only (seeded, CPU), its word
   embeddings frozen: each training question is pulled towards the vector of its answering
   sentence and away from every other sentence of its document and of the other documents
   in its batch (a softmax over them, as in a dual encoder's in-batch training).
3. Print, after each epoch, how often retrieval (the service's hybrid search) puts the
   answering sentence among the first 1, 3 and 10 of the validation documents.
4. Export it to ONNX, quantise its matrix products to int8, leave its word embeddings out
   of the file, and measure the exported model as the service runs it.
5. Write the model, its tokenizer and its card into the output folder (atomically).
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DEFAULT_QUESTIONS
from ..corpus import CorpusError, Example, load_corpus
from ..embed import Embedder
from ..index import Index
from ..lexical import LexicalIndex
from ..questions import FILES, embeddings_sha256, load_question_runner, word_embeddings
from ..runner import BUNDLED_NAMES, CORES, ModelError
from ..versions import package_versions
from .card import write_card
from .data import ask_all, document_indexes, subset
from .folders import replace_folder, work_folder
from .provenance import corpus_hashes, training_documents

WORDS = "embeddings.word_embeddings.weight"  # the word embeddings, in the model's weights


@dataclass(frozen=True)
class QuestionSettings:
    """What a run of ``qa train --questions`` can vary, with the defaults that made the
    shipped encoder (chosen on validation: docs/reader.md, "The question encoder")."""

    corpus: Path = Path("train")
    out: Path = DEFAULT_QUESTIONS
    seed: int = 13
    epochs: int = 2
    batch_size: int = 32
    lr: float = 2e-5
    scale: float = 20.0  # similarities are multiplied by this before the softmax
    max_seq_length: int = 64  # tokens of a question
    max_steps: int = 0  # stop after this many steps (0: every epoch); for tests
    limit_questions: int = 0  # use only this many questions of each split; for tests
    threads: int = CORES  # torch's threads to fit with


class _Questions:
    """The model being trained, as an Embedder of questions (for ``ask_all``)."""

    def __init__(self, model: Any):
        self.model = model

    def encode_questions(self, texts: list[str]) -> np.ndarray:
        self.model.eval()
        vectors: np.ndarray = self.model.encode(
            texts, batch_size=128, convert_to_numpy=True, normalize_embeddings=True
        )
        return vectors


def recall(
    examples: list[Example],
    indexes: dict[str, tuple[Index, LexicalIndex]],
    questions: Any,
    ks: Sequence[int] = (1, 3, 10),
) -> dict[str, float]:
    """How often the service's retrieval, with ``questions`` embedding the questions, puts
    each example's answering sentence among the first k of its document."""
    asked = ask_all(examples, indexes, questions, max(ks))
    ranks = [
        next((r for r, h in enumerate(a.hits) if h.sentence.index == a.example.sentence), None)
        for a in asked
    ]
    return {
        f"recall@{k}": round(sum(r is not None and r < k for r in ranks) / max(len(ranks), 1), 4)
        for k in ks
    }


def check_model(model: str) -> None:
    """ModelError unless ``model`` is the bundled one, whose export is assumed here (mean
    pooling, token types, BERT's weight names)."""
    if model not in BUNDLED_NAMES:
        raise ModelError(
            f"qa train --questions trains a question encoder for the bundled "
            f"all-MiniLM-L6-v2 only, not {model!r}: with another embedding model, "
            "questions are embedded by that model (QA_QUESTIONS=off)"
        )


def train_questions(
    settings: QuestionSettings,
    embedder: Embedder,
    model: str,
    model_path: str,
    log: Callable[[str], None] = print,
    command: str = "qa train --questions",
) -> dict[str, Any]:
    """Train, export and write the question encoder for the embedding model ``model`` (at
    ``model_path``; ``embedder`` embeds its documents); its card."""
    check_model(model)
    import torch

    from ..export import export_meta, hidden_states, load_sentence_transformer
    from ..onnxgraph import drop_nan_guards
    from .export import export_onnx, quantize

    started = time.perf_counter()
    rng = random.Random(settings.seed)
    np.random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    corpus = load_corpus(settings.corpus)
    train_ex = subset(
        [e for e in corpus.split("train") if e.answerable], settings.limit_questions, rng
    )
    val_ex = subset(
        [e for e in corpus.split("validation") if e.answerable], settings.limit_questions, rng
    )
    if not train_ex or not val_ex:
        raise CorpusError(
            f"{settings.corpus}: the question encoder needs answerable questions about both "
            "training and validation documents"
        )
    log(
        f"corpus: {len(corpus.documents)} documents; training on {len(train_ex)} answerable "
        f"questions, validating on {len(val_ex)}"
    )
    indexes = document_indexes(corpus, embedder)  # the documents' side, as the index has it
    sentences = {
        doc: torch.from_numpy(index.vectors.reconstruct_n(0, index.vectors.ntotal))
        for doc, (index, _) in indexes.items()
    }
    st = load_sentence_transformer(model)
    st.max_seq_length = settings.max_seq_length
    transformer: Any = st[0].auto_model
    words: Any = transformer.embeddings.word_embeddings.weight
    words.requires_grad_(False)  # the shipped file leaves them out: they must stay the model's
    # ... and the loader reads them from the model's weights file: the same matrix
    words_sha256 = embeddings_sha256(words.detach().numpy())
    if embeddings_sha256(word_embeddings(model, WORDS)) != words_sha256:
        raise ModelError(f"the word embeddings {WORDS!r} of {model!r} are not the model's own")
    questions = _Questions(st)
    figures: dict[str, Any] = {"validation": {"start": recall(val_ex, indexes, questions)}}
    log(f"validation before training: {json.dumps(figures['validation']['start'])}")

    tokenize = getattr(st, "preprocess", None) or st.tokenize  # renamed in 5.x
    trained = [p for p in st.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=settings.lr, weight_decay=0.01)
    per_epoch = -(-len(train_ex) // settings.batch_size)
    total = settings.epochs * per_epoch
    if settings.max_steps:
        total = min(total, settings.max_steps)
    warmup = max(1, total // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / total)
    )
    step, epochs, fit_threads = 0, [], settings.threads
    for epoch in range(1, settings.epochs + 1):
        if step >= total:
            break
        # retrieval's FAISS searches may set the OpenMP threads torch shares to one
        torch.set_num_threads(settings.threads)
        fit_threads = torch.get_num_threads()
        st.train()
        order = list(train_ex)
        rng.shuffle(order)
        loss_sum, seen = 0.0, 0
        for start in range(0, len(order), settings.batch_size):
            if step >= total:
                break
            batch = order[start : start + settings.batch_size]
            docs = list(dict.fromkeys(e.doc for e in batch))
            first = dict(
                zip(docs, np.cumsum([0] + [len(sentences[d]) for d in docs]), strict=False)
            )
            candidates = torch.cat([sentences[d] for d in docs])
            target = torch.tensor([int(first[e.doc]) + int(e.sentence or 0) for e in batch])
            vectors = st(tokenize([e.question for e in batch]))["sentence_embedding"]
            vectors = torch.nn.functional.normalize(vectors, dim=-1)
            loss = torch.nn.functional.cross_entropy(
                settings.scale * vectors @ candidates.T, target
            )
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            loss_sum += loss.item() * len(batch)
            seen += len(batch)
        found = recall(val_ex, indexes, questions)
        epochs.append({"epoch": epoch, "loss": round(loss_sum / max(seen, 1), 4), **found})
        log(f"validation after epoch {epoch}: loss {epochs[-1]['loss']}, {json.dumps(found)}")
    figures["validation"]["epochs"] = epochs

    out = Path(settings.out)
    with work_folder(out, "training") as work:
        fp32 = export_onnx(
            hidden_states(transformer), work / "model-fp32.onnx", ["last_hidden_state"]
        )
        drop_nan_guards(fp32)
        quantize(fp32, work / "model-int8.onnx", ops=("MatMul",))
        fp32.unlink()
        initializer = _leave_out_words(work / "model-int8.onnx", work / "model.onnx", words)
        (work / "model-int8.onnx").unlink()
        shutil.copy(Path(model_path) / "tokenizer.json", work / "tokenizer.json")
        meta = export_meta(f"{model} (question encoder)", st, "mean", True)
        (work / "qa-onnx.json").write_text(json.dumps({**meta, "int8": True}, indent=2))
        card: dict[str, Any] = {
            "name": "qa question encoder",
            "base_model": f"{model} ({model_path})",
            "architecture": "the embedding model's transformer and mean pooling, fine-tuned "
            "on the question side only; documents keep the embedding model's vectors",
            "quantization": "dynamic int8 (MatMul weights, per channel); the word embeddings "
            "are the embedding model's own, left out of the file",
            "word_embeddings": {
                "model": model,
                "key": WORDS,
                "initializer": initializer,
                "shape": list(words.shape),
                "sha256": words_sha256,  # frozen: the same after training
            },
            "training": {
                **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(settings).items()},
                "command": command,
                "steps": step,
                "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                "torch_threads": fit_threads,
            },
            "data": {
                "corpus": str(settings.corpus),
                "documents": len(corpus.documents),
                "train_questions": len(train_ex),
                "training_documents": training_documents(corpus),
                "validation_documents": sorted(corpus.validation),
                "validation_questions": len(val_ex),
                "sha256": corpus_hashes(corpus.root),
            },
            "figures": figures,
            "versions": package_versions(
                {n: n for n in ("qa", "torch", "transformers", "onnx", "onnxruntime", "tokenizers")}
                | {"sentence-transformers": "sentence-transformers"}
            ),
        }
        write_card(work, card, FILES, readme=False)  # so that the export loads, to measure
        runner, _ = load_question_runner(work, model, 1)
        figures["validation"]["exported"] = recall(val_ex, indexes, _Exported(runner))
        log(f"validation, exported (int8): {json.dumps(figures['validation']['exported'])}")
        card["training"]["seconds"] = round(time.perf_counter() - started, 1)
        card = write_card(work, card, FILES, readme=False)
        replace_folder(work, out)
    log(f"wrote the question encoder to {out}")
    return card


class _Exported:
    """An exported encoder's runner as an Embedder of questions (one question a run, as
    the service runs the int8 model)."""

    def __init__(self, runner: Any):
        self.runner = runner

    def encode_questions(self, texts: list[str]) -> np.ndarray:
        vectors: np.ndarray = self.runner.encode(texts, 64, None, questions=True)
        return vectors


def _leave_out_words(source: Path, target: Path, words: Any) -> str:
    """Write ``source`` to ``target`` with the word-embedding matrix (found by its shape
    and values) stored as an external initializer that the loader supplies; its name."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(source))
    expected = words.detach().numpy()
    matches = [
        t
        for t in graph.graph.initializer
        if list(t.dims) == list(expected.shape)
        and np.array_equal(numpy_helper.to_array(t), expected)
    ]
    if len(matches) != 1:
        raise RuntimeError(f"expected one word-embedding matrix in {source}, found {len(matches)}")
    tensor = matches[0]
    size = len(tensor.raw_data)
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", "word-embeddings"), ("offset", "0"), ("length", str(size))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    onnx.save_model(graph, str(target))
    return str(tensor.name)
