"""Answering: retrieve, read, decide. The orchestration is tested with readers whose
readings are set by the test (so that each rule of the decision is seen alone), the whole
path with the shipped reader: its answers are verbatim spans with exact offsets, and it
reproduces the figures its model card records."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from qa.answer import (
    QuestionError,
    answer_question,
    candidate,
    previous_text,
    read_text,
    table_header,
)
from qa.config import DEFAULT_READER, Config, table_reading
from qa.corpus import Example
from qa.engine import Engine
from qa.evaluate import Item, evaluate, library_asker, load_items
from qa.features import Candidate, Reading
from qa.markdown import (
    is_delimiter_row,
    is_table_row,
    markdown_marks,
    markdown_view,
    row_view,
    source_span,
    tidy_span,
)
from qa.read import Settings
from qa.records import Sentence, Turn
from qa.text import balanced_span, whole_names
from qa.training.data import Asked, ask_service, training_rows

DATA = Path(__file__).resolve().parent / "data"
DEV = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "dev.jsonl"
CARD = json.loads((DEFAULT_READER / "card.json").read_text())


class Scripted:
    """A reader whose margins the test sets: ``margins[i]`` for the i-th candidate, with
    the span of the sentence's first word."""

    name = "scripted"

    def __init__(self, margins: list[float], candidates: int = 4, threshold: float = 1.0):
        self.margins = margins
        self.settings = Settings(candidates, threshold, 1.0, 0.0, -1.0, 0.0)
        self.calls: list[tuple] = []
        self.seen = 0  # candidates read so far for the question being answered (see ask)

    def read(self, question, candidates, last_question="", last_answer=""):
        self.calls.append((question, list(candidates), last_question, last_answer))
        out = []
        for i, c in enumerate(candidates, self.seen):
            end = c.sentence.find(" ") if " " in c.sentence else len(c.sentence)
            start, end = (0, end) if c.source is None else source_span(c.source, 0, end)
            margin = self.margins[i] if i < len(self.margins) else -9.0
            out.append(Reading(start, end, margin, 0.0))
        self.seen += len(candidates)
        return out


def ask(engine, reader, question, history=(), top_k=3):
    s = engine.snapshot
    if isinstance(reader, Scripted):
        reader.seen = 0
    named = engine.config.table_rows == "named"
    return answer_question(
        s.index, s.lexical, engine.embedder, reader, question, history, top_k, named
    )


def check_invariants(engine, answer):
    d = answer.to_dict()
    for c in d["citations"]:
        assert engine.index.documents[c["doc"]].text[c["start"] : c["end"]] == c["text"]
        assert 0 <= c["score"] <= 1
    assert 0 <= d["confidence"] <= 1
    if d["answer"] is None:
        assert d["answer_start"] is None and d["answer_end"] is None
    else:
        first = d["citations"][0]
        text = engine.index.documents[first["doc"]].text
        assert d["answer"] in first["text"]
        assert first["start"] <= d["answer_start"] < d["answer_end"] <= first["end"]
        assert text[d["answer_start"] : d["answer_end"]] == d["answer"]


def test_the_best_margin_answers_and_its_sentence_is_cited_first(engine):
    reader = Scripted([0.5, 3.0, 2.0, -1.0])
    answer = ask(engine, reader, "Who was instructed to use military force?")
    (question, candidates, _, _) = reader.calls[0]
    assert len(candidates) == 4  # the N of the reader's settings, in one call
    assert len(reader.calls) == 1  # top_k within N: nothing more to read
    assert answer.citations[0].text == candidates[1].sentence
    assert answer.citations[1].text == candidates[2].sentence  # then by the reader's score
    assert answer.citations[2].text == candidates[0].sentence
    assert answer.answer == candidates[1].sentence.split(" ")[0]
    check_invariants(engine, answer)


def test_under_the_threshold_the_documents_do_not_say(engine):
    reader = Scripted([0.9, -2.0, 0.2, 0.95], threshold=1.0)
    answer = ask(engine, reader, "What is the boiling point of water?")
    assert answer.answer is None and answer.answer_start is None
    # the closest passages are offered as related, by the reader's score
    candidates = reader.calls[0][1]
    assert [c.text for c in answer.citations] == [candidates[i].sentence for i in (3, 0, 2)]
    # confident that they do not say: the best margin is close to the threshold
    assert answer.confidence == pytest.approx(Scripted([]).settings.confidence(0.95, False))
    check_invariants(engine, answer)


