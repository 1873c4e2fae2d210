"""Reading a question: what kind of answer it expects, its focus, and its content words."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from .text import Token, acronyms, tokenize

# Expected answer kinds, tried in order; the first pattern that matches the (lower-cased)
# question decides.
KIND_PATTERNS = (
    ("age", r"^(how old|what age|at what age)\b"),
    (
        "measure",
        r"\bhow (tall|high|wide|deep|big|large|heavy|far)\b|\bhow long (is|was|are|were)\b|"
        r"\bwhat (height|length|width|depth|size|weight|distance)\b",
    ),
    (
        "duration",
        r"\bhow long\b|\b(over|for|during) (what|which|how long a) (period|time)\b|"
        r"\bhow many (years|months|weeks|days|decades|hours)\b",
    ),
    # "how much will it cost": an amount of money, not just any number
    (
        "money",
        r"\bhow much\b.*\b(costs?|costing|pay|pays|paid|paying|spend|spends|spent|spending|"
        r"prices?|priced|worth|funds?|funded|funding|budgets?|aid|money|charges?|charged|"
        r"owes?|owed|fines?|fined|fees?|salary|salaries|earns?|earned|earnings|invest|"
        r"invested|investment|grants?|granted)\b|"
        r"\bwhat (?:did|does|do|will|would) .*\bcost\b|\bat what (cost|price)\b|"
        r"^what (?:is|was|are|were|will be) the (?:\w+ ){0,3}(?:cost|price|price tag)\b",
    ),
    ("number", r"\bhow (many|much)\b|\bwhat (number|percentage|share|proportion|amount)\b"),
    ("date", r"^when\b|\b(since|until) when\b|\b(what|which) (year|month|day|date|time)\b"),
    (
        "person",
        r"^(who|whom|whose)\b|\b(with|to|by|for|from|of|against) whom\b|"
        r"\b(which|what) (person|people|man|woman|official|leader)\b",
    ),
    (
        "place",
        r"^where\b|\b(which|what) (country|countries|city|cities|place|region|state|"
        r"nation|town|capital)\b",
    ),
    ("yesno", r"^(is|are|was|were|do|does|did|has|have|had|can|could|will|would|should)\b"),
)
WH_WORDS = frozenset("what which who whom whose when where why how".split())
# Nouns that say which kind of thing is asked for, rather than naming the thing itself.
GENERIC_FOCUS = frozenset(
    """kind type sort form part number amount time period year month day date place country
    city person people thing way reason role name group""".split()
)
# Nouns that only name the kind of answer: "on what date", "in which year".
KIND_NOUNS = frozenset("date year month day time number amount".split())
SPEECH = frozenset("say tell report announc stat claim add warn insist stress argu declar".split())


@dataclass(frozen=True)
class Question:
    text: str
    kind: str  # age, measure, duration, money, number, date, person, place, yesno, other
    tokens: tuple[Token, ...]
    terms: tuple[str, ...]  # content stems, with acronyms of capitalised runs
    focus: str | None  # stem of the noun after "which"/"what" (or "what is the X")
    focus_direct: bool  # "which X ..." rather than "what is the X of ..."
    asks_speech: bool  # "what did X say/report/announce"
    definition: bool  # "what is X?", "who was X?": the answer is a description
    subject: bool  # the wh-word is the subject: "Who cut the ribbon?"

    @property
    def wants_span(self) -> bool:
        return self.kind not in ("yesno",)

    @cached_property
    def asks_count(self) -> bool:
        """ "How many ...": a count, not a percentage, a sum, a distance or a duration."""
        return bool(re.search(r"\bhow many\b", self.text.lower()))

    @cached_property
    def asks_share(self) -> bool:
        """ "What percentage ...": a percentage, when the sentence has one."""
        return bool(re.search(r"\b(percentage|percent|share|proportion|rate)\b", self.text.lower()))


def read_question(text: str) -> Question:
    text = " ".join(text.split())
    lower = text.lower()
    kind = next((k for k, p in KIND_PATTERNS if re.search(p, lower)), "other")
    tokens = tuple(tokenize(text))
    # the word after "how" says what kind of answer is asked for ("how long", "how old"),
    # it is not a word to look for
    kind_words = {i + 1 for i, t in enumerate(tokens) if t.text.lower() == "how"}
    focus, direct = _focus(tokens)
    # likewise the noun of "what date", "which year": the kind of answer, not a topic
    kind_words |= {
        i for i, t in enumerate(tokens) if t.stem and t.stem == focus and focus in KIND_NOUNS
    }
    terms = tuple(t.stem for i, t in enumerate(tokens) if t.stem and i not in kind_words)
    terms += tuple(acronyms(list(tokens)))
    if focus in GENERIC_FOCUS:
        direct = False  # "over what period": a kind of answer, not a topic
    asks_speech = lower.startswith("what") and any(
        t.stem.startswith(s) for t in tokens for s in SPEECH if t.stem
    )
    definition = bool(
        re.match(r"^(what|who)(?: i|'|’)?s?\b(?: (?:is|are|was|were))?\s+[^,]+\?*$", lower)
    ) and _only_subject(tokens)
    subject = _asks_subject(lower.split())
    return Question(text, kind, tokens, terms, focus, direct, asks_speech, definition, subject)


def _only_subject(tokens: tuple[Token, ...]) -> bool:
    """Whether everything after "what is" is one name or noun phrase (no verb-like word)."""
    rest = [t for t in tokens[2:] if t.stem]
    return bool(rest) and all(t.capitalised or t.text[0].isdigit() for t in rest)


AUXILIARIES = frozenset(
    "is are was were be been did does do has have had will would can could should may might "
    "must shall".split()
)


def _asks_subject(words: list[str]) -> bool:
    """Whether the wh-word (or "which X") is the subject: "Who cut the ribbon?"."""
    if not words:
        return False
    if words[0] == "who":
        rest = words[1:]
    elif words[0] in ("which", "what") and len(words) > 1 and words[1] not in AUXILIARIES:
        rest = words[2:]
    else:
        return False
    return bool(rest) and rest[0] not in AUXILIARIES


def _focus(tokens: tuple[Token, ...]) -> tuple[str | None, bool]:
    """The noun a which/what question asks about: "which currency" -> "currency",
    "what is the capital of" -> "capital"; generic nouns ("kind of") are skipped."""
    words = [t.text.lower() for t in tokens]
    for i, w in enumerate(words):
        if w not in ("which", "what"):
            continue
        j = i + 1
        direct = True
        if j < len(words) and words[j] in ("is", "are", "was", "were"):
            direct = False
            j += 1
            if j < len(words) and words[j] in ("the", "a", "an"):
                j += 1
            else:
                return None, False
        while j < len(tokens):
            if (
                words[j] in ("kind", "type", "sort", "form")
                and j + 1 < len(words)
                and words[j + 1] == "of"
            ):
                j += 2
                continue
            if words[j] in AUXILIARIES:
                return None, False  # "what did the mayor ...": no noun after the wh-word
            if (
                words[j] in ("the", "a", "an", "of")
                or words[j].isdigit()
                or words[j] in ("two", "three", "four", "five", "several", "many")
            ):
                j += 1
                continue
            break
        if j < len(tokens) and tokens[j].stem and not tokens[j].capitalised:
            # the head of a compound is its last noun: "coral cover" -> "cover"
            while (
                j + 1 < len(tokens)
                and tokens[j + 1].stem
                and not tokens[j + 1].capitalised
                and words[j + 1] not in AUXILIARIES
                and tokens[j + 1].start - tokens[j].end == 1
                and not direct
            ):
                j += 1
            return tokens[j].stem, direct
        return None, False
    return None, False
