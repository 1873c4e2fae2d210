"""Sentence splitting: exact offsets, and the cases real news text has."""

import pytest

from qa.split import split_sentences


def sentences(text):
    spans = split_sentences(text)
    for s, e in spans:
        assert text[s:e] == text[s:e].strip() and text[s:e]
    return [text[s:e] for s, e in spans]


def test_offsets_index_the_text_exactly(article_text):
    spans = split_sentences(article_text)
    assert len(spans) > 20
    last_end = 0
    for s, e in spans:
        assert last_end <= s < e <= len(article_text)
        last_end = e
    # every non-space character of the text belongs to some sentence
    covered = set()
    for s, e in spans:
        covered.update(range(s, e))
    assert all(article_text[i].isspace() for i in range(len(article_text)) if i not in covered)


def test_plain_sentences():
    assert sentences("The cat sat. The dog ran! Did it? Yes.") == [
        "The cat sat.",
        "The dog ran!",
        "Did it?",
        "Yes.",
    ]


def test_quotation_with_attribution_is_one_sentence():
    text = "“We have to act now, not later,” Rubio said. Then he left."
    assert sentences(text) == ["“We have to act now, not later,” Rubio said.", "Then he left."]


def test_quotation_ending_in_question_mark_keeps_its_attribution():
    assert sentences("“Why now?” Smith asked. Nobody knew.") == [
        "“Why now?” Smith asked.",
        "Nobody knew.",
    ]
    assert sentences('"Stop!" the officer shouted. We stopped.') == [
        '"Stop!" the officer shouted.',
        "We stopped.",
    ]


def test_multi_sentence_quotation_stays_with_its_attribution():
    text = "“We are cooperating. There will be no invasion,” she said. Talks go on."
    assert sentences(text) == [
        "“We are cooperating. There will be no invasion,” she said.",
        "Talks go on.",
    ]


def test_straight_quotes():
    text = 'He said "no more delays." The vote followed.'
    assert sentences(text) == ['He said "no more delays."', "The vote followed."]


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "The U.S. military is ready. Others are not.",
            ["The U.S. military is ready.", "Others are not."],
        ),
        ("Dr. Smith arrived. He sat down.", ["Dr. Smith arrived.", "He sat down."]),
        (
            "It began on Jan. 5 in the city. It ended later.",
            ["It began on Jan. 5 in the city.", "It ended later."],
        ),
        (
            "Troops left the U.S. The next day they landed.",
            ["Troops left the U.S.", "The next day they landed."],
        ),
        (
            "Mr. and Mrs. Jones met J. K. Rowling. She smiled.",
            ["Mr. and Mrs. Jones met J. K. Rowling.", "She smiled."],
        ),
    ],
)
def test_abbreviations_and_initials(text, expected):
    assert sentences(text) == expected


def test_decimals_and_thousands():
    text = "Growth was 3.5 percent. The group has 7,500 members and 1.2 million fans."
    assert sentences(text) == [
        "Growth was 3.5 percent.",
        "The group has 7,500 members and 1.2 million fans.",
    ]


def test_heading_without_stop_and_credit_line():
    text = "Talks Begin Again\nThe president spoke on Friday. He was brief.\n\n© Agence Example\n"
    assert sentences(text) == [
        "Talks Begin Again",
        "The president spoke on Friday.",
        "He was brief.",
        "© Agence Example",
    ]


def test_markdown_headings_and_list_items():
    text = "# A title\n\n- first point here\n- second point\n\n1. Numbered item.\n---\n"
    assert sentences(text) == ["A title", "first point here", "second point", "Numbered item."]


def test_non_ascii_letters_and_windows_newlines():
    text = "Él llegó a Bogotá. Ça va bien.\r\nÜber alles — sí.\r\n"
    assert sentences(text) == ["Él llegó a Bogotá.", "Ça va bien.", "Über alles — sí."]


def test_a_name_ending_in_a_non_ascii_letter_ends_a_sentence():
    # "Mendonça." is a word, not the initial "a."
    text = "A strike from midfielder Rui Mendonça. Finland equalised later."
    assert sentences(text) == ["A strike from midfielder Rui Mendonça.", "Finland equalised later."]


def test_lowercase_after_stop_is_not_a_boundary():
    assert sentences("He weighed approx. five kilos. Fine.") == [
        "He weighed approx. five kilos.",
        "Fine.",
    ]
    assert sentences("Prices rose... then fell. Done.") == ["Prices rose... then fell.", "Done."]


def test_empty_and_blank_text():
    assert split_sentences("") == []
    assert split_sentences("  \n\n \t\n") == []


