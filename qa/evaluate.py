"""Scoring a question set with the metrics of ``shared/eval/README.md``.

A question set is JSON lines: ``id``, ``turns`` (only the last is scored; earlier ones are
asked first and sent back as history with the service's own answers), ``answerable``,
``support`` (strings in the supporting sentence) and ``answer`` (acceptable answers).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .files import jsonl_files

if TYPE_CHECKING:
    from .engine import Engine

# ask(question, history) -> the JSON answer as a dict; history is [{"question", "answer"}]
AskFn = Callable[[str, list[dict[str, Any]]], dict[str, Any]]

MAX_ANSWER_CHARS = 300
MAX_CITATION_CHARS = 400
METRICS = (
    "support@1",
    "support@3",
    "answer_hit",
    "false_abstain",
    "abstain",
    "followup",
    "answer_chars_median",
)


@dataclass(frozen=True)
class Item:
    id: str
    turns: tuple[str, ...]
    answerable: bool
    support: tuple[str, ...] = ()
    answer: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    item: Item
    response: dict[str, Any]
    supported_at_1: bool
    supported_at_3: bool
    hit: bool

    @property
    def abstained(self) -> bool:
        return self.response.get("answer") is None

    @property
    def correct(self) -> bool:
        if not self.item.answerable:
            return self.abstained
        return self.supported_at_1 and self.hit


@dataclass(frozen=True)
class Report:
    metrics: dict[str, float | None]
    counts: dict[str, int]
    outcomes: tuple[Outcome, ...] = field(repr=False, default=())

    def misses(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.correct]

    def confidences(self) -> tuple[list[tuple[float, bool]], list[tuple[float, bool]]]:
        """(confidence, right) of each answer given (right: answerable and hit), and of each
        abstention (right: the question is indeed unanswerable)."""
        answered, withheld = [], []
        for o in self.outcomes:
            c = float(o.response["confidence"])
            if o.abstained:
                withheld.append((c, not o.item.answerable))
            else:
                answered.append((c, o.item.answerable and o.hit))
        return answered, withheld

    def to_dict(self) -> dict[str, Any]:
        answered, withheld = self.confidences()
        return {
            "metrics": self.metrics,
            "counts": self.counts,
            "reliability": reliability(answered),
            "reliability_abstentions": reliability(withheld),
            "misses": [
                {
                    "id": o.item.id,
                    "question": o.item.turns[-1],
                    "answer": o.response.get("answer"),
                    "first_citation": (o.response.get("citations") or [{}])[0].get("text"),
                }
                for o in self.misses()
            ],
        }


def reliability(
    pairs: Sequence[tuple[float, bool]],
    edges: Sequence[float] = (0.0, 0.5, 0.7, 0.8, 0.9, 1.0),
) -> list[dict[str, Any]]:
    """Rows of (bin, count, mean confidence, share right) for (confidence, right) pairs: how
    often what ``confidence`` promises comes true."""
    rows = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        inside = [(c, r) for c, r in pairs if lo <= c < hi or (hi == 1.0 and c == 1.0)]
        if inside:
            rows.append(
                {
                    "bin": f"{lo:.1f}-{hi:.1f}",
                    "count": len(inside),
                    "confidence": round(statistics.fmean(c for c, _ in inside), 3),
                    "right": round(statistics.fmean(float(r) for _, r in inside), 3),
                }
            )
    return rows


def _strings(row: dict[str, Any], key: str, required: bool) -> tuple[str, ...]:
    """``row[key]`` as a tuple of non-empty strings, or ValueError saying what it must be
    (an empty string would match every answer, a lone string letter by letter)."""
    value = row[key] if required else row.get(key, [])
    if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
        raise ValueError(f"{key!r} must be a list of non-empty strings")
    if required and not value:
        raise ValueError(f"{key!r} must hold at least one question")
    return tuple(value)


def load_items(path: str | Path) -> list[Item]:
    """The questions of a ``shared/eval`` set: a ``.jsonl`` file, or a folder of them at any
    depth (a labelled corpus's ``questions/``, read in path order, hidden ones left out,
    each id once in all); ValueError
    naming the file, the line and what is wrong with it. (A byte-order mark before the
    first line is allowed.)"""
    if Path(path).is_dir():
        files = jsonl_files(Path(path))  # as a corpus's questions/ are read
        if not files:
            raise ValueError(f"{path}: a folder of questions needs .jsonl files")
        items: list[Item] = []
        where: dict[str, Path] = {}
        for file in files:
            for item in _load_file(file):
                if item.id in where:
                    raise ValueError(f"{file}: id {item.id!r} is already an id in {where[item.id]}")
                where[item.id] = file
                items.append(item)
        return items
    return _load_file(path)


def _load_file(path: str | Path) -> list[Item]:
    items = []
    seen: dict[str, int] = {}
    with open(path, "rb") as f:
        data = f.read()
    for n, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), 1):
        try:
            line = raw.decode("utf-8")
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("a line must be a JSON object")
            if not isinstance(row["id"], str) or not row["id"].strip():
                raise ValueError("'id' must be a non-empty string")
            if row["id"] in seen:
                raise ValueError(f"id {row['id']!r} is already the id of line {seen[row['id']]}")
            if not isinstance(row["answerable"], bool):
                raise ValueError("'answerable' must be true or false")
            item = Item(
                row["id"],
                _strings(row, "turns", True),
                row["answerable"],
                _strings(row, "support", False),
                _strings(row, "answer", False),
            )
            if item.answerable and not (item.support and item.answer):
                raise ValueError("an answerable question needs its 'support' and 'answer'")
            for text in (*item.turns, *item.support, *item.answer):
                text.encode("utf-8")  # JSON's "\ud800" is no character
        except KeyError as exc:
            raise ValueError(f"{path}:{n}: not a question-set line (no {exc})") from exc
        except (UnicodeDecodeError, UnicodeEncodeError) as exc:
            raise ValueError(
                f"{path}:{n}: not a question-set line (not text: {exc.reason})"
            ) from exc
        except ValueError as exc:  # json.JSONDecodeError too
            raise ValueError(f"{path}:{n}: not a question-set line ({exc})") from exc
        seen[item.id] = n
        items.append(item)
    return items


def _contains(text: str, wanted: tuple[str, ...]) -> bool:
    """Whether ``text`` holds one of ``wanted``, case aside and any run of white space read
    as one space (a line break inside a wrapped Markdown paragraph shows as a space)."""
    seen = " ".join(text.lower().split())
    return any(" ".join(w.lower().split()) in seen for w in wanted)


def supports(citation: dict[str, Any], support: tuple[str, ...]) -> bool:
    text = citation.get("text") or ""
    if len(text) > MAX_CITATION_CHARS:
        return False
    return _contains(text, support)


def is_hit(answer: str | None, acceptable: tuple[str, ...]) -> bool:
    if answer is None or len(answer) > MAX_ANSWER_CHARS:
        return False
    return _contains(answer, acceptable)


def run_item(ask: AskFn, item: Item) -> Outcome:
    history: list[dict[str, Any]] = []
    for question in item.turns[:-1]:
        response = ask(question, history)
        history.append({"question": question, "answer": response.get("answer")})
    response = ask(item.turns[-1], history)
    citations = response.get("citations") or []
    return Outcome(
        item,
        response,
        supported_at_1=bool(citations) and supports(citations[0], item.support),
        supported_at_3=any(supports(c, item.support) for c in citations[:3]),
        hit=is_hit(response.get("answer"), item.answer),
    )


def score(outcomes: list[Outcome]) -> Report:
    answerable = [o for o in outcomes if o.item.answerable]
    unanswerable = [o for o in outcomes if not o.item.answerable]
    followups = [o for o in answerable if len(o.item.turns) > 1]

    def rate(xs: list[Outcome], pred: Callable[[Outcome], bool]) -> float | None:
        return round(sum(1 for x in xs if pred(x)) / len(xs), 4) if xs else None

    hit_lengths = [len(o.response["answer"]) for o in answerable if o.hit]
    metrics: dict[str, float | None] = {
        "support@1": rate(answerable, lambda o: o.supported_at_1),
        "support@3": rate(answerable, lambda o: o.supported_at_3),
        "answer_hit": rate(answerable, lambda o: o.hit),
        "false_abstain": rate(answerable, lambda o: o.abstained),
        "abstain": rate(unanswerable, lambda o: o.abstained),
        "followup": rate(followups, lambda o: o.supported_at_1 and o.hit),
        "answer_chars_median": statistics.median(hit_lengths) if hit_lengths else None,
    }
    counts = {
        "questions": len(outcomes),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "followup": len(followups),
    }
    return Report(metrics, counts, tuple(outcomes))


def evaluate(ask: AskFn, items: list[Item]) -> Report:
    outcomes = []
    for item in items:
        try:
            outcomes.append(run_item(ask, item))
        except AskError as exc:
            raise AskError(f"question {item.id!r}: {exc}") from exc
    return score(outcomes)


class AskError(ConnectionError):
    """A question the service (or the library, by the service's limits) did not answer."""


def library_asker(engine: Engine) -> AskFn:
    """Ask the library as the service is asked: a question or a history over the service's
    limits is refused (``Engine.ask`` checks them as the API does: ``AskError``)."""
    from .answer import QuestionError
    from .records import Turn

    def ask(question: str, history: list[dict[str, Any]]) -> dict[str, Any]:
        turns = [Turn(h["question"], h.get("answer")) for h in history]
        try:
            return engine.ask(question, history=turns).to_dict()
        except QuestionError as exc:
            raise AskError(f"refused: {exc}") from exc

    return ask


def http_asker(url: str, timeout: float = 30.0) -> AskFn:
    """Ask the server at ``url`` (its base address); ValueError when it is not an http or
    https URL with a host."""
    import urllib.error
    import urllib.parse
    import urllib.request

    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  (a port that is not a number raises here)
    except ValueError as exc:
        raise ValueError(f"{url!r} is not a URL ({exc})") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// address of a server")
    endpoint = url.rstrip("/") + "/api/ask"

    def ask(question: str, history: list[dict[str, Any]]) -> dict[str, Any]:
        body = json.dumps({"question": question, "history": history}).encode()
        request = urllib.request.Request(
            endpoint, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:
                answer: dict[str, Any] = json.loads(r.read())
                return answer
        except urllib.error.HTTPError as exc:
            raise AskError(f"{endpoint} answered {exc.code}: {_problem(exc.read())}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ConnectionError(f"cannot reach {endpoint}: {exc}") from exc

    return ask


def _problem(body: bytes) -> str:
    """What an error response says: its problem's ``detail``, or the start of its text."""
    text = body[:2000].decode("utf-8", "replace")
    try:
        detail = json.loads(text).get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail) if detail else text[:200].strip()


def check_thresholds(
    report: Report, minimums: dict[str, float], maximums: dict[str, float]
) -> list[str]:
    """The failed thresholds, as readable lines."""
    failures = []
    for name, bound in minimums.items():
        value = report.metrics.get(name)
        if value is None:
            failures.append(f"{name} is not measured: no question of the set counts for it")
        elif value < bound:
            failures.append(f"{name} = {value} is under {bound}")
    for name, bound in maximums.items():
        value = report.metrics.get(name)
        if value is None:
            failures.append(f"{name} is not measured: no question of the set counts for it")
        elif value > bound:
            failures.append(f"{name} = {value} is over {bound}")
    return failures