def test_citations_beyond_n_are_read_apart_and_do_not_decide(engine):
    reader = Scripted([0.0, 0.0, 0.0, 0.0, 5.0, 9.0], candidates=4, threshold=1.0)
    answer = ask(engine, reader, "Who was instructed to use military force?", top_k=6)
    # the N sentences in one batch, as validated; the further ones N at a time after them
    assert [len(call[1]) for call in reader.calls] == [4, 4]
    assert answer.answer is None  # the 5th and 6th sentences' margins do not decide
    read = [c.sentence for call in reader.calls for c in call[1]]
    assert [c.text for c in answer.citations[:4]] == read[:4]
    # then the further ones by the reader's score: the 6th (9.0) before the 5th (5.0)
    assert [c.text for c in answer.citations[4:]] == [read[5], read[4]]
    scores = [c.score for c in answer.citations[4:]]
    assert scores == [reader.settings.citation_score(m) for m in (9.0, 5.0)]


def test_the_answer_does_not_depend_on_how_many_citations_are_asked_for(engine):
    """With the shipped reader: asking for more citations reads more sentences, but the
    answer, its confidence and every citation already given stay exactly as they were
    (each sentence is read in a run of its own, whatever top_k is)."""
    for question in (
        "Who was instructed to use military force?",
        "What is Gaitanista?",
        "What is the boiling point of water?",
    ):
        answers = [engine.ask(question, top_k=k) for k in (3, 4, 6, 7, 10)]
        for few, many in zip(answers, answers[1:], strict=False):
            assert (many.answer, many.confidence) == (few.answer, few.confidence)
            assert many.citations[: len(few.citations)] == few.citations
            assert len(many.citations) > len(few.citations)


def test_a_sentence_reads_the_same_whatever_is_read_beside_it():
    """With the shipped reader: each candidate is read in a run of its own, so a sentence's
    span and scores depend only on the question and that sentence, not on the sentences
    retrieval put beside it (in one padded batch, dynamic int8 scaled them all alike, and
    the scores moved by half a point). A question alone reads its rows side by side, one
    thread each; under load, one after another: the same numbers."""
    from qa.read import OnnxReader
    from qa.runner import CORES

    reader = OnnxReader(DEFAULT_READER)
    bridge = Candidate("The bridge, opened in 1932, carries 160,000 vehicles a day.")
    tolls = Candidate(
        "Tolls were first charged at sixpence for a car and threepence for a horse, and the "
        "engineer who designed the arch said it would outlast every building in the city.",
        bridge.sentence,
    )
    short = Candidate("It closed.")
    question = "How many vehicles cross the bridge each day?"
    (alone,) = reader.read(question, [bridge])
    assert bridge.sentence[alone.start : alone.end] == "160,000 vehicles"
    assert reader.read(question, [bridge, tolls, short])[0] == alone
    assert reader.read(question, [short, bridge])[1] == alone
    assert (reader._pool is not None) == (CORES > 1)  # read side by side when alone
    side_by_side = reader.read(question, [tolls, short, bridge])
    reader._running += 1  # as if another question were being read: one after another
    try:
        assert reader.read(question, [tolls, short, bridge]) == side_by_side
    finally:
        reader._running -= 1
    assert reader._running == 0  # every run counted out


def test_a_failed_run_is_counted_out_and_the_reader_reads_on():
    """A run that fails (or a row that cannot be handed to a thread) raises to the caller,
    but only once every run of the question has ended, and counted out: the next question
    alone is read as a question alone again, with the same numbers."""
    from concurrent.futures import ThreadPoolExecutor

    from qa.read import OnnxReader

    reader = OnnxReader(DEFAULT_READER)
    question = "How many vehicles cross the bridge each day?"
    rows = [Candidate("The bridge carries 160,000 vehicles a day."), Candidate("It closed.")]
    before = reader.read(question, rows)

    class Broken:
        def run(self, *_):
            raise RuntimeError("a run failed")

    sessions = reader._shared, reader._alone
    reader._shared = reader._alone = Broken()
    with pytest.raises(RuntimeError, match="a run failed"):
        reader.read(question, rows)
    assert reader._running == 0
    reader._shared, reader._alone = sessions

    class Refusing:  # takes the first row, then cannot start a thread for the second
        def __init__(self):
            self.pool, self.taken = ThreadPoolExecutor(1), 0

        def submit(self, *args):
            self.taken += 1
            if self.taken > 1:
                raise RuntimeError("can't start new thread")
            return self.pool.submit(*args)

    if reader._side_by_side:
        reader._pool = Refusing()  # type: ignore[assignment]
        with pytest.raises(RuntimeError, match="new thread"):
            reader.read(question, rows)
        assert reader._running == 0
        reader._pool = None
    assert reader.read(question, rows) == before


def test_a_follow_up_carries_the_last_turn_to_the_reader(engine):
    reader = Scripted([2.0])
    history = [Turn("Who was instructed to use military force?", "the Pentagon")]
    ask(engine, reader, "Against whom?", history=history)
    question, _, last_question, last_answer = reader.calls[0]
    assert question == "Against whom?"
    assert last_question == history[0].question and last_answer == "the Pentagon"
    # a long earlier answer is a sentence, not a name to follow: it is not carried
    ask(engine, reader, "Why?", history=[Turn("What happened?", "x" * 200)])
    assert reader.calls[1][3] == ""


