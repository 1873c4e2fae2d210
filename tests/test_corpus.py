"""The labelled corpus (train/): every label checked, and the checks themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.corpus import Corpus, CorpusError, Example, label_row, load_corpus, overlap

TRAIN = Path(__file__).resolve().parents[1] / "train"
INDEPENDENT = Path(__file__).resolve().parent / "data" / "independent"


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    """train/ loaded once for the tests that read it: load_corpus checks every label as
    it loads (a span not at its offsets or outside its sentence, an id twice) and raises
    on the first that breaks one."""
    return load_corpus(TRAIN)


def test_every_label_of_the_corpus_holds(corpus):
    """Spans at their offsets and inside their sentences, sentences where the splitter
    puts them, unique ids: load_corpus raises on the first item that breaks one."""
    assert len(corpus.documents) >= 150 and len(corpus.examples) >= 5000
    assert len(set(corpus.kinds.values())) >= 10
    for e in corpus.examples:
        if e.answerable:
            text = corpus.documents[e.doc]
            assert text[e.answer_start : e.answer_end] == e.span
            assert e.sentence_start <= e.answer_start < e.answer_end <= e.sentence_end
    unanswerable = sum(not e.answerable for e in corpus.examples) / len(corpus.examples)
    followups = sum(e.followup for e in corpus.examples) / len(corpus.examples)
    assert unanswerable >= 0.25 and followups >= 0.05


def test_the_split_is_by_document_and_keeps_a_fifth_for_validation(corpus):
    train_docs = {e.doc for e in corpus.split("train")}
    validation_docs = {e.doc for e in corpus.split("validation")}
    assert not train_docs & validation_docs
    assert len(validation_docs) >= 0.2 * len(corpus.documents)
    assert set(corpus.kinds[d] for d in validation_docs) == set(corpus.kinds.values())


def test_no_test_question_or_document_is_in_the_corpus(corpus):
    """Neither in the training and validation documents nor in the sets beside them
    (train/independent/, train/markdown/, train/tables/, train/technical/, train/agents/,
    train/round8/, train/quoted/)."""
    asked = {t.strip().lower() for e in corpus.examples for t in e.turns}
    beside = ("independent", "markdown", "tables", "technical", "agents", "round8", "quoted")
    own = [TRAIN / n for n in beside]
    for path in (p for folder in own for p in folder.rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            asked.update(t.strip().lower() for t in json.loads(line)["turns"])
    for path in INDEPENDENT.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            for turn in json.loads(line)["turns"]:
                assert turn.strip().lower() not in asked, (path.name, turn)
    texts = set(corpus.documents.values())
    beside = (p for f in own for p in f.rglob("*") if p.suffix.lower() in (".txt", ".md"))
    texts.update(p.read_text(encoding="utf-8") for p in beside)
    for path in INDEPENDENT.rglob("*"):
        if path.suffix.lower() in (".txt", ".md"):
            assert path.read_text(encoding="utf-8") not in texts


def test_every_question_set_is_labelled_from_its_own_documents():
    """The development and test sets the service is scored on, and the Markdown validation
    set (train/markdown/): each answerable question's support lies inside one sentence of
    the set's documents, as the service splits them (a citation is one sentence; a
    Markdown table row is one), and its answer in those documents (the metrics could not
    be met otherwise); an unanswerable one has neither; labels are not empty, ids unique."""
    from qa.documents import SUFFIXES, is_markdown
    from qa.evaluate import _contains, load_items
    from qa.split import split_sentences
    from qa.training.report import DEFAULT_SETS, available_sets

    root = TRAIN.parent
    sets = available_sets(root)
    assert {n for n, *_ in sets} >= {n for n, *_ in DEFAULT_SETS} - {"dev"}
    markdown = TRAIN / "markdown"
    sets.append(("markdown validation", markdown / "validation.jsonl", markdown / "validation"))
    for name, questions, seeds in sets:
        files = sorted(p for p in seeds.iterdir() if p.suffix.lower() in SUFFIXES)
        raw = [(p.read_text(encoding="utf-8"), is_markdown(p.name)) for p in files]
        assert raw, name
        texts = [t for t, _ in raw]
        sentences = [t[s:e] for t, md in raw for s, e in split_sentences(t, md)]
        items = load_items(questions)
        assert len({i.id for i in items}) == len(items), name
        for item in items:
            if not item.answerable:
                assert not item.support and not item.answer, (name, item.id)
                continue
            assert all(x.strip() for x in (*item.support, *item.answer)), (name, item.id)
            # as `qa eval` reads them: case aside, a run of white space (a wrapped line's
            # break) one space
            assert any(_contains(s, item.support) for s in sentences), (name, item.id)
            assert any(_contains(t, item.answer) for t in texts), (name, item.id)


TEXT = "Bridge reopens\n\nThe bridge reopened on Monday after repairs costing £48 million.\n"


def test_label_finds_the_sentence_and_the_span():
    row = {"id": "x", "answerable": True, "support": ["reopened on Monday"], "span": "£48 million"}
    labelled = label_row(row, TEXT)
    assert TEXT[labelled["answer_start"] : labelled["answer_end"]] == "£48 million"
    assert labelled["sentence"] == 1
    s, e = labelled["sentence_start"], labelled["sentence_end"]
    assert TEXT[s:e].startswith("The bridge") and TEXT[s:e].endswith("million.")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"support": ["bridge"], "span": "bridge"}, "in 2 sentences"),
        ({"support": ["reopened"], "span": "£50 million"}, "is not in its sentence"),
        ({"support": [], "span": "bridge"}, "needs a support"),
    ],
)
def test_label_refuses_what_it_cannot_place(row, message):
    with pytest.raises(CorpusError, match=message):
        label_row({"id": "x", "answerable": True, **row}, TEXT)


def test_overlap_counts_the_question_words_the_sentence_holds():
    assert overlap("When did the bridge reopen?", "The bridge reopened on Monday.") == 1.0
    assert overlap("Who paid for the repairs?", "The bridge reopened on Monday.") < 0.5


def test_a_markdown_document_is_part_of_a_corpus(tmp_path):
    """Documents may be Markdown: a table row is a sentence, its cell a span."""
    text = "# Prices\n\n| Item | Price |\n| --- | --- |\n| Tea | £2.50 |\n| Cake | £3.20 |\n"
    (tmp_path / "documents" / "howto").mkdir(parents=True)
    (tmp_path / "documents" / "howto" / "menu.md").write_text(text, encoding="utf-8")
    (tmp_path / "documents" / "howto" / "notes.txt").write_text("Open daily.\n", encoding="utf-8")
    (tmp_path / "questions" / "howto").mkdir(parents=True)
    row = {"id": "m-q01", "doc": "howto/menu.md", "turns": ["What does a cake cost?"]}
    row |= {"answerable": True, "support": ["| Cake |"], "answer": ["£3.20"], "span": "£3.20"}
    labelled = label_row(row, text)
    (tmp_path / "questions" / "howto" / "menu.jsonl").write_text(json.dumps(labelled) + "\n")
    corpus = load_corpus(tmp_path)
    assert set(corpus.documents) == {"howto/menu.md", "howto/notes.txt"}
    (example,) = corpus.examples
    number, (s, e) = example.gold()
    assert labelled["sentence_start"] == text.index("| Cake | £3.20 |")
    assert text[labelled["sentence_start"] :][s:e] == "£3.20" and number == 3


def test_the_table_documents_are_a_labelled_corpus_apart(corpus):
    """train/tables/: Markdown documents with tables, loaded as a corpus of their own (every
    label checked), many of their questions answered by a table row; not in train/."""
    from qa.split import split_sentences

    tables = load_corpus(TRAIN / "tables")
    assert len(tables.documents) >= 20 and len(tables.examples) == 34 * len(tables.documents)
    assert all(d.endswith(".md") for d in tables.documents)
    assert not set(tables.documents) & set(corpus.documents)
    for doc, text in tables.documents.items():
        spans = split_sentences(text, markdown=True)
        rows = [
            e
            for e in tables.examples
            if e.doc == doc and e.answerable and text[slice(*spans[e.gold()[0]])].startswith("|")
        ]
        assert len(rows) >= 12, doc


def assert_the_brief_counts(corpus: Corpus) -> None:
    """Each document of ``corpus`` has the brief's 34 questions: 22 answerable of one
    turn, 3 answerable follow-ups and 9 unanswerable."""
    for doc in corpus.documents:
        mine = [e for e in corpus.examples if e.doc == doc]
        answered = [e.followup for e in mine if e.answerable]
        assert (answered.count(False), answered.count(True), len(mine)) == (22, 3, 34), doc


def test_the_technical_documents_are_a_labelled_corpus_apart(corpus):
    """train/technical/: Markdown documents of 8 kinds the corpus lacks (READMEs, release
    notes, runbooks, ...), loaded as a corpus of their own (every label checked), with as
    many unanswerable questions and follow-ups as the corpus asks for; not in train/."""
    technical = load_corpus(TRAIN / "technical")
    assert len(technical.documents) >= 32
    assert all(d.endswith(".md") for d in technical.documents)
    assert len(set(technical.kinds.values())) == 8
    assert not set(technical.kinds.values()) & set(corpus.kinds.values())
    names = {Path(d).stem for d in corpus.documents}
    assert not {Path(d).stem for d in technical.documents} & names
    assert not set(technical.documents.values()) & set(corpus.documents.values())
    assert_the_brief_counts(technical)


def test_the_eighth_round_is_a_labelled_corpus_apart_of_the_corpus_kinds(corpus):
    """train/round8/: 48 more documents written to the corpus's brief, 4 of each of its 12
    kinds, loaded as a corpus of their own (every label checked), 22 answerable, 3
    answerable follow-ups and 9 unanswerable questions each; no document, name or id
    shared with train/."""
    round8 = load_corpus(TRAIN / "round8")
    kinds = list(round8.kinds.values())
    assert set(kinds) == set(corpus.kinds.values())
    assert all(kinds.count(k) == 4 for k in set(kinds))
    assert not {Path(d).stem for d in round8.documents} & {Path(d).stem for d in corpus.documents}
    assert not set(round8.documents.values()) & set(corpus.documents.values())
    assert not {e.id for e in round8.examples} & {e.id for e in corpus.examples}
    assert all(350 <= len(text.split()) <= 700 for text in round8.documents.values())
    assert_the_brief_counts(round8)


def questions_of_training_documents(corpus: Corpus, folder: str) -> dict[str, list[Example]]:
    """train/<folder>/'s questions by document, every label checked as the corpus's are;
    each of a training document (none of a validation one), one turn, its id and wording
    new to the corpus and to the folder."""
    from qa.corpus import check_row
    from qa.documents import is_markdown
    from qa.split import split_sentences

    ids = {e.id for e in corpus.examples}
    asked = {e.turns[-1].strip().lower() for e in corpus.examples}
    by_doc: dict[str, list[Example]] = {}
    sentences: dict[str, list[tuple[int, int]]] = {}
    for path in sorted((TRAIN / folder).rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            doc = row["doc"]
            assert doc in corpus.documents and doc not in corpus.validation, row["id"]
            text = corpus.documents[doc]
            if doc not in sentences:
                sentences[doc] = split_sentences(text, is_markdown(doc))
            e = check_row(row, text, sentences[doc])
            assert e.id not in ids and e.turns[-1].strip().lower() not in asked, e.id
            assert not e.followup, e.id
            ids.add(e.id)
            asked.add(e.turns[-1].strip().lower())
            by_doc.setdefault(doc, []).append(e)
    return by_doc


def test_the_agent_questions_are_labelled_and_ask_of_training_documents_only(corpus):
    """train/agents/: for each training document, 4 answerable one-turn questions asking who
    or what did something and 2 unanswerable ones, every label checked as the corpus's
    are; none of a validation document, none repeating a corpus question or id."""
    by_doc = questions_of_training_documents(corpus, "agents")
    assert set(by_doc) == set(corpus.documents) - corpus.validation
    assert all(sorted(e.answerable for e in q) == [False] * 2 + [True] * 4 for q in by_doc.values())
    at_start = sum(
        e.answerable and e.answer_start - e.sentence_start <= 4 for q in by_doc.values() for e in q
    )
    assert at_start >= 2 * len(by_doc)  # the brief: 2 of the 4 answers open their sentence


def test_the_quoted_questions_repeat_their_sentence_and_ask_of_training_documents_only(corpus):
    """train/quoted/: for each training document, 4 answerable one-turn questions that repeat
    most of their sentence's words and 2 unanswerable ones that repeat as much of a sentence
    the document holds, every label checked as the corpus's are; each accepted answer inside
    its span (the brief)."""
    from qa.documents import is_markdown
    from qa.split import split_sentences

    by_doc = questions_of_training_documents(corpus, "quoted")
    assert set(by_doc) == set(corpus.documents) - corpus.validation
    for doc, questions in by_doc.items():
        assert sorted(e.answerable for e in questions) == [False] * 2 + [True] * 4, doc
        text = corpus.documents[doc]
        sentences = [text[a:b] for a, b in split_sentences(text, is_markdown(doc))]
        for e in questions:
            if e.answerable:
                assert all(a.lower() in e.span.lower() for a in e.answer), e.id
                said = text[e.sentence_start : e.sentence_end]
                assert overlap(e.question, said) >= 0.75, e.id
            else:
                assert max(overlap(e.question, s) for s in sentences) >= 0.75, e.id


def test_a_question_line_holding_a_line_separator_reads_as_one_line(tmp_path):
    """json.dumps(..., ensure_ascii=False) keeps U+2028 raw: a question file is read line by
    line at "\\n" only, never broken at it."""
    text = "The bridge reopened on Monday after repairs costing £48 million.\n"
    (tmp_path / "documents" / "news").mkdir(parents=True)
    (tmp_path / "documents" / "news" / "bridge.txt").write_text(text, encoding="utf-8")
    (tmp_path / "questions" / "news").mkdir(parents=True)
    row = {"id": "b-q01", "doc": "news/bridge.txt", "turns": ["What did the repairs\u2028cost?"]}
    row |= {"answerable": True, "support": ["reopened"], "answer": ["£48 million"]}
    labelled = label_row(row | {"span": "£48 million"}, text)
    line = json.dumps(labelled, ensure_ascii=False) + "\n"
    assert "\u2028" in line
    (tmp_path / "questions" / "news" / "bridge.jsonl").write_text(line, encoding="utf-8")
    (example,) = load_corpus(tmp_path).examples
    assert example.question == "What did the repairs\u2028cost?"
