"""Markdown's blocks, as CommonMark reads them: the runs of a Markdown text that sentences
are split from (``markdown_runs``, for ``split.split_sentences``). A paragraph, list item or
block quote wrapped over several lines is one run, as Markdown shows it; a heading, a table
row and each line of code stand alone; what Markdown never shows is in no run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

HAS_WORD = re.compile(r"\w")  # a word character: text that shows, not only marks
# Markdown blocks, read on a line's body (after its block quote marks and indentation): a
# fence's opening (its mark), an ATX heading, a list item (a bullet, a number), a block
# that HTML opens (CommonMark's block-level tags; an inline tag or an autolink is text),
# and a table's delimiter row
_QUOTE_MARK = re.compile(r"[ \t]{0,3}>[ \t]?")
_FENCE = re.compile(r"(`{3,}|~{3,})(?!.*`.*$)")
_HEADING = re.compile(r"#{1,6}(?:[ \t]+|$)")
_BULLET = re.compile(r"[-*+•][ \t]+")
_NUMBERED = re.compile(r"(\d{1,9})[.)](?:[ \t]+|$)")
_HTML_BLOCK = re.compile(
    r"<(?:!--|/?(?:address|article|aside|base|basefont|blockquote|body|caption|center|col"
    r"|colgroup|dd|details|dialog|dir|div|dl|dt|fieldset|figcaption|figure|footer|form"
    r"|frame|frameset|h[1-6]|head|header|hr|html|iframe|legend|li|link|main|menu|menuitem"
    r"|nav|noframes|ol|optgroup|option|p|param|pre|script|search|section|style|summary"
    r"|table|tbody|td|textarea|tfoot|th|thead|title|tr|track|ul)(?:[ \t/>]|$))",
    re.IGNORECASE,
)
# a thematic break, a setext heading's underline, a table's delimiter row (or any line of
# only these marks): a line that ends a paragraph and shows no text
_RULE = re.compile(r"[-*_=|:+ \t]+")
_DELIMITER_ROW = re.compile(r"\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*")
_LINK_DEFINITION = re.compile(
    r" {0,3}\[(?!\^)[^\]]+\]:[ \t]*(?:<[^>]*>|\S+)"
    r"""(?:[ \t]+(?:"[^"]*"|'[^']*'|\([^)]*\)))?[ \t]*"""
)
_TASK_BOX = re.compile(r"\[[ xX]\][ \t]+")
_FOOTNOTE = re.compile(r"\[\^[^\]\s]+\]:[ \t]*")  # a footnote's label: '[^1]: '
# HTML tags (not autolinks such as <https://example.org> or <help@example.org>: those show)
_HTML_TAGS = re.compile(r"(?:</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>\s*)+")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_EMPTY_LINK = re.compile(r"\[\s*\]\([^)]*\)")
_BADGE_LINE = 2000  # a line of images and badges is shorter than this (bounds the search)


def skip_space(text: str, i: int, end: int) -> int:
    while i < end and text[i].isspace():
        i += 1
    return i


@dataclass
class _Line:
    """A Markdown line as its blocks see it: where it starts and ends, how deep in block
    quotes, where its body starts (after the quote marks and the indentation), its body,
    and the indentation's width."""

    start: int
    end: int
    depth: int
    inner: int  # after the quote marks
    body_start: int
    body: str
    indent: int


def _lines(text: str) -> list[_Line]:
    lines = []
    pos = 0
    for raw in text.splitlines(keepends=True):
        start, end = pos, pos + len(raw.rstrip("\r\n"))
        pos += len(raw)
        inner, depth = start, 0
        while m := _QUOTE_MARK.match(text, inner, end):
            inner, depth = m.end(), depth + 1
        body_start = skip_space(text, inner, end)
        indent = len(text[inner:body_start].expandtabs(4))
        lines.append(_Line(start, end, depth, inner, body_start, text[body_start:end], indent))
    return lines


def _table_rows(lines: list[_Line]) -> set[int]:
    """The lines that are rows of a table (a header row, then a delimiter row of as many
    cells, then rows until one without a bar), with outer bars or without."""

    def cells(body: str) -> int:
        body = body.strip()
        return body.strip("|").count("|") + 1

    rows: set[int] = set()
    for i in range(len(lines) - 1):
        head, rule = lines[i].body, lines[i + 1].body
        if i in rows or "|" not in head or "|" not in rule or "-" not in rule:
            continue
        if not _DELIMITER_ROW.fullmatch(rule) or cells(head) != cells(rule):
            continue
        rows.update((i, i + 1))
        j = i + 2
        while j < len(lines) and "|" in lines[j].body and lines[j].depth == lines[i].depth:
            rows.add(j)
            j += 1
    return rows


def _kind(line: _Line, row: bool) -> str:
    """What a line is to the blocks around it."""
    body = line.body
    if not body:
        return "blank"
    if _FENCE.match(body):
        return "fence"
    if _HEADING.match(body):
        return "heading"
    if row or body.startswith("|"):
        return "row"
    if hidden_line(body) or _RULE.fullmatch(body):
        return "hidden"  # also a rule, a setext heading's underline, a delimiter row
    if not HAS_WORD.search(body):
        return "marks"  # ('...', '—'): inside a paragraph, part of it; alone, nothing
    if _BULLET.match(body):
        return "bullet"
    numbered = _NUMBERED.match(body)
    if numbered:
        return "first" if int(numbered.group(1)) == 1 else "numbered"
    if _HTML_BLOCK.match(body):
        return "html"
    return "text"


