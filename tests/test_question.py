"""Reading questions and extracting answer spans (no model needed)."""

import pytest

from qa.extract import extract_span, find_typed
from qa.question import read_question
from qa.text import content_stems, stem


@pytest.mark.parametrize(
    "question, kind",
    [
        ("When did the talks start?", "date"),
        ("How many people attended?", "number"),
        ("How much did it cost?", "money"),
        ("What was the total price tag of the building?", "money"),
        # words that only begin like money words are not about money
        ("How much did the investigation find?", "number"),
        ("How much did the aides know?", "number"),
        ("What is the name of the bill?", "other"),
        ("How much financial aid does the town receive?", "money"),
        ("How much water can the basins hold?", "number"),
        ("How old is the mayor?", "age"),
        ("How long did the strike last?", "duration"),
        ("How tall is the tower?", "measure"),
        ("Who signed the treaty?", "person"),
        ("With whom did she meet?", "person"),
        ("Where was the summit held?", "place"),
        ("Did the minister resign?", "yesno"),
        ("What did the report find?", "other"),
    ],
)
def test_question_kinds(question, kind):
    assert read_question(question).kind == kind


def test_focus_of_which_questions():
    q = read_question("Which currency is used in Peru?")
    assert q.focus == "currency" and q.focus_direct
    assert read_question("What kind of government does it have?").focus == "government"
    generic = read_question("Over what period did prices rise?")
    assert generic.focus == "period" and not generic.focus_direct


def test_stems_meet_across_forms_and_spellings():
    assert stem("designated") == stem("designate")
    assert stem("organisations") == stem("organizations")
    assert stem("said") == stem("says") == "say"
    assert "us" in content_stems("The United States said so")
    assert "us" in content_stems("Why did the US act?")
    assert "us" not in content_stems("He told us")


@pytest.mark.parametrize(
    "kind, text, expected",
    [
        ("date", "The bill passed on March 3, 2021 after a debate.", "March 3, 2021"),
        ("date", "The month before, the mayor resigned.", "The month before"),
        ("date", "An open day is planned for Saturday, March 8.", "Saturday, March 8"),
        ("number", "Officials counted 12,400 votes in total.", "12,400 votes"),
        ("age", "The winner, a 34-year-old nurse, was delighted.", "34-year-old"),
        ("age", "“It is too late,” Okafor, 47, said.", "47"),
        ("duration", "Prices rose over three years in a row.", "over three years"),
        ("measure", "The tower stands 330 metres above the square.", "330 metres"),
        ("measure", "Basins that hold up to 600,000 cubic metres.", "600,000 cubic metres"),
        ("measure", "A 3.2-kilometre embankment along the bank.", "3.2-kilometre"),
        ("money", "The repair cost 410 million euros in all.", "410 million euros"),
        ("money", "They approved a £48 million plan.", "£48 million"),
        ("money", "Aid of US$5 billion was frozen.", "US$5 billion"),
        ("money", "It cost $300. Then it rose.", "$300"),  # no full stop in the amount
        # a number asked for comes with its unit rather than with the next word
        ("number", "Basins that hold up to 600,000 cubic metres of water.", "600,000 cubic metres"),
    ],
)
def test_typed_expressions(kind, text, expected):
    assert expected in [text[s:e] for s, e in find_typed(text, kind)]


@pytest.mark.parametrize(
    "question, sentence, expected",
    [
        ("When did the museum open?", "The museum opened in 1994 after a long campaign.", "1994"),
        (
            "Who opened the museum?",
            "Queen Ada Morel opened the museum in a short ceremony.",
            "Queen Ada Morel",
        ),
        (
            "What did the council approve?",
            "The council approved a new budget for the schools on Tuesday.",
            "new budget",
        ),
        (
            "What has she been dubbed?",
            "She has been dubbed the “Iron Lady” by her many critics.",
            "“Iron Lady”",
        ),
        (
            "What did the mayor accuse the firm's owners of?",
            "The mayor criticised the firm’s new owners, whom he accused of fraud and theft.",
            "fraud and theft",
        ),
        (
            "How many members does the club have?",
            "Founded in 1920, the club has 3,200 members today.",
            "3,200 members",
        ),
        (  # words are not cut out of a short quotation
            "What did the mayor call the decision?",
            "The mayor called the decision “the most important investment in a generation.”",
            "the most important investment in a generation.",
        ),
        (
            "How much will the new bridge cost?",
            "The new bridge, 2 kilometres long, will cost £48 million.",
            "£48 million",
        ),
    ],
)
def test_extract_spans(question, sentence, expected):
    span = extract_span(sentence, read_question(question))
    answer = sentence[span.start : span.end]
    assert expected in answer and len(answer) < len(sentence)


def test_yes_no_and_definition_questions_get_the_whole_sentence():
    sentence = "The mayor did not give further details."
    span = extract_span(sentence, read_question("Did the mayor give details?"))
    assert (span.start, span.end) == (0, len(sentence))


def test_the_noun_of_what_date_is_not_a_word_to_look_for():
    assert read_question("On what date was the wing opened?").terms == ("wing", "open")


@pytest.mark.parametrize(
    "question, text, expected",
    [
        # an age between commas is not the number asked for
        (
            "By how much will waiting times fall?",
            "Reyes, 54, said waiting times would fall by 40 percent.",
            ["40 percent"],
        ),
        # "how many" asks for a count: not a share, a sum of money or a distance
        (
            "How many people died?",
            "Cancer caused 31 percent of deaths, $4 million in costs and 1,200 deaths over 190 km.",
            ["1,200 deaths"],
        ),
        # a number the question holds is not its answer, even inside a longer one
        ("How many boats were there in 2012?", "In 2012 there were 12 boats.", ["12 boats"]),
        # "what percentage" asks for a percentage
        (
            "What percentage of the votes did she win?",
            "She won 12,000 votes, 54 percent of the total.",
            ["54 percent"],
        ),
    ],
)
def test_number_answers_are_counts_or_amounts_as_asked(question, text, expected):
    from qa.extract import expressions

    assert [text[s:e] for s, e in expressions(text, read_question(question))] == expected