def test_a_question_that_does_not_refer_back_is_answered_as_if_asked_alone(engine):
    """The chat page sends the conversation with every question; one that does not point
    back at the last turn is read without it, by the reader and by retrieval alike, so it
    gets the answer it gets alone (the last turn's words would otherwise pull retrieval
    and tell the decider it is a follow-up)."""
    reader = Scripted([2.0])
    history = [Turn("Who was instructed to use military force?", "the Pentagon")]
    question = "How many members does the Tren de Aragua gang have?"
    after = ask(engine, reader, question, history=history)
    alone = ask(engine, reader, question)
    assert reader.calls[0] == reader.calls[1]  # the same reading: no last turn in it
    assert reader.calls[0][2:] == ("", "")
    assert after == alone
    # one that does refer back still carries the turn
    ask(engine, reader, "How many members does it have?", history=history)
    assert reader.calls[2][2] == history[0].question


def test_the_previous_sentence_is_read_with_each_candidate(engine):
    reader = Scripted([2.0])
    ask(engine, reader, "How many members does the group have?")
    sentences = engine.index.sentences
    for c in reader.calls[0][1]:
        s = next(s for s in sentences if s.text == c.sentence)
        assert c.previous == ("" if s.index == 0 else sentences[sentences.index(s) - 1].text)


def test_documents_without_a_sentence_surely_do_not_say(tmp_path, embedder):
    from helpers import build

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "marks.txt").write_text("!!!\n", encoding="utf-8")
    build(seeds, tmp_path / "index", embedder)
    config = Config.load(seeds_dir=seeds, index_dir=tmp_path / "index")
    answer = Engine(config, notify=lambda m: None, embedder=embedder).ask("Who won?")
    assert answer.answer is None and answer.citations == ()
    assert answer.confidence == 1.0


def test_an_empty_question_is_refused(engine):
    with pytest.raises(QuestionError):
        ask(engine, Scripted([1.0]), "   ")


@pytest.mark.parametrize(
    ("question", "history", "named", "engine_named"),
    [
        # bytes b"caf\xe9?" read as UTF-8 text
        ("caf\udce9?", (), "the question", "the question"),
        (
            "And then?",
            (Turn("Who\ud800?", None),),
            "the last turn's question",
            r"history\[0\].question",
        ),
        (
            "And then?",
            (Turn("Who?", "Ivy\udfff"),),
            "the last turn's answer",
            r"history\[0\].answer",
        ),
    ],
)
def test_text_that_is_not_unicode_is_refused_saying_where(
    engine, question, history, named, engine_named
):
    """The tokenizer would raise a TypeError on a lone surrogate: the library says which text
    (Engine.ask names a turn as the API does, having checked every turn as it does)."""
    with pytest.raises(QuestionError, match=f"{named} holds an unpaired surrogate"):
        ask(engine, engine.reader, question, history)
    with pytest.raises(QuestionError, match=f"{engine_named} holds an unpaired surrogate"):
        engine.ask(question, history=history)


# --- the shipped reader ----------------------------------------------------------------


@pytest.fixture(scope="module")
def bridge_engine(tmp_path_factory, embedder):
    index_dir = tmp_path_factory.mktemp("bridge") / "index"
    config = Config(seeds_dir=DATA / "seeds", index_dir=index_dir)
    return Engine(config, notify=lambda m: None, embedder=embedder)


def test_every_answer_is_a_verbatim_span_with_exact_offsets(engine, bridge_engine):
    for e, path in ((bridge_engine, DATA / "questions.jsonl"), (engine, DEV)):
        if not path.exists():
            continue
        for item in load_items(path):
            check_invariants(e, e.ask(item.turns[-1]))


@pytest.mark.skipif(not DEV.exists(), reason="no ../shared/eval/dev.jsonl beside the project")
def test_the_shipped_reader_reproduces_its_recorded_development_figures(engine):
    """The model card's figures were measured through the service when the reader was
    trained; the same answers come back now (deterministic, CPU)."""
    recorded = CARD["figures"]["sets"]["dev"]["metrics"]
    report = evaluate(library_asker(engine), load_items(DEV))
    assert report.metrics == recorded


def test_the_shipped_reader_answers_and_abstains(engine):
    answer = engine.ask("When was Trump's first day back in the White House?")
    check_invariants(engine, answer)
    assert answer.answer and "January 20" in answer.answer and len(answer.answer) < 40
    assert "executive order on January 20" in answer.citations[0].text
    for question in ("What is the boiling point of water?", "lorem ipsum dolor sit amet"):
        nothing = engine.ask(question)
        assert nothing.answer is None and nothing.citations


