"""Words: tokenising with offsets, normalising to stems, and stop words (English)."""

from __future__ import annotations

import re
from dataclasses import dataclass

STOP_WORDS = frozenset(
    """a an the of in on at to for by with from and or but nor is are was were be been being
    am has have had having do does did doing done what which who whom whose when where why how
    that this these those it its itself as into about over under than then there their theirs
    they them he she his her hers him himself herself we our ours us you your yours i me my
    mine not no any some such can could would should will shall may might must also just only
    very more most other another if so up out off all both each few own same too s t
    any anything something according whether while during before after above below again
    further once here both between through against many much""".split()
)

# A few irregular forms, so that "said" finds "say" and "made" finds "make".
IRREGULAR = {
    "said": "say",
    "says": "say",
    "told": "tell",
    "made": "make",
    "took": "take",
    "taken": "take",
    "gave": "give",
    "given": "give",
    "went": "go",
    "gone": "go",
    "began": "begin",
    "begun": "begin",
    "won": "win",
    "lost": "lose",
    "left": "leave",
    "held": "hold",
    "met": "meet",
    "sent": "send",
    "spent": "spend",
    "brought": "bring",
    "bought": "buy",
    "thought": "think",
    "found": "find",
    "became": "become",
    "came": "come",
    "wrote": "write",
    "written": "write",
    "spoke": "speak",
    "spoken": "speak",
    "chose": "choose",
    "men": "man",
    "women": "woman",
    "children": "child",
    "people": "person",
}

_WORD = re.compile(r"\d[\d,.]*\d|\d|[^\W\d_](?:[\w'’\-]*[^\W_])?", re.UNICODE)


@dataclass(frozen=True)
class Token:
    text: str  # as written
    start: int
    end: int
    stem: str  # normalised form ("" for a stop word)

    @property
    def capitalised(self) -> bool:
        return self.text[:1].isupper()


def stem(word: str) -> str:
    """A light, rule-based English stem: plural, -ed, -ing, -ly, British -ise spellings."""
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    w = w.rstrip("'")
    if any(c.isdigit() for c in w):
        return w.replace(",", "")
    if w in IRREGULAR:
        return IRREGULAR[w]
    w = re.sub(r"is(e|ed|es|ing|ation|ations)$", r"iz\1", w) if len(w) > 6 else w
    for suffix, repl, min_len in (
        ("ies", "y", 5),
        ("sses", "ss", 5),
        ("ing", "", 6),
        ("ed", "", 5),
        ("es", "", 5),
        ("s", "", 4),
        ("ly", "", 6),
    ):
        if w.endswith(suffix) and len(w) >= min_len and not w.endswith("ss"):
            w = w[: len(w) - len(suffix)] + repl
            break
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]  # "designate" and "designated" meet at "designat"
    return w


def tokenize(text: str, start: int = 0, end: int | None = None) -> list[Token]:
    """The words of ``text[start:end]`` with their offsets in ``text``."""
    tokens = []
    for m in _WORD.finditer(text, start, len(text) if end is None else end):
        word = m.group(0)
        lower = word.lower()
        # "US" and "U.S." name a country; the lower-case "us" is a pronoun
        if lower in STOP_WORDS and not (word.isupper() and len(word) > 1):
            s = ""
        else:
            s = stem(word)
        tokens.append(Token(word, m.start(), m.end(), s))
    return tokens


def content_stems(text: str) -> list[str]:
    """The normalised content words of ``text``, in order (stop words left out)."""
    out = []
    tokens = tokenize(text)
    for t in tokens:
        if t.stem:
            out.append(t.stem)
    out.extend(acronyms(tokens))
    return out


def acronyms(tokens: list[Token]) -> list[str]:
    """Acronyms of runs of capitalised words ("United States" -> "us"), so that a question
    that says "US" finds a sentence that says "United States", and the other way round."""
    out: list[str] = []
    run: list[Token] = []
    for t in tokens + [Token("", 0, 0, "")]:
        joined = run and t.start - run[-1].end == 1
        if t.capitalised and t.text.isalpha() and not t.text.isupper() and t.stem:
            if not joined and len(run) >= 2:
                out.append("".join(w.text[0] for w in run).lower())
            run = run + [t] if joined else [t]
            continue
        if len(run) >= 2:
            out.append("".join(w.text[0] for w in run).lower())
        run = []
    return out


# Quotation marks and brackets an answer should not leave open: opening -> closing.
PAIRS = {"“": "”", "‘": "’", "«": "»", "(": ")", "[": "]", '"': '"'}
_PUNCTUATED = {c: {p + c for p in ".,;:!?"} for o, c in PAIRS.items() if o != c}


def balanced_span(text: str, start: int, end: int) -> tuple[int, int]:
    """``text[start:end]`` widened by the quotation mark or bracket that closes (or opens)
    one it leaves open, when that mark is the very next (or previous) character: the
    reader's span of 'dubbed the “Trump whisperer” for' may end before the closing mark,
    and 'the “Trump whisperer' reads as broken. A closing mark after the text's own comma or
    full stop ('.”') is taken in with it; nested marks are closed one after the other.
    Still the text's own characters; a mark further away is left as it is. A straight
    quotation mark counts as open when the span holds an odd number of them (an inch mark
    counts too), so one is taken in only where no letter or digit stands beyond it, which
    leaves the next quotation's opening mark out. ’ is also an apostrophe: it is never taken
    in before a letter, and ‘ never leftwards (a span's apostrophes look like closing marks)."""
    for _ in range(2 * len(PAIRS)):  # each round takes in at most one mark
        widened = _widen(text, start, end)
        if widened == (start, end):
            break
        start, end = widened
    return start, end


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    span = text[start:end]
    after, before = text[end : end + 1], text[start - 1 : start] if start else ""
    for opening, closing in PAIRS.items():
        if opening == closing:  # straight quotes: open when their count is odd
            if span.count(opening) % 2 == 0:
                continue
            if after == closing and not text[end + 1 : end + 2].isalnum():
                return start, end + 1
            if before == opening and not text[start - 2 : start - 1].isalnum():
                return start - 1, end
            continue
        opened, closed = span.count(opening), span.count(closing)
        if opened > closed:
            # the closing mark next, or after the sentence's own comma or full stop ('.”')
            step = (
                1 if after == closing else 2 if text[end : end + 2] in _PUNCTUATED[closing] else 0
            )
            if step and (closing != "’" or not text[end + step : end + step + 1].isalpha()):
                return start, end + step
        if closed > opened and before == opening and opening != "‘":
            return start - 1, end
    return start, end


# what joins two runs of letters or digits into one name or number, with no space: the
# reader's words end at every punctuation mark, so a span may stop inside one
_JOINED = re.compile(r"[^\W_]+(?:(?:_+|[./])[^\W_]+)+|\w*_\w*")


def whole_names(text: str, start: int, end: int) -> tuple[int, int]:
    """``text[start:end]`` widened to whole names and numbers where it cuts one that marks
    join ('TIDEPOOL' of 'TIDEPOOL_LOG_LEVEL', '2.4' of '2.4.1', 'config' of 'config.toml');
    a span ending at a word's own stop ('in the U.S.') or apostrophe ('Trump' of "Trump's")
    is left as it is."""
    for m in _JOINED.finditer(text, max(0, start - 200), min(len(text), end + 200)):
        a, b = m.span()
        if a < start < b:  # the span begins inside it
            start = a
        if a < end < b:  # it ends inside it
            end = b
    return start, end