def test_a_markdown_table_row_is_one_sentence_whatever_its_cells_hold():
    text = (
        "| Name | Notes |\n"
        "| --- | :---: |\n"
        "|  data  | Input. Must have an index? Yes! |  \n"
        "| `x` | Mr. Smith said “Go.” Then left. |\n"
        "A row | without bars. Splits as prose.\n"
    )
    assert sentences(text) == [
        "| Name | Notes |",
        "|  data  | Input. Must have an index? Yes! |",
        "| `x` | Mr. Smith said “Go.” Then left. |",
        "A row | without bars.",
        "Splits as prose.",
    ]


def test_a_line_with_no_full_stop_is_cut_into_passages_the_reader_can_read():
    """A run-on line (a pasted page with no stops) would be one sentence of which the
    reader reads its first 96 tokens only: it is cut at clause marks or spaces into pieces
    of at most MAX_SENTENCE characters, each exact, none lost."""
    from qa.split import MAX_SENTENCE

    run_on = ", ".join(f"item {i} of the list" for i in range(400))
    text = f"A heading\n{run_on} and the secret code word is marmalade\nLast line."
    spans = split_sentences(text)
    pieces = spans[1:-1]
    assert len(pieces) > 10 and all(e - s <= MAX_SENTENCE for s, e in pieces)
    assert all(text[e - 1] == "," for s, e in pieces[:-1])  # cut after a clause mark
    words = " ".join(text[s:e] for s, e in pieces)
    assert words == run_on + " and the secret code word is marmalade"  # nothing lost
    assert [text[s:e] for s, e in (spans[0], spans[-1])] == ["A heading", "Last line."]
    # one long word has nowhere to be cut but the allowance
    assert split_sentences("x" * (2 * MAX_SENTENCE + 5)) == [
        (0, MAX_SENTENCE),
        (MAX_SENTENCE, 2 * MAX_SENTENCE),
        (2 * MAX_SENTENCE, 2 * MAX_SENTENCE + 5),
    ]


def test_markdown_html_comments_are_never_a_sentence_nor_part_of_one():
    text = (
        "# Notice\n\n<!-- internal: the clerk's phone is 01632 960123 -->\n"
        "The council meets on Monday. <!-- a note --> It starts at 7 pm.\n"
        "Before <!-- hidden\nover two lines --> after the comment.\n"
        "```html\n<!-- shown in a code block -->\n```\n"
        "<!-- never closed\nThe end."
    )
    spans = split_sentences(text, markdown=True)
    got = [text[s:e] for s, e in spans]
    assert got == [
        "Notice",
        "The council meets on Monday.",
        "It starts at 7 pm.",
        "Before",
        "after the comment.",
        "<!-- shown in a code block -->",  # (a fence's opening line shows nothing)
    ]
    assert all(text[s:e] == text[s:e].strip() for s, e in spans)
    # a plain text file shows its comments: there they are text like any other
    assert "<!-- a note --> It starts at 7 pm." in sentences(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        # inside a code span a comment's opening is text, and so is one closed nowhere in
        # its paragraph; one that opens a line runs to the end
        (
            "Comments open with `<!--`.\nThe rest matters.",
            ["Comments open with `<!--`.", "The rest matters."],
        ),
        (
            "Inline <!-- never closed\n\nNext paragraph.",
            ["Inline <!-- never closed", "Next paragraph."],
        ),
        ("<!-- a block never closed\n\nNext paragraph.", []),
        ("Inline <!-- over\ntwo lines --> done.", ["Inline", "done."]),
        # <!--> and <!---> are whole comments
        ("A <!--> B.\nC <!---> D.", ["A", "B.\nC", "D."]),  # one paragraph; 'B.' an initial
        # a fence's opening mark in a comment is no fence, and a fence's '<!--' takes no
        # '-->' of the comment after it
        ("<!--\n```\nold\n-->\nShown. <!-- hidden --> More.", ["Shown.", "More."]),
        (
            "```html\n<!-- start\n```\nText <!-- code 4512 --> more.",
            ["<!-- start", "Text", "more."],
        ),
        # a fence closes only on its own mark, at least as long
        (
            "````\n```\nin code <!-- x -->\n````\nAfter <!-- y --> it.",
            ["in code <!-- x -->", "After", "it."],
        ),
        # a table row stays one sentence, as written, comments and all
        ("| a | <!-- c --> b |\n|---|---|\n| x | z |", ["| a | <!-- c --> b |", "| x | z |"]),
        # a paragraph ends where a block opens: backticks do not pair across a comment that
        # opens a line (it stays hidden), nor a comment close across a heading (it stays text)
        (
            "We keep `apples here.\n<!-- pantry password swordfish -->\nand pears` too.",
            ["We keep `apples here.", "and pears` too."],
        ),
        (
            "Uses ``ticks.\n# Head\n<!-- code 4471 -->\nAnd `` here.",
            ["Uses ``ticks.", "Head", "And `` here."],
        ),
        (
            "Intro <!-- hidden\n# Visible Heading Here\nstill --> after.",
            ["Intro <!-- hidden", "Visible Heading Here", "still --> after."],
        ),
        # (and a line after a quote, opening no block, goes on with it)
        ("Intro <!-- x\n> quoted\n--> after.", ["Intro <!-- x", "quoted\n--> after."]),
    ],
)
def test_markdown_comments_are_read_as_commonmark_reads_them(text, expected):
    spans = split_sentences(text, markdown=True)
    assert [text[s:e] for s, e in spans] == expected
    assert all(text[s:e] == text[s:e].strip() for s, e in spans)