def readme_examples() -> list[dict]:
    """The JSON answers the README shows (``qa ask --json`` and ``POST /api/ask``)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = readme.split("```json\n")[1:]
    found = [json.loads(b.split("```")[0]) for b in blocks]
    return [f for f in found if "question" in f and "citations" in f]


def test_the_readmes_answers_are_what_the_shipped_reader_gives(engine):
    """The README's example answers, asked again: the same span, offsets and citation, and
    the confidence and score to two places (they change with every reader shipped)."""
    examples = readme_examples()
    assert len(examples) >= 2
    for shown in examples:
        top_k = len(shown["citations"])
        given = engine.ask(shown["question"], top_k=top_k).to_dict()
        for key in ("answer", "answer_start", "answer_end"):
            assert given[key] == shown[key], (shown["question"], key)
        assert given["confidence"] == pytest.approx(shown["confidence"], abs=0.01)
        for mine, theirs in zip(given["citations"], shown["citations"], strict=True):
            for key in ("doc", "sentence", "start", "end", "text"):
                assert mine[key] == theirs[key], (shown["question"], key)
            assert mine["score"] == pytest.approx(theirs["score"], abs=0.01)


class StopsBeforeTheClosingMark(Scripted):
    """A reader that answers from the sentences holding a closing quotation mark, with a
    span from the opening mark's word up to, not including, the closing one."""

    def read(self, question, candidates, last_question="", last_answer=""):
        out = []
        for c in candidates:
            s = c.sentence
            if "“" in s and "”" in s:
                start = s.rfind(" ", 0, s.index("“")) + 1
                out.append(Reading(start, s.index("”"), 5.0, 0.0))
            else:
                out.append(Reading(0, max(s.find(" "), 1), -9.0, 0.0))
        return out


def test_an_answer_never_leaves_a_quotation_mark_open(engine):
    """The reader's span may end just before a closing quotation mark ('the “Trump
    whisperer'); the answer takes the mark in, still the document's own characters."""
    reader = StopsBeforeTheClosingMark([], threshold=0.0)
    answer = ask(engine, reader, "What has Sheinbaum been dubbed?")
    assert answer.answer is not None and "“" in answer.answer
    assert answer.answer.endswith("”")
    assert answer.answer.count("“") == answer.answer.count("”")
    check_invariants(engine, answer)


def test_balanced_span_closes_only_what_the_span_leaves_open():
    text = 'He was dubbed the “Trump whisperer” (twice), said "no" and left Colombia’s capital.'
    at = text.index

    def widened(start: int, end: int) -> str:
        return text[slice(*balanced_span(text, start, end))]

    assert widened(at("the"), at("”")) == "the “Trump whisperer”"
    assert widened(at("Trump"), at("”") + 1) == "“Trump whisperer”"
    assert widened(at("twice"), at(")") + 1) == "(twice)"
    assert widened(at("no"), at("no") + 2) == "no"  # nothing open
    assert widened(at('"no'), at("no") + 2) == '"no"'
    assert widened(at("Colombia"), at("’s")) == "Colombia"
    assert widened(at("dubbed"), at("the") - 1) == "dubbed"
    assert balanced_span(text, 3, 3) == (3, 3) and balanced_span("", 0, 0) == (0, 0)
    assert balanced_span(text, 0, len(text)) == (0, len(text))


def test_balanced_span_closes_nested_marks_and_leaves_apostrophes_and_inches():
    def widened(text: str, first: str, last: str) -> str:
        start = text.index(first)
        return text[slice(*balanced_span(text, start, text.index(last, start)))]

    assert widened("He said “(we) will (not” go", "“", ")") == "“(we)"
    assert widened("Said “(not now)” twice", "“", ")”") == "“(not now)”"
    assert widened("He said “whisperer.” Then", "“", ".”") == "“whisperer.”"
    assert widened("the ‘Trump’s plan’ failed", "the", "’s") == "the ‘Trump"  # a possessive
    assert widened('a 12" pipe and "quoted" word', "12", ' "quoted') == '12" pipe and'
    assert widened("“open at the end", "“", " end") == "“open at the"
    assert widened("end”", "end", "”") == "end"  # nothing opened: nothing taken in


def test_an_answer_never_cuts_a_name_or_number_that_marks_join():
    """The reader's words end at every punctuation mark, so its span may stop inside a name
    joined by underscores or dots: the answer takes the whole of it, and nothing more."""
    text = "Set `TIDEPOOL_LOG_LEVEL` in config.toml; 2.4.1 fixed it (U.S. only), said Trump's aide."

    def widened(part: str, start_at: int = 0) -> str:
        start = text.index(part, start_at)
        return text[slice(*whole_names(text, start, start + len(part)))]

    assert widened("TIDEPOOL") == "TIDEPOOL_LOG_LEVEL"
    assert widened("LEVEL") == "TIDEPOOL_LOG_LEVEL"
    assert widened("config") == "config.toml"
    assert widened("2.4") == "2.4.1" and widened("4.1") == "2.4.1"
    assert widened("fixed it") == "fixed it"  # nothing cut: as it was
    assert widened("Trump") == "Trump"  # an apostrophe is no join
    assert widened("U.S.") == "U.S."  # nor a word's own final stop
    assert widened("said") == "said"
    assert whole_names(text, 0, len(text)) == (0, len(text))
    assert whole_names("", 0, 0) == (0, 0)


