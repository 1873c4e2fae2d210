"""Markdown as the reader reads it and as answers are cut from it: code and emphasis marks
read as blanks, table rows (read after their header, or as named cells), and spans that
never leave a mark or a cell bar broken at their edges."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence

from .documents import is_markdown
from .records import Sentence

# Markdown a span should not begin or end with: a table's cell bar, or a code or emphasis
# mark whose partner it leaves out. The reader reads a .md document's code and emphasis
# marks as blanks (``markdown_view``), and its table rows as written.
_CELL = "|"
_CODE_SPAN = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)")
_BACKTICKS = re.compile(r"`+")
_STARS = re.compile(r"\*+")
_UNDERSCORES = re.compile(r"_+")
_LINE_BREAK = re.compile(r"\r\n|\n|\r")
_FOOTNOTE_REF = re.compile(r"\[\^[^\]\s]+\]")  # '[^2]': a footnote's marker
_FOOTNOTE_AT_END = re.compile(r"\[\^[^\]\s]+\]$")
_LINK_TARGET = re.compile(r"\([^\s()]*\)")  # '(https://...)' after a link's '[text]'
MARKDOWN_MARKS = "`*"
_BLANKED = str.maketrans({m: " " for m in MARKDOWN_MARKS})
_QUOTE_MARKS = re.compile(r"(?<=[\r\n])[ \t]*(?:>[ \t]?)+")


def markdown_view(text: str) -> str:
    """``text`` as the reader reads a Markdown sentence: each code and emphasis mark
    (``MARKDOWN_MARKS``) a space, so that 'rated **IP20** for' reads as prose does, and so
    is a block quote's ``>`` opening a line inside it. The same
    length, so that every offset into it is an offset into ``text``."""
    if any(m in text for m in MARKDOWN_MARKS):
        text = text.translate(_BLANKED)
    if "\n" in text or "\r" in text:  # a quote wrapped over lines: its '>' marks as blanks
        text = _QUOTE_MARKS.sub(lambda m: " " * len(m.group()), text)
    return text


_DELIMITER_ROW = re.compile(r"\s*\|?(?:\s*:?-{3,}:?\s*\|)*\s*:?-{3,}:?\s*\|?\s*")


def is_delimiter_row(line: str) -> bool:
    """Whether ``line`` is the ``| --- | :---: |`` line under a Markdown table's header."""
    return _DELIMITER_ROW.fullmatch(line) is not None


def is_table_row(text: str) -> bool:
    """Whether ``text`` is a row of a Markdown table as the splitter keeps it: one line,
    between cell bars."""
    return len(text) > 1 and text[0] == _CELL and text[-1] == _CELL


def table_headers(sentences: Sequence[Sentence], texts: Mapping[str, str]) -> list[int | None]:
    """For each of ``sentences`` (an index's or a document's, in order; their documents'
    ``texts`` by name), the position of the header row of the Markdown table it is a row of
    (below its ``| --- |`` line), or None: not such a row, or the header itself. The rows
    between must follow one another line by line: a row's header is the row above's, found
    once (linear in a long table)."""
    out: list[int | None] = []
    for at, s in enumerate(sentences):
        header = None
        if is_markdown(s.doc) and s.index > 0 and is_table_row(s.text):
            above = sentences[at - 1]
            if is_table_row(above.text):
                between = _LINE_BREAK.split(texts[s.doc][above.end : s.start])
                if len(between) == 3 and is_delimiter_row(between[1]):
                    header = at - 1
                elif len(between) == 2:  # else a blank line or anything else: not one table
                    header = out[at - 1]
        out.append(header)
    return out


