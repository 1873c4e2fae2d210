"""Short answers: the span of the best sentence that answers the question.

For questions that expect a date, number, amount of money, age, duration or distance, the
span is the nearest matching expression the question does not already contain. Otherwise
the sentence is cut into clauses, and the words that match the question mark where the
answer is not; the best gap between them is chosen: a gap that fills the place of the
question's missing word ("what did X present to Y" -> the words between "present" and
"Y"), or the words right after the question's words. A gap inside a short quotation gives
the whole quotation. When nothing fits, the answer is the whole sentence.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass

from .question import WH_WORDS, Question
from .text import Token, tokenize

_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|"
    r"November|December|Jan\.|Feb\.|Mar\.|Apr\.|Aug\.|Sept?\.|Oct\.|Nov\.|Dec\.)"
)
_DAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_NUM_WORD = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|"
    r"thirty|forty|fifty|hundred|several|a few|dozens of|hundreds of|thousands of)"
)
_UNIT_TIME = r"(?:years?|months?|weeks?|days?|decades?|hours?|centuries|century|minutes?)"
PATTERNS = {
    "date": [
        rf"\b{_DAY},? {_MONTH} \d{{1,2}}(?:st|nd|rd|th)?\b(?:,? \d{{4}})?",  # Monday, March 3
        rf"\b(?:(?:early|late|mid)[- ])?{_MONTH}(?: \d{{1,2}}(?:st|nd|rd|th)?\b)?(?:,? \d{{4}})?",
        rf"\b\d{{1,2}} {_MONTH}(?: \d{{4}})?",
        rf"\b{_DAY}\b",
        r"\b(?:1[5-9]|20)\d{2}s?\b",
        r"\b(?:last|next|this|that|the following|the previous) (?:week|month|year|decade|"
        r"century|morning|night|weekend|spring|summer|autumn|fall|winter)\b",
        r"\b[Tt]he (?:day|week|month|year) (?:before|after|earlier|later)\b",
        r"\b(?:yesterday|today|tomorrow|tonight)\b",
        r"\b(?:(?:at|by|until|till|before|after) )?the (?:beginning|start|end|middle) of "
        r"(?:the|this|last|next) (?:year|month|week|decade)\b",
    ],
    "age": [
        r"\b\d{1,3}(?:-year-old| years? old)\b",
        r"\baged? \d{1,3}\b",
        r"(?<=[a-z], )\d{2}(?=,)",  # a name, then the age between commas: "Okafor, 47, said"
    ],
    "duration": [
        rf"\b(?:(?:over|for|during|within) )?(?:the )?(?:past |last |next )?"
        rf"(?:\d[\d,.]*|{_NUM_WORD}|a|an) {_UNIT_TIME}\b",
    ],
    "measure": [
        r"\b\d(?:[\d,.]*\d)?(?: (?:million|thousand|hundred))?[ -]?(?:(?:square|cubic) )?"
        r"(?:miles?|kilomet(?:er|re)s?|km|met(?:er|re)s?|m|feet|foot|ft|yards?|inch(?:es)?|cm|"
        r"centimet(?:er|re)s?|millimet(?:er|re)s?|mm|tons?|tonnes?|kilograms?|kg|pounds?|lbs?|"
        r"hectares?|acres?|litres?|liters?|gallons?|square \w+)\b",
    ],
    "money": [
        r"(?:[$€£¥]|\b(?:US|A|C|NZ|HK)\$) ?\d(?:[\d,.]*\d)?(?: ?(?:million|billion|trillion|"
        r"thousand|"
        r"bn|m|k)\b)?",
        r"\b\d(?:[\d,.]*\d)?(?: (?:million|billion|trillion|thousand|hundred))? (?:dollars|euros|"
        r"pounds|pence|cents|yen|yuan|pesos|francs|rupees|roubles|rubles|reais|USD|EUR|GBP)\b",
    ],
    "number": [
        r"(?:[$€£¥] ?)?\b\d(?:[\d,.]*\d)?(?: ?%| percent| per cent)?"
        r"(?: (?:million|billion|trillion|thousand|hundred))?(?: (?!and\b|or\b|the\b|in\b|of\b|"
        r"to\b|a\b|had\b|has\b|was\b|were\b|is\b)[a-z][a-z\-]+)?",
        rf"\b{_NUM_WORD}(?: of)? [a-z][a-z\-]+",
    ],
}
TYPED = frozenset(PATTERNS)
# an amount asked for as a number may come with its unit: "600,000 cubic metres", "£48m"
_ALSO = {"number": ("measure", "money")}
_COMPILED = {
    kind: [re.compile(p) for k in (kind, *_ALSO.get(kind, ())) for p in PATTERNS[k]]
    for kind in PATTERNS
}
# clause breaks; a full stop inside a sentence is an abbreviation (Dr. Smith), not a break
_CLAUSE = re.compile(r",(?!\d)|[;:()\[\]—–]|\s-\s|(?<=[!?])\s")
QUOTATION = re.compile(r"[“\"]([^”\"]{12,})[”\"]")
SHORT_QUOTE = 200  # characters: a longer quotation is cut to its gap
EXTENDERS = ("including", "such as", "notably", "namely", "especially", "particularly")


@dataclass(frozen=True)
class Span:
    start: int  # offsets in the sentence text
    end: int
    typed: bool  # it is an expression of the kind the question expects


def find_typed(text: str, kind: str) -> list[tuple[int, int]]:
    """Expressions of ``kind`` in ``text`` as (start, end), longest first where they overlap."""
    found = []
    for pattern in _COMPILED.get(kind, ()):
        found.extend(m.span() for m in pattern.finditer(text))
    found.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    out = []
    for s, e in found:
        if out and s < out[-1][1]:
            continue
        out.append((s, e))
    return out


_PERCENT = re.compile(r"%|\bper ?cent\b")
_NUMBER = re.compile(r"\d(?:[\d,.]*\d)?")


def _says(question: str, expression: str) -> bool:
    """Whether the (lower-cased) question holds ``expression``, or the number it starts
    with ("2012" of "2012 there"), as whole words."""
    number = _NUMBER.match(expression)
    said = [expression.lower()] + ([number.group()] if number else [])
    return any(re.search(rf"(?<!\w){re.escape(x)}(?!\w)", question) for x in said)


def expressions(text: str, q: Question) -> list[tuple[int, int]]:
    """The expressions in ``text`` that may answer ``q``, a question of a TYPED kind: of its
    kind and not already in the question, and for a number, not an age ("Reyes, 54,
    said"); for "how many", a count, not a percentage, a sum, a distance or a duration."""
    asked = q.text.lower()
    # what the question already says is not its answer ("... in 2023?")
    found = [(s, e) for s, e in find_typed(text, q.kind) if not _says(asked, text[s:e])]
    if q.kind != "number" or not found:
        return found
    excluded = find_typed(text, "age")
    if q.asks_count:
        for kind in ("money", "measure", "duration"):
            excluded += find_typed(text, kind)
        found = [(s, e) for s, e in found if not _PERCENT.search(text, s, e)]
    elif q.asks_share:
        found = [(s, e) for s, e in found if _PERCENT.search(text, s, e)] or found
    return [(s, e) for s, e in found if not any(s < xe and xs < e for xs, xe in excluded)]


def matched_flags(tokens: list[Token], terms: set[str]) -> list[bool]:
    flags = [bool(t.stem) and t.stem in terms for t in tokens]
    # a capitalised run whose acronym the question uses ("US" for "United States")
    i = 0
    while i < len(tokens):
        j = i
        while (
            j < len(tokens)
            and tokens[j].capitalised
            and tokens[j].text.isalpha()
            and (j == i or tokens[j].start - tokens[j - 1].end == 1)
        ):
            j += 1
        if j - i >= 2 and "".join(t.text[0] for t in tokens[i:j]).lower() in terms:
            for k in range(i, j):
                flags[k] = True
        i = max(j, i + 1)
    return flags


def extract_span(text: str, q: Question, context_terms: frozenset[str] = frozenset()) -> Span:
    """The answer span in ``text`` (a sentence) for question ``q``."""
    whole = Span(0, len(text), False)
    if q.kind == "yesno" or q.definition:
        return whole
    tokens = tokenize(text)
    terms = set(q.terms) | set(context_terms)
    matched = matched_flags(tokens, terms)
    anchors = [i for i, m in enumerate(matched) if m]

    if q.asks_speech:
        quotes = [m.span(1) for m in QUOTATION.finditer(text)]
        if quotes:
            s, e = max(quotes, key=lambda se: se[1] - se[0])
            return Span(s, _strip_end(text, s, e), False)

    if q.kind in TYPED:
        best = None
        starts = [t.start for t in tokens]
        for s, e in expressions(text, q):
            # the tokens that start inside the expression: tokens[first:stop]
            first, stop = bisect_left(starts, s), bisect_left(starts, e)
            inside = [i for i in range(first, stop) if tokens[i].stem]
            if inside and all(matched[i] for i in inside):
                continue  # the question already says it
            distance = min((_token_distance(first, stop - 1, a) for a in anchors), default=99)
            if best is None or distance < best[0]:
                best = (distance, s, e)
        if best:
            return Span(best[1], best[2], True)
        return whole

    gap = _best_gap(text, tokens, matched, q)
    return gap or whole


def _token_distance(first: int, last: int, anchor: int) -> int:
    """Tokens between ``anchor`` and the expression of tokens first..last (99: no tokens)."""
    if last < first:
        return 99
    return 0 if first <= anchor <= last else min(abs(anchor - first), abs(anchor - last))


def _question_positions(q: Question) -> dict[str, int]:
    pos = {}
    for i, t in enumerate(q.tokens):
        if t.stem and t.stem not in pos:
            pos[t.stem] = i
    return pos


def _is_slot(q: Question, left: str, right: str) -> bool | None:
    """True when the question's words ``left`` and ``right`` stand together in the
    question (only function words, wh-words or the focus between them): the gap between
    them in the sentence fills the question's missing word. False when other content
    words of the question stand between them: the gap paraphrases those words."""
    pos = _question_positions(q)
    if left not in pos or right not in pos:
        return None
    a, b = sorted((pos[left], pos[right]))
    if b - a < 2:
        return False  # adjacent in the question ("Mexico's cartels"): the gap is a modifier
    between = [
        t
        for t in q.tokens[a + 1 : b]
        if t.stem and t.text.lower() not in WH_WORDS and t.stem != q.focus
    ]
    return not between


def _best_gap(text: str, tokens: list[Token], matched: list[bool], q: Question) -> Span | None:
    if not any(matched):
        return None
    clause_breaks = [m.start() for m in _CLAUSE.finditer(text)]

    def clause_of(i: int) -> int:
        return sum(1 for b in clause_breaks if b < tokens[i].start)

    # runs of unmatched tokens within one clause
    runs, cur = [], []
    for i, _t in enumerate(tokens):
        if matched[i] or (cur and clause_of(i) != clause_of(cur[-1])):
            if cur:
                runs.append(cur)
            cur = [] if matched[i] else [i]
            continue
        cur.append(i)
    if cur:
        runs.append(cur)

    best = None
    for run in runs:
        content = [i for i in run if tokens[i].stem]
        if not content:
            continue
        first, last = run[0], run[-1]
        left = (
            first - 1
            if first > 0 and matched[first - 1] and clause_of(first - 1) == clause_of(first)
            else None
        )
        right = (
            last + 1
            if last + 1 < len(tokens)
            and matched[last + 1]
            and clause_of(last + 1) == clause_of(last)
            else None
        )
        base = 0.2
        if left is not None and right is not None:
            slot = _is_slot(q, tokens[left].stem, tokens[right].stem)
            base = 3.0 if slot else (0.1 if slot is False else 1.5)
        elif left is not None:
            base = 2.0
        elif right is not None:
            base = 1.2
        if q.focus and any(x is not None and tokens[x].stem == q.focus for x in (left, right)):
            base = max(base, 3.0)
        if q.kind in ("person", "place"):
            if any(tokens[i].capitalised and i > 0 for i in content):
                base += 1.0
            if q.subject and right is not None and left is None:
                base += 1.0  # "Who cut the ribbon?": the answer comes before the verb
        score = base + 0.2 * min(len(content), 5) - 0.01 * len(run)
        if best is None or score > best[0]:
            best = (score, content, right)
    if best is None or best[0] < 1.0:
        return None
    content, after = best[1], best[2]
    s, e = tokens[content[0]].start, tokens[content[-1]].end
    if after is not None and tokens[after].stem == q.focus:
        e = tokens[after].end  # "in poor condition", not "in poor"
    rest = text[e:].lstrip(" ,")
    for word in EXTENDERS:
        if rest.lower().startswith(word):
            stop = _CLAUSE.search(text, e + (len(text[e:]) - len(rest)) + len(word))
            e = _strip_end(text, s, stop.start() if stop else len(text))
            break
    quoted = _leading_quotation(text, s, e)
    if quoted:
        return Span(*quoted, False)
    inside = _enclosing_quotation(text, s, e)
    if inside:
        return Span(*inside, False)
    return Span(s, _balance_quotes(text, s, e), False)


def _enclosing_quotation(text: str, s: int, e: int) -> tuple[int, int] | None:
    """When the span lies inside a quotation of at most SHORT_QUOTE characters (called the
    decision “the most important investment ...”), the whole quotation: words are not cut
    out of what someone said."""
    for m in QUOTATION.finditer(text):
        qs, qe = m.span(1)
        # marks that open after a space and close before a non-letter: straight quotes
        # could otherwise pair the end of one quotation with the start of the next
        opens = m.start() == 0 or not text[m.start() - 1].isalnum()
        closes = m.end() == len(text) or not text[m.end()].isalnum()
        if opens and closes and qs <= s and e <= qe and qe - qs <= SHORT_QUOTE:
            return qs, _strip_end(text, qs, qe)
    return None


def _leading_quotation(text: str, s: int, e: int) -> tuple[int, int] | None:
    """When the span starts inside a quotation (“Trump whisperer” for ...), the
    quotation alone, with its marks."""
    before = text[:s].rstrip()
    if not before or before[-1] not in '“"':
        return None
    closing = "”" if before[-1] == "“" else '"'
    close = text.find(closing, s, e + 1)
    if close < 0:
        return None
    return len(before) - 1, close + 1


def _strip_end(text: str, s: int, e: int) -> int:
    while e > s and text[e - 1] in " ,;:":
        e -= 1
    return e


def _balance_quotes(text: str, s: int, e: int) -> int:
    """Include a closing quote right after the span when the span opens one."""
    span = text[s:e]
    if span.count("“") > span.count("”") and e < len(text) and text[e] == "”":
        return e + 1
    return e