def test_tidy_span_leaves_no_markdown_at_an_answers_edges():
    def tidied(text: str, first: str, last: str) -> str:
        start = text.index(first)
        return text[slice(*tidy_span(text, start, text.index(last, start) + len(last)))]

    row = "| `WIDGET_PORT` | 8080 | the port it listens on |"
    assert tidied(row, "| 8080", "8080 ") == "8080"  # cell bars and spaces
    assert tidied(row, "the", "on |") == "the port it listens on"
    assert tidied(row, "8080", "port") == "8080 | the port"  # a bar inside stays
    assert tidied(row, "`WIDGET", "PORT`") == "WIDGET_PORT"  # a pair around it all: out
    assert tidied(row, "WIDGET", "PORT`") == "WIDGET_PORT"  # its partner left out
    assert tidied(row, "PORT", "8080") == "`WIDGET_PORT` | 8080"  # begun inside: taken in
    code = "Run `widget init --db postgres://host/db` now."
    assert tidied(code, "postgres", "db`") == "postgres://host/db"
    assert tidied(code, "`widget", "init") == "widget init"
    assert tidied("``a ` b`` c", "a", "b``") == "a ` b"  # a longer run holds a backtick
    bold = "The **Widget Server** runs *fast* here."
    assert tidied(bold, "Widget", "Server**") == "Widget Server"
    assert tidied(bold, "**Widget", "Server**") == "Widget Server"
    assert tidied(bold, "Server", "runs") == "**Widget Server** runs"
    assert tidied(bold, "fast", "fast*") == "fast"
    assert tidied(bold, "runs", "fast*") == "runs *fast*"
    assert tidied("***x***", "**x", "x**") == "x"
    under = "Write to _help@bikes.example_ or see [our support page](https://bikes.example/s)."
    assert tidied(under, "_help", "example_") == "help@bikes.example"
    assert tidied(under, "Write", "example_") == "Write to _help@bikes.example_"  # a pair inside
    assert tidied(under, "help", "example_") == "help@bikes.example"
    assert tidied(under, "or", "page]") == "or see [our support page](https://bikes.example/s)"
    assert tidied(under, "see", "page") == "see [our support page"  # balanced_span's to close
    snake = "Set MAX_SIZE and __init__ here, or _x_y_."
    assert tidied(snake, "MAX", "SIZE") == "MAX_SIZE"  # underscores inside a word: no marks
    assert tidied(snake, "_x", "y_") == "x_y"
    for name in ("_config.yml", "__dirname", "_private_var", "my_var_"):  # unpaired: text
        assert tidied(f"Open {name} now.", name, name) == name
    for spaced, words in (("Use `` `x` `` here", "`x`"), ("Run ` ls -l ` now", "ls -l")):
        first, last = spaced.index("`"), spaced.rindex("`") + 1  # no space left at an edge
        assert spaced[slice(*tidy_span(spaced, first, last))] == words
    # stars that pair with nothing, or are no marks at all, and stars inside code
    prices = "Prices* apply to *members* only, and 2 * 3 is six."
    assert tidied(prices, "Prices", "Prices*") == "Prices"
    assert tidied(prices, "apply", "*members*") == "apply to *members*"
    assert tidied(prices, "3 is", "six.") == "3 is six."
    assert tidied("Use 2 * 3 or *bold*", "3 or", "*bold") == "3 or *bold*"
    assert tidied("Use `x**2` for **square**", "**square", "square**") == "square"
    assert tidied("`ls *.md` then *save*", "*save", "save*") == "save"
    # a footnote's marker (shown as a number) at an edge is left out, and what it wrapped
    note = "About **4,200 visitors**[^2] came [^a] in May.[^3]"
    assert tidied(note, "About", "[^2]") == "About **4,200 visitors**"
    assert tidied(note, "**4,200", "[^2]") == "4,200 visitors"
    assert tidied(note, "[^a]", "May.[^3]") == "in May."
    assert tidied(note, "[^2]", "[^2]") == "[^2]"  # a marker alone: as it was
    assert tidy_span(row, 0, 1) == (0, 1)  # nothing left: the span as it was
    plain = "Support ends on 31 March 2027."
    assert tidy_span(plain, 16, 29) == (16, 29)  # no Markdown: unchanged
    assert is_table_row(row) and not is_table_row("Xbox Series X|S.") and not is_table_row("|")
    assert is_delimiter_row("| --- | :---: |") and is_delimiter_row("|---|---|")
    assert not is_delimiter_row("| a | b |")


