"""Splitting a document into sentences with exact character offsets.

``split_sentences(text)`` returns ``(start, end)`` pairs such that ``text[start:end]`` is a
sentence, trimmed of surrounding white space. In plain text a line break always ends a
sentence, so a heading without a final stop, a credit line or a list item stands on its
own; in Markdown (``markdown=True``) a paragraph, list item or quote wrapped over several
lines is read as one line, as Markdown shows it (``blocks.markdown_runs``). Inside a line, a
sentence ends at ``.``, ``!``, ``?`` or ``…`` (with any closing quotes or brackets)
followed by white space and something that can start a sentence, except after an
abbreviation or an initial, and not inside a quotation, so that a quotation and its
attribution stay one sentence. A line between cell bars (a Markdown table row) is one
sentence whatever its cells hold.
"""

from __future__ import annotations

import bisect
import re

from .blocks import HAS_WORD as _HAS_WORD
from .blocks import markdown_runs
from .blocks import skip_space as _skip_space

# Titles that are always followed by a name: never the end of a sentence.
TITLES = frozenset(
    "mr mrs ms dr prof st sr jr gen lt col sgt capt cmdr adm maj rev hon gov sen rep pres "
    "supt insp mt ft fig figs no nos vol vols ch pp p vs cf approx dept est".split()
)
# Abbreviations that may also end a sentence: a boundary only when a common sentence
# opener follows ("... in the U.S. The next day ...").
MAYBE_END = frozenset(
    "jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri "
    "sat sun inc ltd co corp bros llc plc etc al e.g i.e a.m p.m".split()
)
OPENERS = frozenset(
    "the a an he she it they we i you this that these those there his her its their our "
    "my but and or so yet in on at after before when while if as however meanwhile then "
    "still also since though although what who why how".split()
)
SPEECH_VERBS = frozenset(
    "said says say asked asks told tells added adds wrote writes replied replies "
    "shouted yelled cried insisted noted stated explained continued according".split()
)

# A quotation is kept in one sentence up to this length; past it, it is split as usual.
MAX_QUOTED = 300
# A sentence longer than this (a line with no full stop, a run-on list) is cut into pieces
# of at most this many characters, at a clause mark or a space: the reader reads 96 tokens
# of a sentence (450 characters of English are 80 to 100), and a citation is a passage, not
# a page. (No sentence of the project's corpora is that long: the longest has 414.)
MAX_SENTENCE = 450
# after a comma, semicolon or colon (and their full-width forms) or a spaced dash
_CLAUSE_MARK = re.compile(r"[,;:](?=\s)|[、，；：]|\s[–—-](?=\s)")
_SPACE = re.compile(r"\s")

_TERMINAL = re.compile(r"[.!?…]+[\"'”’»)\]]*")
# the whole word before a full stop: "Mendonça." is not the initial "a."
_WORD_BEFORE = re.compile(r"(?<!\w)([A-Za-z](?:[A-Za-z.]*[A-Za-z])?)\.$")
_NEXT_WORD = re.compile(r"[\"'“‘«(\[]*([^\s\"'“‘«(\[]+)")
_LIST_MARKER = re.compile(r"(?:#{1,6}\s+|>\s*|[-*+•]\s+|\d{1,3}[.)]\s+)")
_SECTION_NUMBER = re.compile(r"\d{1,3}(?:\.\d{1,3})*")
_CLOSERS = "\"'”’»)]"


# What hides an HTML comment in Markdown, or shows one: a comment's opening, a run of
# backticks (a code span, or at a line's start a fence) or of tildes (a fence)
_SCAN = re.compile(r"<!--|`+|~{3,}")
_BLANK_LINE = re.compile(r"(?:\r\n|\n|\r)[ \t]*(?:\r\n|\n|\r)")  # a paragraph's end
# a line that ends the paragraph before it (CommonMark's blocks that interrupt one): an
# HTML block such as a comment, a heading, a block quote, a fence, a list item, a rule
_INTERRUPTING = re.compile(
    r"^ {0,3}(?:<!--|#{1,6}(?:[ \t]|$)|>|`{3}|~{3}|[-+*][ \t]+\S|1[.)][ \t]+\S"
    r"|(?:\*[ \t]*){3,}$|(?:-[ \t]*){3,}$|(?:_[ \t]*){3,}$)",
    re.MULTILINE,
)
_LINE_BREAK = re.compile(r"[\r\n]")
_BACKTICKS = re.compile(r"`+")


