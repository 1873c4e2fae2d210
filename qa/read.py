"""The reader: a trained cross-encoder that finds the answer span in candidate sentences and
says how much better that span is than no answer. Served with ONNX Runtime only (no torch).

A reader is a folder (``qa/models/reader/`` ships with the package; ``qa train`` writes
one): ``model.onnx``, ``tokenizer.json`` and ``card.json``, the model card, which records
how it was trained, its figures, the settings it was validated with (token budgets, how
many sentences to read, the no-answer threshold, the confidence calibration) and the
sha256 of every file. Each file is checked against the card when the reader loads.
"""

from __future__ import annotations

import copy
import hashlib
import math
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from .cards import load_card, verify_files
from .config import DEFAULT_READER, TABLE_ROWS, Config, table_reading
from .decide import RIGHT_INPUTS, Decider
from .errors import QAError
from .features import Batch, Candidate, Featurizer, Limits, Reading, read_spans
from .rank import Ranker
from .runner import CORES, ort_session, serve_signed

FILES = ("model.onnx", "tokenizer.json")
# the rows on which the served model must give the file's logits bit for bit (serving_model)
CHECK = (
    "How many vehicles cross the bridge each day, and since when?",
    [
        Candidate("The bridge, opened in 1932, carries 160,000 vehicles a day."),
        Candidate(
            "Its engineer said the arch would outlast every building in the city.",
            "The bridge, opened in 1932, carries 160,000 vehicles a day.",
        ),
        Candidate("Tolls were first charged at sixpence for a car and threepence for a horse."),
    ],
)


class ReaderError(QAError):
    """The reader cannot be loaded; the message names the file and what to do."""


@dataclass(frozen=True)
class Further:
    """When the first N sentences leave the decider unsure, the next N are read too: a first
    batch whose score is at least ``below`` but under the threshold is not decided on; the
    2N readings are, by a decider fitted on 2N readings (None: the best margin) against
    ``threshold``, with confidence curves of their own. All chosen on validation."""

    below: float  # the first batch's score from which the next batch is read
    threshold: float
    answer: tuple[float, float]  # confidence of an answer: sigmoid(a * score + b)
    abstain: tuple[float, float]
    decider: Decider | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Further:
        """ValueError when the card's ``further`` is ill-formed or not finite."""
        if not isinstance(d, dict):
            raise ValueError("its further reading is not an object")
        decider = d.get("decider")
        if "decider" in d and not isinstance(decider, dict):
            raise ValueError("its further reading's decider is not an object")
        c = d["calibration"]
        answer = (float(c["answer"][0]), float(c["answer"][1]))
        abstain = (float(c["abstain"][0]), float(c["abstain"][1]))
        numbers = [float(d["below"]), float(d["threshold"]), *answer, *abstain]
        if not all(math.isfinite(x) for x in numbers):
            raise ValueError("its further reading's settings are not finite numbers")
        return cls(
            numbers[0],
            numbers[1],
            answer,
            abstain,
            Decider.from_dict(decider) if decider is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "below": round(self.below, 4),
            "threshold": round(self.threshold, 4),
            "calibration": {"answer": list(self.answer), "abstain": list(self.abstain)},
            **({"decider": self.decider.to_dict()} if self.decider else {}),
        }

    def confidence(self, score: float, answered: bool, features: Sequence[float] = ()) -> float:
        """As ``Settings.confidence``; the second batch's curves read the score alone."""
        a, b = self.answer if answered else self.abstain
        return _sigmoid(a * score + b)