def test_row_view_reads_each_cell_after_its_columns_name_and_maps_back():
    header = "| Setting | `Env` var | Default |"
    row = "| `interval` | QS\\|INTERVAL |  |"
    text, source = row_view(row, header)
    # marks are read as blanks (a cell's and a name's own are trimmed), an escaped bar is
    # no border, an empty cell is skipped
    assert text == "Setting: interval; Env var: QS\\|INTERVAL."
    assert len(source) == len(text)
    for cell in ("interval", "QS\\|INTERVAL"):
        at = text.index(cell)
        start, end = source_span(source, at, at + len(cell))
        assert row[start:end] == cell
    # a span of a name alone is its cell; one over two cells runs across them as written
    assert source_span(source, 0, len("Setting")) == source_span(source, 9, 17)
    assert row[slice(*source_span(source, 0, len(text)))] == "interval` | QS\\|INTERVAL"
    # a span of only the closing stop is the cell before it, never offsets past the row
    assert row[slice(*source_span(source, len(text) - 1, len(text)))] == "QS\\|INTERVAL"
    # an escaped backslash before a bar leaves the bar a border
    assert row_view(r"| a \\| b |", "| x | y |")[0] == r"x: a \\; y: b."
    assert row_view("| a | b |", "| only |") is None  # not as many cells
    assert row_view("|  |  |", "| x | y |") is None  # nothing to read


@pytest.fixture(scope="module")
def markdown_engine(tmp_path_factory, embedder):
    index_dir = tmp_path_factory.mktemp("markdown") / "index"
    config = Config(seeds_dir=DATA / "markdown", index_dir=index_dir)
    return Engine(config, notify=lambda m: None, embedder=embedder)


def no_broken_markdown(text: str) -> bool:
    """No cell bar or space at the edges of ``text``, no mark without its partner."""
    return (
        text[0] not in "| "
        and text[-1] not in "| "
        and all(partner is not None for *_, partner in markdown_marks(text))
    )


def test_answers_from_markdown_carry_no_broken_marks(markdown_engine):
    questions = [
        "What is the default port?",
        "How many worker processes by default?",
        "What command creates the tables?",
        "Which database does it need?",
        "What happens if the database is too old?",
        "When does support end for version 2?",
        "Who tags the release?",
        "Which port does the mail service use?",
        "What form should the tag take?",
    ]
    answers = [markdown_engine.ask(q) for q in questions]
    given = [a for a in answers if a.answer is not None]
    # the reader answers from the tables and the code, as written: the path is exercised
    assert any(a.citations[0].text.startswith("|") for a in given)
    assert any("`" in a.citations[0].text for a in given)
    for a in given:
        check_invariants(markdown_engine, a)
        assert no_broken_markdown(a.answer), a.answer


def test_a_table_row_is_one_sentence_read_after_its_own_tables_header(markdown_engine):
    index = markdown_engine.snapshot.index
    texts = [s.text for s in index.sentences]
    assert "| Tag the release | Ana Ruiz | Use the `vX.Y.Z` form. Push the tag. |" in texts
    assert "| Publish the notes | Ben Okafor | Check every link? Yes! |" in texts
    headers = {"| Step | Owner | Notes |", "| Setting | Default | Meaning |", "| Service | Port |"}
    seen = set()
    for p, s in enumerate(index.sentences):
        header = table_header(index, p)
        if not is_table_row(s.text) or s.text in headers:
            assert header is None, s.text  # not a row, or a header itself
            if s.index:
                assert previous_text(index, p) == read_text(index.sentences[p - 1])
            continue
        assert header is not None and index.sentences[header].text in headers, s.text
        # its own table's header, not the one of the table above it
        above = index.sentences[header + 1 : p + 1]
        assert all(is_table_row(r.text) and r.text not in headers for r in above)
        assert previous_text(index, p) == read_text(index.sentences[header])
        seen.add(index.sentences[header].text)
    assert seen == headers
    # and the reader is handed it so
    reader = Scripted([1.0] * 4)
    ask(markdown_engine, reader, "Which port does the mail service listen on?")
    (_, candidates, _, _) = reader.calls[0]
    rows = [c for c in candidates if c.sentence in ("| mail | 2525 |", "| web | 8443 |")]
    assert rows and all(c.previous == "| Service | Port |" and c.source is None for c in rows)


@pytest.fixture(scope="module")
def named_engine(tmp_path_factory, embedder):
    """The Markdown documents, table rows read as named cells (QA_TABLE_ROWS=named)."""
    index_dir = tmp_path_factory.mktemp("named") / "index"
    config = Config(seeds_dir=DATA / "markdown", index_dir=index_dir, table_rows="named")
    return Engine(config, notify=lambda m: None, embedder=embedder)