def split_sentences(text: str, markdown: bool = False) -> list[tuple[int, int]]:
    """Sentence spans of ``text`` as ``(start, end)`` Python string indices; with
    ``markdown``, none holds any of an HTML comment (a sentence around one is cut in two)."""
    comments = _comments(text) if markdown and "<!--" in text else []
    if not comments:
        return _split(text, markdown)
    # the comments blanked (line breaks kept), so that the text around them splits as shown
    view = list(text)
    for a, b in comments:
        view[a:b] = [c if c in "\r\n" else " " for c in text[a:b]]
    spans = []
    for s, e in _split("".join(view), markdown=True):
        inside = [(a, b) for a, b in comments if s < b and a < e]
        for a, b in inside + [(e, e)]:
            end = _rstrip(text, s, min(a, e))
            if end > s and _HAS_WORD.search(text, s, end):
                spans.append((s, end))
            s = _skip_space(text, b, e) if b < e else e
    return spans


def _comments(text: str) -> list[tuple[int, int]]:
    """The HTML comments of a Markdown text, as CommonMark reads them, in one pass from the
    start: a comment is hidden from ``<!--`` to the first ``-->`` (``<!-->`` and ``<!--->``
    are whole ones), inside a paragraph; one that opens a line (an HTML block) runs to its
    ``-->`` or, with none, to the document's end; one that closes nowhere inside its
    paragraph (to a blank line, or a line that opens a block, such as a comment or a heading)
    is text. A fenced code block (to a closing fence of its mark, at least as
    long, or to the end) and a code span (closed by a run of backticks as long, inside its
    paragraph) show what they hold, and so does a table row (a line that opens with a bar:
    its cells stay one sentence, as written)."""
    # found once, then looked up: a long document with many code spans stays linear
    blanks = sorted(
        {m.start() for m in _BLANK_LINE.finditer(text)}
        | {m.start() for m in _INTERRUPTING.finditer(text) if m.start()}
    )
    breaks = [m.start() for m in _LINE_BREAK.finditer(text)]
    runs: dict[int, list[int]] = {}  # where each run of backticks starts, by its length
    for run in _BACKTICKS.finditer(text):
        runs.setdefault(len(run.group()), []).append(run.start())
    out: list[tuple[int, int]] = []
    i = 0
    while m := _SCAN.search(text, i):
        a, b = m.span()
        k = bisect.bisect_left(breaks, a)
        lead = text[breaks[k - 1] + 1 if k else 0 : a]
        opens_line = len(lead) <= 3 and not lead.strip(" ")
        mark = m.group()
        k = bisect.bisect_left(blanks, b)
        ends = blanks[k] if k < len(blanks) else len(text)  # the paragraph's end (or a block's)
        if mark[0] in "`~" and len(mark) >= 3 and opens_line:  # a fence
            closing = rf"^ {{0,3}}{re.escape(mark[0])}{{{len(mark)},}}[ \t]*$"
            after = re.compile(closing, re.MULTILINE).search(text, b)
            i = after.end() if after else len(text)
        elif mark[0] == "`":  # a code span, closed by the next run as long; else text
            same = runs[len(mark)]
            k = bisect.bisect_right(same, a)
            i = same[k] + len(mark) if k < len(same) and same[k] < ends else b
        elif mark[0] == "~" or lead.lstrip().startswith("|"):  # tildes; a table row's
            i = b
        else:
            short = next((k for k in ("<!-->", "<!--->") if text.startswith(k, a)), "")
            close = text.find("-->", b, len(text) if opens_line else ends)
            if short:
                end = a + len(short)
            elif close >= 0:
                end = close + 3
            else:
                end = len(text) if opens_line else -1
            if end < 0:
                i = b  # closed nowhere in its paragraph: text
                continue
            out.append((a, end))
            i = end
    return out


def _split(text: str, markdown: bool = False) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    if markdown:
        for start, end, verbatim in markdown_runs(text):
            spans.extend(_run_sentences(text, start, end, verbatim))
        return spans
    pos = 0
    for line in text.splitlines(keepends=True):
        start, end = pos, pos + len(line.rstrip("\r\n"))
        pos += len(line)
        start = _skip_space(text, start, end)
        marker = _LIST_MARKER.match(text, start, end)
        if marker and marker.end() < end:
            start = _skip_space(text, marker.end(), end)
        spans.extend(_run_sentences(text, start, end, verbatim=False))
    return spans


def _run_sentences(text: str, start: int, end: int, verbatim: bool) -> list[tuple[int, int]]:
    """The sentences of ``text[start:end]`` (a line, or a Markdown paragraph over several):
    a table row whole, else split at its sentence ends and cut to MAX_SENTENCE; a
    ``verbatim`` line (fenced code) split too, but never losing a leading mark."""
    start = _skip_space(text, start, end)
    last = _rstrip(text, start, end)
    if not verbatim and last - start > 1 and text[start] == "|" and text[last - 1] == "|":
        # a Markdown table row stays whole, whatever stops its cells hold
        return [(start, last)] if _HAS_WORD.search(text, start, last) else []
    out = []
    for s, e in _split_line(text, start, end):
        out.extend(_pieces(text, s if verbatim else _after_quote_marks(text, s, e), e))
    return out


