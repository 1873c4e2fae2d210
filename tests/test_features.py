"""What the reader reads (one row a candidate sentence) and how logits become a span."""

from __future__ import annotations

import numpy as np
import pytest

from qa.features import Batch, Candidate, Limits, concatenate, read_spans, span_tokens
from qa.markdown import read_span, row_view, source_span
from qa.read import BatchReader, RememberingReader, Settings, with_slack

SENTENCE = "The council approved a £48 million plan on Tuesday, its leader said."


class LogitsReader(BatchReader):
    """A reader over any function from a batch to start and end logits."""

    def __init__(self, featurizer, run, settings: Settings, name: str):
        self.featurizer = featurizer
        self._run = run
        self.settings = settings
        self.name = name

    def run(self, batch):
        return self._run(batch)


def test_a_row_is_question_then_previous_sentence_then_sentence(featurizer):
    batch = featurizer.encode(
        "How much was the plan?",
        [Candidate(SENTENCE, "The vote came after a long debate."), Candidate(SENTENCE)],
        last_question="What did the council do?",
        last_answer="approved a plan",
    )
    tok = featurizer.tokenizer
    row = batch.ids[0][: batch.mask[0].sum()].tolist()
    assert row[0] == featurizer.cls and row[-1] == featurizer.sep
    seps = [i for i, t in enumerate(row) if t == featurizer.sep]
    parts = [tok.decode(row[a + 1 : b]) for a, b in zip([0, *seps], seps, strict=False)]
    assert parts == [
        "how much was the plan?",
        "what did the council do? approved a plan",
        "the vote came after a long debate.",
        "the council approved a £48 million plan on tuesday, its leader said.",
    ]
    # segment 1 starts after the question and the follow-up, and covers the rest
    ones = np.nonzero(batch.types[0])[0]
    assert tok.decode(batch.ids[0][ones[0] : ones[0] + 3].tolist()) == "the vote came"
    # the second row has no previous sentence: the sentence follows the question part
    assert batch.first[1] < batch.first[0]
    assert batch.mask[1].sum() < batch.mask[0].sum()  # padded to the longer row
    for row in range(2):
        a = batch.first[row]
        n = len(batch.offsets[row])
        assert tok.decode(batch.ids[row][a : a + n].tolist()).startswith("the council approved")


PREVIOUS = (
    "Clan del Golfo, the largest of the armed groups in the north, opened fresh talks with "
    "the government on Friday in a town far from the capital."
)


@pytest.mark.parametrize(
    ("head", "tail", "read"),
    [
        (0, 12, "the government on friday in a town far from the capital."),
        (5, 0, "clan del golfo,"),
        (3, 4, "clan del golf from the capital."),  # "golf" "##o": tokens, not words
        (40, 12, PREVIOUS.lower()),  # no longer than the two: read whole
    ],
)
def test_the_previous_sentence_is_read_by_its_end_or_its_start_and_end(
    featurizer, head, tail, read
):
    from qa.features import Featurizer

    reads = Featurizer(featurizer.tokenizer, Limits(previous=tail, previous_head=head))
    batch = reads.encode("How many members?", [Candidate(SENTENCE, PREVIOUS)])
    row = batch.ids[0].tolist()
    seps = [i for i, t in enumerate(row) if t == featurizer.sep]
    assert featurizer.tokenizer.decode(row[seps[0] + 1 : seps[1]]) == read
    # the sentence itself is read alike, whatever part of the one before is
    a, n = batch.first[0], len(batch.offsets[0])
    assert featurizer.tokenizer.decode(row[a : a + n]) == SENTENCE.lower()


def test_a_card_without_the_previous_head_reads_as_before():
    kept = Limits(previous=0, previous_head=12)
    assert Limits.from_dict(kept.to_dict()) == kept
    old = {k: v for k, v in Limits().to_dict().items() if k != "previous_head"}
    assert Limits.from_dict(old) == Limits() and Limits().previous_head == 0