def test_a_long_markdown_document_with_a_comment_splits_in_linear_time():
    """Every paragraph's end, line start and run of backticks is found once: 6,000 lines of
    code spans and one comment took 15 s when each was searched for afresh."""
    import time

    text = "<!-- a note -->\n" + "\n".join(["Use `a` and `b` here, see `c`."] * 6000)
    started = time.perf_counter()
    spans = split_sentences(text, markdown=True)
    assert len(spans) == 6000
    assert time.perf_counter() - started < 3.0  # about 0.15 s; 100 times that was the bug


def test_a_long_wrapped_paragraph_splits_in_linear_time():
    """A wrapped Markdown paragraph can be a whole document: stops that end no sentence
    ('it. the dog') are not each followed by a search of everything since the last one
    (1.15 MB took 24 s so; 0.25 s now)."""
    import time

    text = "the cat sat on it. the dog\nran off. " * 32000
    started = time.perf_counter()
    spans = split_sentences(text, markdown=True)
    assert len(spans) > 2000 and all(e - s <= 450 for s, e in spans)
    assert time.perf_counter() - started < 3.0


def md_sentences(text):
    spans = split_sentences(text, markdown=True)
    assert all(text[s:e] == text[s:e].strip() and text[s:e] for s, e in spans)
    return [text[s:e] for s, e in spans]


def test_a_wrapped_markdown_paragraph_is_split_as_markdown_shows_it():
    text = (
        "**quillsync** keeps a folder of notes in sync with a\n"
        "remote server. It was started in\n2021 by the Lantern collective.\n"
        "\n- Ignore rules use the same syntax as\n  `.gitignore` files.\n- Runs as a watcher\n"
        "\n> The sync is safe, and it\n> never deletes a note. Ask us why.\n"
    )
    assert md_sentences(text) == [
        "**quillsync** keeps a folder of notes in sync with a\nremote server.",
        "It was started in\n2021 by the Lantern collective.",
        "Ignore rules use the same syntax as\n  `.gitignore` files.",
        "Runs as a watcher",
        "The sync is safe, and it\n> never deletes a note.",
        "Ask us why.",  # (its line's '> ' is no part of it)
    ]
    # the same text in a plain text file: every line break ends a sentence
    assert "remote server." in sentences(text)


def test_markdown_lines_that_stay_apart():
    text = (
        "**Date:** Tuesday, 9 April 2024  \n**Time:** 10:00\\\n**Room:** 4B\n"  # hard breaks
        "# Title\nFirst line after the title\n"  # a heading is one line
        "A paragraph line\n1. An item\n2. Another item\n"  # list items, of any number
        "| a | b |\n| --- | --- |\n| x | y |\nTail line\n"  # table rows
        "\nSetext title\n=====\n<p>Some html</p>\n"
    )
    assert md_sentences(text) == [
        "**Date:** Tuesday, 9 April 2024",
        "**Time:** 10:00\\",
        "**Room:** 4B",
        "Title",
        "First line after the title\nA paragraph line",
        "An item",
        "Another item",
        "| a | b |",
        "| x | y |",
        "Tail line",
        "Setext title",
        "<p>Some html</p>",
    ]