def test_named_rows_read_each_cell_after_its_columns_name(named_engine):
    """With QA_TABLE_ROWS=named, a row is read as 'Service: mail; Port: 2525.' after the
    sentence before its table; its header row, and prose, are read as by default."""
    index = named_engine.snapshot.index
    texts = [s.text for s in index.sentences]
    reader = Scripted([1.0] * 4)
    ask(named_engine, reader, "Which port does the mail service listen on?")
    (_, candidates, _, _) = reader.calls[0]
    read = {c.sentence: c for c in candidates}
    assert "Service: mail; Port: 2525." in read
    assert all("|" not in c.sentence or c.source is None for c in candidates)
    header = texts.index("| Service | Port |")
    assert read["Service: mail; Port: 2525."].previous == read_text(index.sentences[header - 1])
    for p in range(len(index.sentences)):
        if table_header(index, p) is None:  # not a row below a header: as by default
            assert candidate(index, p, named_rows=True) == candidate(index, p)


def test_a_named_rows_answer_is_its_cell_as_written(named_engine):
    """Read as 'Service: mail; Port: 2525.', the reader's span maps back to the row: the
    answer and its offsets are the document's own."""
    index = named_engine.snapshot.index
    position = [s.text for s in index.sentences].index("| mail | 2525 |")
    read = candidate(index, position, named_rows=True)
    assert read.sentence == "Service: mail; Port: 2525."
    assert read.previous == read_text(index.sentences[table_header(index, position) - 1])

    class Port(Scripted):  # reads "Port: 2525" (a name and its cell) in the mail row
        def read(self, question, candidates, last_question="", last_answer=""):
            out = []
            for c in candidates:
                at = c.sentence.find("Port: 2525")
                if at < 0 or c.source is None:
                    out.append(Reading(0, 1, -5.0, 0.0))
                    continue
                start, end = source_span(c.source, at, at + len("Port: 2525"))
                out.append(Reading(start, end, 5.0, 0.0))
            return out

    answer = ask(named_engine, Port([]), "Which port does the mail service listen on?")
    assert answer.answer == "2525" and answer.citations[0].text == "| mail | 2525 |"
    check_invariants(named_engine, answer)
    # the shipped reader, through the engine: verbatim answers, no broken Markdown
    for question in ("Which port does the mail service use?", "Who tags the release?"):
        given = named_engine.ask(question)
        check_invariants(named_engine, given)
        assert given.answer is None or no_broken_markdown(given.answer)


def test_the_engine_and_training_read_table_rows_as_configured(named_engine, embedder, tmp_path):
    """QA_TABLE_ROWS reaches the engine's answers and the questions `qa train` asks of the
    service to choose on (ask_service); the default reads rows after their header."""
    question = "Which port does the mail service listen on?"
    item = Item("md-1", (question,), True, ("| mail | 2525 |",), ("2525",))
    for way, config in (
        ("named", named_engine.config),
        ("header", replace(named_engine.config, table_rows="header", index_dir=tmp_path)),
    ):
        reader = Scripted([1.0] * 4)
        engine = Engine(config, notify=lambda m: None, embedder=embedder, reader=reader)
        engine.ask(question)
        (_, read, _, _) = reader.calls[0]
        (asked,) = ask_service(engine, [item], 10)
        for candidates in (read, asked.read):
            texts = [c.sentence for c in candidates]
            assert ("Service: mail; Port: 2525." in texts) == (way == "named"), texts
            assert ("| mail | 2525 |" in texts) == (way == "header"), texts


def test_the_service_reads_table_rows_as_its_readers_card_says_unless_told(named_engine):
    """A reader trained to read rows as named cells says so in its card (table_rows): the
    service reads them so when QA_TABLE_ROWS is not set, and as QA_TABLE_ROWS says if it is."""
    assert Config().table_rows == ""  # not set: the reader's card decides
    for configured, card, named in (
        ("", "named", True),
        ("", "header", False),
        ("header", "named", False),
        ("named", "header", True),
    ):
        reader = Scripted([1.0] * 4)
        reader.settings = replace(reader.settings, table_rows=card)
        config = replace(named_engine.config, table_rows=configured)
        engine = Engine(
            config, notify=lambda m: None, embedder=named_engine.embedder, reader=reader
        )
        assert engine.named_rows is named
        engine.ask("Which port does the mail service listen on?")
        texts = [c.sentence for c in reader.calls[0][1]]
        assert ("Service: mail; Port: 2525." in texts) is named, texts


def test_how_table_rows_are_read_is_the_setting_else_the_cards_else_header():
    old = {"figures": {"validation": {"table_rows": "named"}}}  # a card from before the key
    assert table_reading("", old) == "named" and table_reading("header", old) == "header"
    assert table_reading("", {**old, "table_rows": "header"}) == "header"
    assert table_reading("", {}) == table_reading("") == "header"
    assert table_reading("named", {"table_rows": "header"}) == "named"