def test_a_span_maps_to_whole_words_and_back(featurizer):
    batch = featurizer.encode("How much?", [Candidate(SENTENCE)])
    start = SENTENCE.index("48")  # inside "£48": the whole word is taken
    tokens = span_tokens(batch, 0, start, start + len("48 million"))
    assert tokens is not None
    i, j = tokens
    n = batch.ids.shape[1]
    s = np.full((1, n), -5.0)
    e = np.full((1, n), -5.0)
    s[0, i], e[0, j] = 4.0, 4.0
    s[0, 0], e[0, 0] = 1.0, 1.0  # the no-answer score: 2
    (reading,) = read_spans(s, e, batch, max_tokens=30)
    assert SENTENCE[reading.start : reading.end] in ("£48 million", "48 million")
    assert reading.margin == pytest.approx(8.0 - 2.0)


def test_control_tokens_written_in_the_text_are_read_as_text(featurizer):
    """ "[SEP]" in a document, or "[MASK]" in a question, is text: the row's separators
    stay where the reader expects them, and a span over the written token maps back."""
    sentence = "Fields are joined by [SEP] in the export."
    batch = featurizer.encode("What does [MASK] mean?", [Candidate(sentence, "See [CLS].")])
    row = batch.ids[0][: batch.mask[0].sum()].tolist()
    tok = featurizer.tokenizer
    assert row.count(featurizer.cls) == 1 and row.count(featurizer.sep) == 3
    assert tok.token_to_id("[MASK]") not in row
    start = sentence.index("[SEP]")
    tokens = span_tokens(batch, 0, start, start + len("[SEP]"))
    assert tokens is not None
    n = batch.ids.shape[1]
    s, e = np.full((1, n), -5.0), np.full((1, n), -5.0)
    s[0, tokens[0]], e[0, tokens[1]] = 4.0, 4.0
    (reading,) = read_spans(s, e, batch, max_tokens=30)
    assert sentence[reading.start : reading.end] == "[SEP]"


@pytest.mark.parametrize(
    "sentence, word",
    [
        ("The prize was won by the painter Zoe\u0308.", "Zoe\u0308"),  # e + diaeresis
        ("It was signed by Tomás Oyelaran\u0301 on Monday.", "Oyelaran\u0301"),
        ("वे दिल्ली में रहते हैं", "में"),  # a vowel sign and a nasal mark end the word
    ],
)
def test_an_answer_ending_in_a_combining_mark_keeps_it(featurizer, sentence, word):
    batch = featurizer.encode("Who?", [Candidate(sentence)])
    start = sentence.index(word)
    tokens = span_tokens(batch, 0, start, start + len(word))
    assert tokens is not None
    n = batch.ids.shape[1]
    s, e = np.full((1, n), -5.0), np.full((1, n), -5.0)
    s[0, tokens[0]], e[0, tokens[1]] = 4.0, 4.0
    (reading,) = read_spans(s, e, batch, max_tokens=30)
    assert sentence[reading.start : reading.end] == word


def test_spans_never_run_backwards_or_past_the_limit(featurizer):
    batch = featurizer.encode("Who?", [Candidate(SENTENCE)])
    n = batch.ids.shape[1]
    s = np.zeros((1, n))
    e = np.zeros((1, n))
    a, last = batch.first[0], batch.first[0] + len(batch.offsets[0]) - 1
    s[0, last], e[0, a] = 9.0, 9.0  # the best start is after the best end
    (reading,) = read_spans(s, e, batch, max_tokens=3)
    assert reading.start < reading.end
    assert len(SENTENCE[reading.start : reading.end].split()) <= 3