def test_a_number_that_wraps_to_a_line_start_continues_its_paragraph():
    """As in CommonMark, only '1.' starts a list inside a paragraph; another number opening
    a line continues the paragraph, or a bullet's item, unless it follows an item of an
    ordered list (the list's next item)."""
    text = (
        "The preview opens in your browser on port\n7310. When you are happy, send it.\n"
        "\n1. Drain the node\n2. Restart it, then wait\n14) Check the logs\n"
        "\n- A bullet that wraps to\n2024. Then another sentence\n"
    )
    assert md_sentences(text) == [
        "The preview opens in your browser on port\n7310.",
        "When you are happy, send it.",
        "Drain the node",
        "Restart it, then wait",
        "Check the logs",
        "A bullet that wraps to\n2024.",
        "Then another sentence",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # an autolink shows: it is text, and an inline tag cannot interrupt a paragraph
        (
            "Write to\n<help@example.org>\nor see\n<https://example.org/faq>.\n",
            ["Write to\n<help@example.org>\nor see\n<https://example.org/faq>."],
        ),
        (
            "Press\n<kbd>Ctrl</kbd>+<kbd>C</kbd> to stop.\n",
            ["Press\n<kbd>Ctrl</kbd>+<kbd>C</kbd> to stop."],
        ),
        # a nested item, indented four spaces or a tab, is an item of its own
        (
            "- Install it\n    - needs Python 3.11\n\t- and pip\n",
            ["Install it", "needs Python 3.11", "and pip"],
        ),
        # code indented in a list item, or indented after a paragraph, is read as written
        (
            "10. Install:\n\n    ```bash\n    pip install x\n    ```\n",
            ["Install:", "pip install x"],
        ),
        ("Run:\n\n    - x\n    qa serve\n", ["Run:", "- x", "qa serve"]),
        # inside a block quote, blocks are blocks: a heading, table rows, items, a fence
        ("> ## Warning\n> Do not unplug it.\n", ["Warning", "Do not unplug it."]),
        (
            "> | Port | Use |\n> | --- | --- |\n> | 8080 | web |\n",
            ["| Port | Use |", "| 8080 | web |"],
        ),
        ("> 1. Stop the pump.\n> 2. Close the valve.\n", ["Stop the pump.", "Close the valve."]),
        ("> ```\n> > make all\n> ```\nDone.\n", ["> make all", "Done."]),
        # a line without a word (a rule, front matter's fence, an underline) starts no run
        (
            "---\ntitle: Guide\n---\nThe harbour opens at 6 am.\n",
            ["title: Guide", "The harbour opens at 6 am."],
        ),
        (
            "Fees\n====\nA berth costs 5 euros.\n* * *\nThe office shuts at 5.\n",
            ["Fees", "A berth costs 5 euros.", "The office shuts at 5."],
        ),
        # marks without a word are part of a paragraph, and alone nothing
        ("He paused\n...\nthen left.\n\n…\nThe end.\n", ["He paused\n...\nthen left.", "The end."]),
        # a table without outer bars: a row a sentence
        (
            "Name | Port\n--- | ---\nweb | 8080\ndb | 5432\n",
            ["Name | Port", "web | 8080", "db | 5432"],
        ),
    ],
)
def test_markdown_blocks_are_read_as_commonmark_reads_them(text, expected):
    assert md_sentences(text) == expected


def test_fenced_code_is_read_line_by_line_as_written():
    text = (
        "Run this:\n\n```bash\n# a comment\n- not a list\n> not a quote\npip install x\n```\nDone"
    )
    assert md_sentences(text) == [
        "Run this:",
        "# a comment",  # its marks are its text; the fence's lines show nothing ('bash')
        "- not a list",
        "> not a quote",
        "pip install x",
        "Done",
    ]


def test_markdown_never_shown_is_never_a_sentence():
    text = (
        '<div align="center">\n\n[![build](https://ci.example/b.svg)](https://ci.example)\n'
        "![logo](logo.png)\n</div>\n\nShown text here.\n\n[3.2.0]: https://example.org/3.2.0\n"
        '[docs]: <https://example.org/docs> "The docs"\n[^1]: A footnote shows.\n'
    )
    assert md_sentences(text) == ["Shown text here.", "A footnote shows."]
    tasks = "- [x] Ship the release\n- [ ] Write the notes\n* [link] stays\n- [X]"
    assert md_sentences(tasks) == ["Ship the release", "Write the notes", "[link] stays", "[X]"]


@pytest.mark.parametrize("markdown", [False, True])
def test_a_section_number_stays_with_its_title(markdown):
    text = "## 1. Scope\n### 2.3. Late fees\nIt rose by 2. Then it fell.\n"
    got = split_sentences(text, markdown=markdown)
    assert [text[s:e] for s, e in got] == [
        "1. Scope",
        "2.3. Late fees",
        "It rose by 2.",
        "Then it fell.",
    ]