def test_training_teaches_a_table_answer_where_the_rows_reading_puts_it(named_engine):
    """`qa train` reads an answering table row as the service will: with named cells, the
    gold span is taught on the cell as read ('2525' in 'Service: mail; Port: 2525.')."""
    index = named_engine.snapshot.index
    position = [s.text for s in index.sentences].index("| mail | 2525 |")
    row = index.sentences[position]
    at = row.start + row.text.index("2525")
    example = Example(
        id="md-1",
        doc=row.doc,
        turns=("Which port does the mail service use?",),
        answerable=True,
        support=(row.text,),
        answer=("2525",),
        span="2525",
        sentence=position,
        sentence_start=row.start,
        sentence_end=row.end,
        answer_start=at,
        answer_end=at + 4,
    )
    asked = Asked(example, example.turns[0], "", "", (), (), ())
    indexes = {row.doc: (index, None)}
    for named, read in ((True, "Service: mail; Port: 2525."), (False, "| mail | 2525 |")):
        (gold,) = training_rows([asked], indexes, 0, random.Random(1), named_rows=named)
        assert gold.candidate.sentence == read and gold.span is not None
        start, end = gold.span
        assert read[start:end] == "2525"
        if named:  # and it maps back to the row's own characters
            back = source_span(gold.candidate.source, start, end)
            assert back == (at - row.start, at - row.start + 4)
    # a span of only what named cells leave out (the row's border) is taught on the row as
    # written, not lost
    border = replace(example, answer=("|",), answer_start=row.start, answer_end=row.start + 1)
    rows = training_rows(
        [replace(asked, example=border)], indexes, 0, random.Random(1), named_rows=True
    )
    assert [(r.candidate.sentence, r.span) for r in rows] == [("| mail | 2525 |", (0, 1))]


def test_an_unknown_way_of_reading_table_rows_is_refused(monkeypatch, embedder, tmp_path):
    monkeypatch.setenv("QA_TABLE_ROWS", "cells")
    with pytest.raises(ValueError, match="QA_TABLE_ROWS: 'cells' .use one of: header, named"):
        Config.load()
    with pytest.raises(ValueError, match="QA_TABLE_ROWS"):
        Engine(Config(table_rows="rows", index_dir=tmp_path), embedder=embedder)


def test_the_reader_reads_markdown_marks_as_blanks_with_the_same_offsets(markdown_engine):
    text = "Run `widget init` and it is rated **IP20**, X|S."
    view = markdown_view(text)
    assert view == "Run  widget init  and it is rated   IP20  , X|S."
    assert markdown_view("Nothing to blank | here.") == "Nothing to blank | here."
    # a quote wrapped over lines: the marks opening its lines read as blanks, and only those
    quote = "The sync is safe > sorry, and it\n> never deletes\n >> a note."
    assert markdown_view(quote) == "The sync is safe > sorry, and it\n  never deletes\n    a note."
    index = markdown_engine.snapshot.index
    marked = [s for s in index.sentences if "`" in s.text or "**" in s.text]
    assert marked and all(read_text(s) == markdown_view(s.text) != s.text for s in marked)
    prose = Sentence("notes.txt", 0, 0, len(text), text)
    assert read_text(prose) == text  # only Markdown documents are read so
    # what the reader is handed: blanked, the same length, so its offsets are the sentence's
    reader = Scripted([1.0] * 4)
    answer = ask(markdown_engine, reader, "Which command creates the tables?")
    (_, candidates, _, _) = reader.calls[0]
    blanked = [(c, s) for c in candidates for s in marked if c.sentence == read_text(s)]
    assert blanked and all(len(c.sentence) == len(s.text) for c, s in blanked)
    assert all(not set("`*") & set(c.sentence + c.previous) for c in candidates)
    check_invariants(markdown_engine, answer)


def test_prose_answers_are_not_tidied_as_markdown(tmp_path, embedder):
    """A text document's stars and bars are its own: only Markdown is tidied."""
    text = "| Revenue* rose to 5 million | in 2024, said the report.\n"

    class Whole(Scripted):
        def read(self, question, candidates, last_question="", last_answer=""):
            return [Reading(0, len(c.sentence), 5.0, 0.0) for c in candidates]

    answers = {}
    for name in ("report.txt", "report.md"):
        seeds = tmp_path / name / "seeds"
        seeds.mkdir(parents=True)
        (seeds / name).write_text(text, encoding="utf-8")
        config = Config(seeds_dir=seeds, index_dir=tmp_path / name / "index")
        engine = Engine(config, notify=lambda m: None, embedder=embedder)
        answers[name] = ask(engine, Whole([5.0]), "How much did revenue rise?").answer
    assert answers["report.txt"] == text.strip()
    assert answers["report.md"] == "Revenue* rose to 5 million | in 2024, said the report."