def markdown_runs(text: str) -> Iterator[tuple[int, int, bool]]:
    """The runs of a Markdown text that sentences are split from, as ``(start, end,
    verbatim)``: a paragraph, list item or block quote whole however many lines it is
    wrapped over (a soft line break shows as a space), from after its marker; a heading, a
    table row, each line of code, fenced or indented (``verbatim``: its marks are its
    text), alone. A hard line break (two spaces or a backslash at a line's end) and each
    block that interrupts a paragraph in CommonMark end a run; a number other than 1
    opening a line ends one only after an ordered list's item (``... on port\\n7310. When``
    continues its paragraph); a line in a deeper block quote, or a list item, ends one too.
    What Markdown never shows is in none: a fence's opening line (its info string), a link
    reference definition, a line of only HTML tags or images, a rule or a setext heading's
    underline (a line of other marks without a word, '...', continues a paragraph, and
    alone is nothing)."""
    lines = _lines(text)
    rows = _table_rows(lines)
    run: list[int] = []  # the open run's [start, end]
    depth = 0  # the open run's block quote depth
    item = ""  # the open run's list item: "", "bullet" or "numbered"
    in_list = False  # the last run was a list item's (a blank line does not end a list)
    fence: re.Pattern[str] | None = None  # the open fence's closing line
    fence_depth = 0
    for n, line in enumerate(lines):
        if fence is not None:
            if line.depth >= fence_depth:  # a line of code, or the fence's end
                code = line.start  # after the fence's own quote marks: the rest is code
                for _ in range(fence_depth):
                    quote = _QUOTE_MARK.match(text, code, line.end)
                    code = quote.end() if quote else code
                if fence.fullmatch(text, code, line.end):
                    fence = None
                elif text[code : line.end].strip():
                    yield code, line.end, True
                continue
            fence = None  # the block quote holding the fence ended, and the fence with it
        kind = _kind(line, n in rows)
        lazy = kind in ("text", "marks") or (kind == "numbered" and item != "numbered")
        if run and (
            (lazy and line.depth <= depth)  # a lazy line continues its paragraph
            or (not item and line.indent >= 4 and kind != "blank" and line.depth == depth)
        ):  # (indented code cannot interrupt a paragraph)
            run[1] = line.end
            if line.body.endswith(("  ", "\\")):  # a hard line break
                yield run[0], run[1], False
                run = []
            continue
        if run:
            yield run[0], run[1], False
            run = []
        if kind == "blank":
            continue
        opening = _FENCE.match(line.body) if kind == "fence" else None
        if opening is not None:
            mark = opening.group(1)
            fence = re.compile(rf"[ \t]*{re.escape(mark[0])}{{{len(mark)},}}[ \t]*")
            fence_depth = line.depth
            continue
        if kind in ("hidden", "marks"):
            continue
        if line.indent >= 4 and not in_list and kind != "row":
            yield line.body_start, line.end, True  # indented code, as written
            continue
        first = line.body_start
        marker = None
        if kind == "heading":
            marker = _HEADING.match(text, first, line.end)
        elif kind in ("bullet", "first", "numbered"):
            marker = _BULLET.match(text, first, line.end) or _NUMBERED.match(text, first, line.end)
        else:
            marker = _FOOTNOTE.match(text, first, line.end)
        if marker and marker.end() < line.end:
            first = skip_space(text, marker.end(), line.end)
            box = _TASK_BOX.match(text, first, line.end)  # '- [x] ': a task list's box
            first = box.end() if box and box.end() < line.end else first
        if kind in ("heading", "row"):
            in_list = in_list and kind == "row"
            yield first, line.end, False  # one line, whatever follows
            continue
        item = "bullet" if kind == "bullet" else "numbered" if kind in ("first", "numbered") else ""
        in_list = bool(item) or (in_list and line.indent >= 2)
        run, depth = [first, line.end], line.depth
        if line.body.endswith(("  ", "\\")):
            yield run[0], run[1], False
            run = []
    if run:
        yield run[0], run[1], False


def hidden_line(line: str) -> bool:
    """Whether a Markdown line (not inside a paragraph) shows nothing: a link reference
    definition (``[3.2.0]: https://...``; a footnote's ``[^1]: ...`` shows), or only HTML
    tags (``<div align="center">``; an autolink shows) or images and badges
    (``[![build](...)](...)``)."""
    if _LINK_DEFINITION.fullmatch(line):
        return True
    stripped = line.strip()
    if stripped.startswith("<") and _HTML_TAGS.fullmatch(stripped):
        return True
    if "![" in stripped and len(stripped) < _BADGE_LINE:
        rest = _EMPTY_LINK.sub("", _IMAGE.sub("", stripped))
        return not HAS_WORD.search(rest)
    return False