@dataclass(frozen=True)
class Settings:
    """What the reader was validated with, read from its model card."""

    candidates: int  # sentences read for each question
    threshold: float  # the decider's score (or the margin) under which nothing answers
    answer_scale: float  # an answer's: sigmoid(scale * score + bias), without ``right``
    answer_bias: float
    abstain_scale: float  # confidence of "the documents do not say", on the same score
    abstain_bias: float
    slack: float = 0.0  # spans within this of the best widen the answer (see read_spans)
    decider: Decider | None = None  # None: the best margin alone decides
    citation: tuple[float, float] | None = None  # a citation's score from its margin
    further: Further | None = None  # None: only the first N sentences are ever decided on
    ranker: Ranker | None = None  # None: the sentences are read in the fused order
    right: Decider | None = None  # an answer's confidence from RIGHT_INPUTS (None: the score)
    table_rows: str = TABLE_ROWS[0]  # how it reads a Markdown table row (Config.table_rows)

    @classmethod
    def from_card(cls, card: dict[str, Any]) -> Settings:
        c = card["calibration"]
        decider, ranker = card.get("decider"), card.get("ranker")
        if "decider" in card and not isinstance(decider, dict):
            raise ValueError("its decider is not an object")  # not silently the margin alone
        if "ranker" in card and not isinstance(ranker, dict):
            raise ValueError("its ranker is not an object")
        right = c.get("right")
        if "right" in c and not isinstance(right, dict):
            raise ValueError("its answer curve is not an object")
        citation = c.get("citation")
        table_rows = table_reading("", card)
        if table_rows not in TABLE_ROWS:
            raise ValueError(f"it reads table rows in an unknown way: {table_rows!r}")
        numbers = [card["threshold"], *c["answer"], *c["abstain"], *(citation or ())]
        if not all(math.isfinite(float(x)) for x in numbers):
            raise ValueError("its threshold or a confidence curve is not a finite number")
        return cls(
            int(card["candidates"]),
            float(card["threshold"]),
            float(c["answer"][0]),
            float(c["answer"][1]),
            float(c["abstain"][0]),
            float(c["abstain"][1]),
            float(card.get("slack", 0.0)),
            Decider.from_dict(decider) if decider is not None else None,
            (float(citation[0]), float(citation[1])) if citation is not None else None,
            Further.from_dict(card["further"]) if "further" in card else None,
            Ranker.from_dict(ranker) if ranker is not None else None,
            Decider.from_dict(right, RIGHT_INPUTS, "answer curve") if right is not None else None,
            table_rows,
        )

    def confidence(self, score: float, answered: bool, features: Sequence[float] = ()) -> float:
        """The probability that an answer is right, or that the documents indeed do not
        answer, from the score the threshold judged (``Decision.score``). With a ``right``
        curve and the best span's ``features`` (``Decision.features``), an answer's is
        read from both: the inputs weighed for "this span is right", not only for "the
        documents answer"."""
        if answered and self.right is not None and len(features):
            return _sigmoid(self.right.score([*features, score]))
        a, b = (
            (self.answer_scale, self.answer_bias)
            if answered
            else (self.abstain_scale, self.abstain_bias)
        )
        return _sigmoid(a * score + b)

    def citation_score(self, margin: float) -> float:
        """A cited sentence's score: the probability that its best span is right, from its
        margin (a card without a citation curve reads it off the answer curve)."""
        if self.citation is None:
            return self.confidence(margin, answered=True)
        return _sigmoid(self.citation[0] * margin + self.citation[1])


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z)) if z > -50 else 0.0


class Reader(Protocol):
    """Anything that reads candidate sentences for a question."""

    name: str
    settings: Settings

    def read(
        self,
        question: str,
        candidates: Sequence[Candidate],
        last_question: str = "",
        last_answer: str = "",
    ) -> list[Reading]: ...


R = TypeVar("R", bound=Reader)


def with_slack(reader: R, slack: float) -> R:
    """A copy of ``reader`` (sharing its model) that widens answers by ``slack``."""
    widened = copy.copy(reader)
    widened.settings = replace(reader.settings, slack=slack)
    return widened


def _fail(problem: str) -> ReaderError:
    return ReaderError(
        f"{problem}: the reader cannot load; reinstall qa or retrain it with `qa train`"
    )


def read_card(folder: Path, settings: bool = True) -> tuple[dict[str, Any], str]:
    """The model card of the reader in ``folder`` and its hash (which names the reader);
    without ``settings``, its settings are not checked (they are about to be chosen again)."""

    def check(card: dict[str, Any]) -> None:
        if settings:
            Settings.from_card(card)  # every setting the service reads is there, well-formed

    return load_card(folder, check, _fail)


def verify(folder: Path, card: dict[str, Any]) -> None:
    """ReaderError naming the first file that is missing or does not match its checksum."""
    verify_files(folder, card, FILES, _fail)