def near_best_logits(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """Start and end logits over SENTENCE rows where "£48" scores 8 and "£48 million plan"
    7 (both start at "£48"), every other span far under, and no answer 0."""
    money = span_tokens(batch, 0, SENTENCE.index("£48"), SENTENCE.index(" million"))
    plan = span_tokens(batch, 0, SENTENCE.index("£48"), SENTENCE.index(" on Tuesday"))
    assert money and plan
    s = np.full(batch.ids.shape, -20.0)
    e = np.full(batch.ids.shape, -20.0)
    s[:, 0], e[:, 0] = 0.0, 0.0
    s[:, money[0]] = 4.0
    e[:, money[1]], e[:, plan[1]] = 4.0, 3.0
    return s, e


def test_a_slack_widens_the_answer_over_near_best_spans(featurizer):
    batch = featurizer.encode("How much?", [Candidate(SENTENCE)])
    plan = span_tokens(batch, 0, SENTENCE.index("£48"), SENTENCE.index(" on Tuesday"))
    assert plan
    s, e = near_best_logits(batch)
    (tight,) = read_spans(s, e, batch, max_tokens=30)
    assert SENTENCE[tight.start : tight.end] == "£48"
    (wide,) = read_spans(s, e, batch, max_tokens=30, slack=1.5)
    assert SENTENCE[wide.start : wide.end] == "£48 million plan"
    assert wide.margin == tight.margin  # the score stays the best span's
    # a span further under the best than the slack does not count
    (same,) = read_spans(s, e, batch, max_tokens=30, slack=0.5)
    assert (same.start, same.end) == (tight.start, tight.end)
    # nor does widening run past the token budget: the best span is kept
    (capped,) = read_spans(s, e, batch, max_tokens=plan[1] - plan[0], slack=1.5)
    assert (capped.start, capped.end) == (tight.start, tight.end)


def test_a_copy_with_slack_widens_while_the_reader_stays_as_it_was(featurizer):
    settings = Settings(3, 0.0, 1.0, 0.0, 1.0, 0.0)
    reader = LogitsReader(featurizer, near_best_logits, settings, "test")
    wide = with_slack(reader, 1.5)
    (w,) = wide.read("How much?", [Candidate(SENTENCE)])
    (t,) = reader.read("How much?", [Candidate(SENTENCE)])
    assert SENTENCE[w.start : w.end] == "£48 million plan" and SENTENCE[t.start : t.end] == "£48"
    assert reader.settings.slack == 0.0 and wide.settings.slack == 1.5


def test_a_remembering_reader_runs_each_batch_once_and_reads_alike_whatever_the_slack(
    featurizer,
):
    """Choosing reads the same sentences once for each slack: the model runs once a row
    (each candidate is a run of its own), and every slack reads what a fresh reader with
    that slack reads."""
    runs = []

    def counted(batch):
        runs.append(batch.ids.shape)
        return near_best_logits(batch)

    settings = Settings(3, 0.0, 1.0, 0.0, 1.0, 0.0)
    fresh = LogitsReader(featurizer, near_best_logits, settings, "test")
    remembering = RememberingReader(LogitsReader(featurizer, counted, settings, "test"))
    asked = [Candidate(SENTENCE)], [Candidate(SENTENCE), Candidate(SENTENCE, "Nothing here.")]
    for slack in (0.0, 1.5, 0.5):
        for candidates in asked:
            got = with_slack(remembering, slack).read("How much?", candidates)
            assert got == with_slack(fresh, slack).read("How much?", candidates)
    assert len(runs) == 2  # one run for each distinct row, none for the other slacks
    assert all(shape[0] == 1 for shape in runs)


def test_a_batchs_rows_are_each_a_batch_without_padding(featurizer):
    """The reader reads each candidate in a run of its own: a row cut from a padded batch
    is that row, tokens, offsets and source, with no padding."""
    long = " ".join(["word"] * 40) + "."
    source = tuple(range(len(SENTENCE)))
    batch = featurizer.encode(
        "How much?",
        [Candidate(SENTENCE, long), Candidate("Short."), Candidate(SENTENCE, "", source)],
    )
    rows = batch.rows()
    assert len(rows) == 3 and batch.mask[1].sum() < batch.ids.shape[1]  # the 2nd was padded
    for r, row in enumerate(rows):
        n = int(batch.mask[r].sum())
        assert row.ids.tolist() == [batch.ids[r, :n].tolist()]
        assert row.mask.all() and row.types.tolist() == [batch.types[r, :n].tolist()]
        assert row.first == [batch.first[r]] and row.offsets[0] is batch.offsets[r]
        assert row.word_start[0] is batch.word_start[r] and row.word_end[0] is batch.word_end[r]
        assert row.sources == [batch.sources[r]]
    assert rows[1].ids.shape[1] < rows[0].ids.shape[1]
    logits = near_best_logits(batch)
    spans = read_spans(*logits, batch, 30)
    for r, row in enumerate(rows):  # each row read alone reads as it does in the batch
        n = row.ids.shape[1]
        assert read_spans(logits[0][r : r + 1, :n], logits[1][r : r + 1, :n], row, 30) == [spans[r]]


def test_a_long_sentence_is_cut_to_its_budget(featurizer):
    long = " ".join(["word"] * 300) + "."
    batch = featurizer.encode("What?", [Candidate(long)])
    assert len(batch.offsets[0]) == Limits().sentence
    assert span_tokens(batch, 0, len(long) - 5, len(long)) is None  # beyond what was read


def test_a_sentence_read_again_gives_the_same_rows_from_tokens_kept(featurizer):
    """Sentences come back question after question: their tokens are kept, shared by the
    batches read-only, and a batch is the same whether they were kept or not."""
    long = " ".join(["word"] * 300) + "."
    candidates = [Candidate(SENTENCE, long), Candidate(long, SENTENCE), Candidate("", "")]
    fresh = type(featurizer)(featurizer.tokenizer, featurizer.limits)
    first = fresh.encode("What did the council approve?", candidates)
    hits = fresh._sentence.cache_info().hits
    again = fresh.encode("Who said so?", candidates)
    assert fresh._sentence.cache_info().hits == hits + 3
    # the rows are the tokenizer's own tokens of each sentence, cut to the budget
    encodings = featurizer.tokenizer.encode_batch(
        [c.sentence for c in candidates], add_special_tokens=False
    )
    for row, enc in enumerate(encodings):
        n = min(len(enc.ids), Limits().sentence)
        a = first.first[row]
        assert first.ids[row, a : a + n].tolist() == enc.ids[:n]
        assert first.offsets[row].tolist() == [list(o) for o in enc.offsets[:n]]
    assert again.offsets[0] is first.offsets[0]  # the same arrays, shared
    assert not first.word_end[1].flags.writeable
    assert first.word_end[1][-1]  # a sentence cut short still ends where it was cut
    with pytest.raises(ValueError):
        first.word_start[0][0] = False


def test_a_span_of_a_sentence_read_in_another_form_maps_back_to_it(featurizer):
    """A table row read as 'Service: mail; Port: 2525.': the span the logits pick in what
    is read is given as offsets into the row as written, whatever rows share the batch."""
    row = "| mail | 2525 |"
    text, source = row_view(row, "| Service | Port |")
    batch = concatenate(
        [
            featurizer.encode("Which port?", [Candidate(SENTENCE)]),
            featurizer.encode("Which port?", [Candidate(text, "", source)]),
        ]
    )
    at = text.index("2525")
    tokens = span_tokens(batch, 1, at, at + 4)
    assert tokens is not None
    s = np.full(batch.ids.shape, -20.0)
    e = np.full(batch.ids.shape, -20.0)
    s[:, 0], e[:, 0] = 0.0, 0.0
    s[1, tokens[0]], e[1, tokens[1]] = 5.0, 5.0
    _, reading = read_spans(s, e, batch, max_tokens=30)
    assert row[reading.start : reading.end] == "2525" and reading.margin == pytest.approx(10.0)
    # a span of the column's name alone is that column's cell
    name = span_tokens(batch, 1, text.index("Port"), text.index("Port") + 4)
    assert name is not None
    s[1, tokens[0]], e[1, tokens[1]] = -20.0, -20.0
    s[1, name[0]], e[1, name[1]] = 5.0, 5.0
    _, reading = read_spans(s, e, batch, max_tokens=30)
    assert row[reading.start : reading.end] == "2525"


def test_a_span_of_a_row_as_written_is_found_in_its_reading_as_named_cells():
    """``read_span`` (what `qa train` teaches on a row read as named cells) and
    ``source_span`` (how the service maps a span read back) undo each other on every cell,
    marks and empty cells included."""
    header = "| Service | `Port` | Notes |"
    for row in ("| mail | 2525 | **fast** |", "| web |  | ~~old~~ |", "| `db` | 5432 |  |"):
        text, source = row_view(row, header)
        for cell in (c.strip(" *~`") for c in row.strip("|").split("|")):
            if not cell:
                continue
            at = row.index(cell)
            start, end = read_span(source, at, at + len(cell))
            assert text[start:end] == cell
            assert source_span(source, start, end) == (at, at + len(cell))
    with pytest.raises(ValueError, match="nothing read comes from"):
        read_span(row_view("| a | b |", "| x | y |")[1], 0, 1)  # the border bar