def tidy_span(text: str, start: int, end: int) -> tuple[int, int]:
    """``text[start:end]`` (a Markdown sentence) without Markdown left broken at its edges:
    no spaces or table cell bars there ('| 8080' is '8080'), and no code or emphasis mark
    whose partner it leaves out (``markdown_marks``): one at its very edge is left out
    ('postgres://host/db`' is 'postgres://host/db'), and so is a pair around the whole span
    ('**Widget Server**' is 'Widget Server'), one inside takes its partner in
    ('WORKERS` | 4' is '`WIDGET_WORKERS` | 4': the reader, reading marks as blanks, may
    start inside a code span), and one without a partner stays only inside. A span across
    cells stays whole: cut to the cell it starts in, it lost more right answers than it
    tidied on the Markdown validation documents. A span ending with a link's text takes its
    target in ('see [the form](https://x.example/f)'). A footnote's marker at an edge is
    left out ('4,200 visitors[^2]' is '4,200 visitors'). Still the text's own characters: a
    span that would be left empty is returned as it is."""
    marks = markdown_marks(text)
    s, e = start, end
    for _ in range(4 * len(text) + 4):  # each step moves an edge; never endless
        if s >= e:
            break
        if text[s].isspace() or text[s] == _CELL:
            s += 1
        elif text[e - 1].isspace() or text[e - 1] == _CELL:
            e -= 1
        elif (ref := _FOOTNOTE_AT_END.search(text, s, e)) and ref.start() > s:
            e = ref.start()  # a footnote's marker (shown as a number) is no answer
        elif (ref := _FOOTNOTE_REF.match(text, s, e)) and ref.end() < e:
            s = ref.end()
        elif (moved := _mark_step(marks, s, e) or _wrapping(marks, s, e)) is not None:
            s, e = moved  # a broken mark left out; or a pair around it all ('**Widget**')
        else:
            break
    if s >= e:
        return start, end
    if text[e - 1] == "]" and "[" in text[s:e] and (target := _LINK_TARGET.match(text, e)):
        e = target.end()  # a link's text ending the span: its target too, or it is lost
    return s, e


def _wrapping(
    marks: list[tuple[int, int, tuple[int, int] | None]], s: int, e: int
) -> tuple[int, int] | None:
    """``s:e`` inside the pair of marks that opens at ``s`` and closes at ``e``, if one does
    and leaves something between them."""
    for a, b, partner in marks:
        if a == s and partner is not None and partner[1] == e and b < partner[0]:
            return b, partner[0]
    return None


def markdown_marks(text: str) -> list[tuple[int, int, tuple[int, int] | None]]:
    """The code and emphasis marks of a Markdown sentence: (start, end, its partner's
    (start, end) or None). A code span is a run of backticks closed by a run as long (its
    stars are not marks); outside code, a run of stars or underscores that may close (after
    a word) pairs with the last run as long that may open (before a word), and one with a
    space on both sides is no mark at all (2 * 3), nor an underscore inside a word."""
    marks: list[tuple[int, int, tuple[int, int] | None]] = []
    code: list[tuple[int, int]] = []
    for m in _CODE_SPAN.finditer(text):
        run = len(m.group(1))
        opening, closing = (m.start(), m.start() + run), (m.end() - run, m.end())
        marks += [(*opening, closing), (*closing, opening)]
        code.append((m.start(), m.end()))
    for m in _BACKTICKS.finditer(text):  # backticks that close no code span
        if not any(a <= m.start() < b for a, b in code):
            marks.append((m.start(), m.end(), None))
    for runs, inside_words in ((_STARS, True), (_UNDERSCORES, False)):
        marks += _emphasis(text, runs, inside_words, code)
    return sorted(marks)


def _emphasis(
    text: str, runs: re.Pattern[str], inside_words: bool, code: list[tuple[int, int]]
) -> list[tuple[int, int, tuple[int, int] | None]]:
    """The emphasis marks of one kind, outside ``code``: as in CommonMark, a run before a
    word may open and one after a word may close, pairing with the last open run as long;
    stars do so inside a word too, underscores only at a word's edge (``MAX_SIZE`` holds
    none)."""
    marks: list[tuple[int, int, tuple[int, int] | None]] = []
    opened: dict[int, list[tuple[int, int]]] = {}  # runs that may open, by length
    for m in runs.finditer(text):
        a, b = m.span()
        if any(x <= a < y for x, y in code):
            continue
        can_open = b < len(text) and not text[b].isspace()
        can_close = a > 0 and not text[a - 1].isspace()
        if not inside_words:
            can_open = can_open and (a == 0 or not text[a - 1].isalnum())
            can_close = can_close and (b == len(text) or not text[b].isalnum())
        waiting = opened.get(b - a)
        if can_close and waiting:
            partner = waiting.pop()
            marks += [(*partner, (a, b)), (a, b, partner)]
        elif can_open:
            opened.setdefault(b - a, []).append((a, b))
        elif can_close and inside_words:
            marks.append((a, b, None))  # closes nothing
        # neither (a space on both sides: 2 * 3, a bullet; an underscore inside a word) is
        # no mark; nor is an underscore that pairs with nothing (_config.yml, __dirname):
        # CommonMark shows it, and a name holds it
    if not inside_words:
        return marks
    return marks + [(a, b, None) for runs in opened.values() for a, b in runs]