class BatchReader:
    """A Reader that reads each candidate in a run of its own: the subclass gives ``run``,
    from a batch to its start and end logits (and may run a question's rows at once)."""

    featurizer: Featurizer
    settings: Settings
    name: str

    def run(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def read(
        self,
        question: str,
        candidates: Sequence[Candidate],
        last_question: str = "",
        last_answer: str = "",
    ) -> list[Reading]:
        """Each candidate read in a run of its own, unpadded: a sentence's reading depends
        only on the question and that sentence, never on the sentences read beside it
        (dynamic int8 scales a run's activations by the whole input, padding included)."""
        if not candidates:
            return []
        rows = self.featurizer.encode(question, candidates, last_question, last_answer).rows()
        out: list[Reading] = []
        for row, (start, end) in zip(rows, self.run_rows(rows), strict=True):
            out += read_spans(start, end, row, self.featurizer.limits.span, self.settings.slack)
        return out

    def run_rows(self, rows: Sequence[Batch]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The logits of each row, a run each."""
        return [self.run(row) for row in rows]


def serving_model(path: Path, featurizer: Featurizer) -> Path | bytes:
    """The reader's model as this CPU serves it (``runner.serve_signed``): its weights as
    int8 where that gives the file's logits bit for bit on the rows of ``CHECK`` (made by
    ``featurizer``), else the file."""
    return serve_signed(path, lambda: [row.feeds() for row in featurizer.encode(*CHECK).rows()])


class OnnxReader(BatchReader):
    """The reader in ONNX Runtime. A question alone gets every core; concurrent questions
    each run on one thread, side by side."""

    def __init__(self, folder: Path | str = DEFAULT_READER, threads: int = 1):
        folder = Path(folder)
        self.folder = folder
        self.card, self.name = read_card(folder)
        verify(folder, self.card)
        self.settings = Settings.from_card(self.card)
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            self.featurizer = Featurizer(tokenizer, Limits.from_dict(self.card.get("limits", {})))
            # the model file, or its weights as int8 where that gives the same numbers
            self.served = serving_model(folder / "model.onnx", self.featurizer)
            self._shared = ort_session(self.served, max(1, threads))
            self._alone = ort_session(self.served, max(threads, CORES))
        except ReaderError:
            raise
        except Exception as exc:  # onnxruntime and tokenizers raise their own kinds
            raise ReaderError(f"the reader in {folder} cannot load ({exc}); retrain it") from exc
        self._lock = threading.Lock()
        self._running = 0
        # a question alone reads its rows side by side, one thread each (when runs take one)
        self._side_by_side = max(threads, 1) == 1 and CORES > 1
        self._pool: ThreadPoolExecutor | None = None

    def run(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """Start and end logits of a batch, in one run."""
        with self._lock:
            alone = self._running == 0
            self._running += 1
        return self._run(self._alone if alone else self._shared, batch)

    def _run(self, session: Any, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """A run counted in ``_running`` (by the caller), uncounted when it ends."""
        try:
            start, end = session.run(None, batch.feeds())
        finally:
            with self._lock:
                self._running -= 1
        return start, end

    def run_rows(self, rows: Sequence[Batch]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The logits of each row, a run each. A question alone runs its rows side by side
        on one thread each, the longest first (a question's reading 17.6 ms against 20.3
        with its rows one after another on both threads, on 2 AVX2 cores); under load, one
        after another on one thread. The logits are the same either way."""
        with self._lock:
            alone = self._running == 0 and self._side_by_side and len(rows) > 1
            if alone:
                self._running += len(rows)
        if not alone:
            return [self.run(row) for row in rows]
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(CORES, thread_name_prefix="qa-reader")
        longest = sorted(range(len(rows)), key=lambda i: -rows[i].ids.shape[1])
        done: list[Future[tuple[np.ndarray, np.ndarray]]] = []
        try:
            for i in longest:
                done.append(self._pool.submit(self._run, self._shared, rows[i]))
        except BaseException:  # (a pool that cannot start a thread) the rest never ran
            with self._lock:
                self._running -= len(rows) - len(done)
            wait(done)
            raise
        wait(done)  # every run ended (and counted out) before any error is raised
        out: list[tuple[np.ndarray, np.ndarray]] = [(np.empty(0), np.empty(0))] * len(rows)
        for i, future in zip(longest, done, strict=True):
            out[i] = future.result()
        return out


class RememberingReader(BatchReader):
    """``reader`` (sharing its model) that runs each distinct batch once and remembers its
    logits. Choosing a reader's settings reads the same sentences again for each slack,
    and a slack changes only the span search after the run (``read_spans``): its copies
    by ``with_slack`` share the memory, so each further slack costs no model run. The
    logits are the same numbers: ONNX Runtime gives a batch the same outputs every run.
    For choosing (one thread), not serving; the logits it hands out are read-only."""

    def __init__(self, reader: BatchReader):
        self.featurizer = reader.featurizer
        self.settings = reader.settings
        self.name = reader.name
        self._run = reader.run
        self._memo: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def run(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        key = hashlib.sha256()
        for array in (batch.ids, batch.mask, batch.types):
            key.update(str(array.shape).encode())
            key.update(np.ascontiguousarray(array).tobytes())
        digest = key.digest()
        if digest not in self._memo:
            start, end = self._run(batch)
            start.setflags(write=False)
            end.setflags(write=False)
            self._memo[digest] = start, end
        return self._memo[digest]


@lru_cache(maxsize=4)
def _load(folder: Path, threads: int) -> OnnxReader:
    return OnnxReader(folder, threads)


def load_reader(config: Config) -> OnnxReader:
    """One reader per folder and process (QA_READER; by default the one in the package)."""
    folder = Path(config.reader).resolve()
    try:
        return _load(folder, config.embed_threads)
    except ReaderError as exc:
        if folder == Path(DEFAULT_READER).resolve():
            raise
        # another folder than the package's was asked for: say where that came from
        raise ReaderError(f"{exc} (the reader set by QA_READER: {config.reader})") from None