def _after_quote_marks(text: str, start: int, end: int) -> int:
    """``start`` moved past a block quote's ``>`` marks that open its line (a sentence of a
    quote wrapped over several lines may begin on one)."""
    if start >= end or text[start] != ">":
        return start
    j = start - 1  # only marks and blanks between the line's start and the first mark
    while j >= 0 and text[j] in " \t>":
        j -= 1
    if j >= 0 and text[j] not in "\r\n":
        return start
    i = start
    while i < end and text[i] == ">":
        i = _skip_space(text, i + 1, end)
    return i if i < end else start


def _pieces(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """``text[start:end]`` cut into pieces of at most MAX_SENTENCE characters: after the
    last clause mark in the second half of the allowance, else at its last white space,
    else (one long word, or a script written without spaces) at the allowance."""
    if end - start <= MAX_SENTENCE:
        return [(start, end)]  # every sentence of ordinary text: already checked to hold a word
    pieces = []
    while end - start > MAX_SENTENCE:
        limit = start + MAX_SENTENCE
        half = start + MAX_SENTENCE // 2
        # (up to limit + 1: a mark's lookahead may see the character at the limit)
        marks = [m.end() for m in _CLAUSE_MARK.finditer(text, half, limit + 1)]
        marks = [m for m in marks if m <= limit]
        spaces = [m.start() for m in _SPACE.finditer(text, half, limit)]
        cut = marks[-1] if marks else spaces[-1] if spaces else limit
        if cut <= start:
            cut = limit
        piece_end = _rstrip(text, start, cut)
        if _HAS_WORD.search(text, start, piece_end):
            pieces.append((start, piece_end))
        start = _skip_space(text, cut, end)
    if _HAS_WORD.search(text, start, end):
        pieces.append((start, end))
    return pieces


def _split_line(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans = []
    sent_start = start
    for m in _TERMINAL.finditer(text, start, end):
        nxt = _skip_space(text, m.end(), end)
        if nxt == m.end() or nxt >= end:
            continue  # no white space after it, or the line's end (handled below)
        if m.end() - sent_start < MAX_QUOTED and _inside_quote(text, sent_start, m.end()):
            continue  # a quotation stays whole, with its attribution
        if _SECTION_NUMBER.fullmatch(text, sent_start, m.start()):
            continue  # a section's number stays with its title ('1. Scope', '2.3. Limits')
        if _is_boundary(text, m, nxt, end):
            spans.append((sent_start, m.end()))
            sent_start = nxt
    spans.append((sent_start, end))
    return [(s, _rstrip(text, s, e)) for s, e in spans if _HAS_WORD.search(text, s, e)]


def _inside_quote(text: str, start: int, end: int) -> bool:
    """Whether a quotation opened in ``text[start:end]`` is still open at ``end``."""
    segment = text[start:end]
    depth = segment.count("“") - segment.count("”")
    return depth > 0 or (depth == 0 and segment.count('"') % 2 == 1)


def _rstrip(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _is_boundary(text: str, m: re.Match[str], nxt: int, end: int) -> bool:
    first = text[nxt]
    if first.islower() or first in ",;:)]–—-":
        return False
    word_m = _NEXT_WORD.match(text, nxt, end)
    next_word = word_m.group(1).strip(".,;:!?").lower() if word_m else ""
    punct = m.group(0).rstrip(_CLOSERS)
    quoted = len(m.group(0)) > len(punct)

    if punct == ".":
        before = _WORD_BEFORE.search(text, max(0, m.start() - 30), m.start() + 1)
        if before:
            word = before.group(1).lower()
            if word in TITLES:
                return False
            if word in MAYBE_END or len(word) == 1 or "." in word:
                # an initial (J. Smith), a dotted acronym (U.S.) or a month (Jan. 5)
                return next_word in OPENERS
    if quoted and punct[-1] in "!?":
        # “Stop!” the officer shouted. / “Why?” Smith asked.  -- one sentence
        tail = text[nxt : _next_terminal(text, nxt, end)].split()
        if len(tail) <= 5 and any(w.strip(",.").lower() in SPEECH_VERBS for w in tail):
            return False
    return True


def _next_terminal(text: str, i: int, end: int) -> int:
    m = _TERMINAL.search(text, i, end)
    return m.start() if m else end