def _mark_step(
    marks: list[tuple[int, int, tuple[int, int] | None]], s: int, e: int
) -> tuple[int, int] | None:
    """One step of ``tidy_span`` for the first mark that ``text[s:e]`` leaves broken, or
    None when it leaves none."""
    for a, b, partner in marks:
        if b <= s or a >= e:
            continue  # outside
        if a < s:  # the span begins inside the mark: start after it
            return b, e
        if b > e:  # it ends inside the mark: end before it
            return s, a
        if partner is not None and s <= partner[0] and partner[1] <= e:
            continue  # the pair whole inside
        if a == s:
            return b, e
        if b == e:
            return s, a
        if partner is not None:  # inside, its partner outside: take it in
            return (partner[0], e) if partner[0] < s else (s, partner[1])
    return None


def _escaped(text: str, i: int) -> bool:
    """Whether ``text[i]`` follows an odd run of backslashes (``\\|`` is a bar)."""
    run = 0
    while i - run > 0 and text[i - run - 1] == "\\":
        run += 1
    return run % 2 == 1


def _cells(row: str) -> list[tuple[int, int]]:
    """Each cell of a table row (bars at both ends) as the offsets of its text in ``row``,
    spaces left out; an escaped bar (``\\|``) is no border."""
    bars = [i for i, c in enumerate(row) if c == _CELL and not _escaped(row, i)]
    out = []
    for a, b in itertools.pairwise(bars):
        s, e = a + 1, b
        while s < e and row[s].isspace():
            s += 1
        while e > s and row[e - 1].isspace():
            e -= 1
        out.append((s, e))
    return out


def row_view(row: str, header: str) -> tuple[str, tuple[int, ...]] | None:
    """A Markdown table row as the reader reads it: each cell after its column's name in
    the ``header`` row ('Setting: interval; Default: 300.'; code and emphasis marks read as
    blanks, as ``markdown_view`` reads them; an empty cell skipped; a cell under an empty
    name alone), and where each of its characters comes from in ``row`` (-1 for the names
    and separators put in: see ``source_span``). None when the two rows do not have as
    many cells."""
    cells, names = _cells(row), _cells(header)
    if not cells or len(cells) != len(names):
        return None
    seen, named = markdown_view(row), markdown_view(header)
    text: list[str] = []
    source: list[int] = []

    def put(piece: str, at: int = -1) -> None:
        text.append(piece)
        source.extend(range(at, at + len(piece)) if at >= 0 else [-1] * len(piece))

    for (s, e), (ns, ne) in zip(cells, names, strict=True):
        value = seen[s:e].strip()
        if not value:
            continue
        if text:
            put("; ")
        name = " ".join(named[ns:ne].split())
        if name:
            put(name + ": ")
        put(value, s + len(seen[s:e]) - len(seen[s:e].lstrip()))
    if not text:
        return None
    put(".")
    return "".join(text), tuple(source)


def read_span(source: Sequence[int], start: int, end: int) -> tuple[int, int]:
    """The inverse of ``source_span``: a span of a sentence as written, as offsets into its
    reading (what ``qa train`` teaches); ValueError when that reading leaves it all out."""
    if not (inside := [j for j, s in enumerate(source) if start <= s < end]):
        raise ValueError(f"nothing read comes from the characters {start}:{end}")
    return inside[0], inside[-1] + 1


def source_span(source: Sequence[int], start: int, end: int) -> tuple[int, int]:
    """A span ``start:end`` of a sentence read in another form, as offsets into the
    sentence as written (``source``: where each character read comes from, -1 for what was
    put in): cut to the characters that come from it. A span of only what was put in is
    the text that follows it (a column's name: that column's cell), or with nothing after
    it (the closing stop), the text before it. ValueError when nothing read comes from the
    sentence."""
    inside = [s for s in source[start:end] if s >= 0]
    if not inside:
        after = next((j for j in range(end, len(source)) if source[j] >= 0), None)
        if after is not None:
            k = next((k for k in range(after, len(source)) if source[k] < 0), len(source))
            inside = list(source[after:k])
        else:
            last = next(
                (j for j in range(min(start, len(source)) - 1, -1, -1) if source[j] >= 0), None
            )
            if last is None:
                raise ValueError("nothing read comes from the sentence")
            k = next((k for k in range(last, -1, -1) if source[k] < 0), -1)
            inside = list(source[k + 1 : last + 1])
    return inside[0], inside[-1] + 1
