"""Rule-based answer extraction for closed questions: single choice, multiple choice, true/false.

Each parser runs a cascade of stages, from the most explicit answer form to the loosest, and the
first stage that decides wins. A stage that finds two different answers reports a conflict instead
of picking one, and a reply without a recognisable answer is a parse failure (value None): the
rules never guess. Letters outside the item's options are never accepted as answers.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise

RULES_VERSION = "rules-v1"

NO_ANSWER = "no_answer"
CONFLICT = "conflict"


@dataclass(frozen=True)
class Parsed:
    """An extracted answer and the cascade stage that decided it; value None is a parse failure."""

    value: str | tuple[str, ...] | bool | None
    stage: str

    @property
    def ok(self) -> bool:
        return self.value is not None


_FAIL = Parsed(None, NO_ANSWER)
_CONFLICT = Parsed(None, CONFLICT)

# --------------------------------------------------------------------------------------------
# Text preparation
# --------------------------------------------------------------------------------------------

_THINK_OPEN = re.compile(r"<think(?:ing)?>", re.I)
_THINK_CLOSE = re.compile(r"</think(?:ing)?>", re.I)


def strip_think(text: str) -> str:
    """Remove model reasoning and return the stripped rest.

    Drops closed <think> blocks; everything before a lone </think> (the opening tag was part of
    the prompt template, so that text is reasoning); and an unclosed <think> to the end of the
    text (the model never finished thinking, so nothing after it is an answer).
    """
    kept: list[str] = []
    pos = 0
    # A scan rather than one regex keeps many unclosed tags linear instead of quadratic.
    while (opened := _THINK_OPEN.search(text, pos)) is not None:
        closed = _THINK_CLOSE.search(text, opened.end())
        if closed is None:
            break
        kept += [text[pos : opened.start()], " "]
        pos = closed.end()
    text = "".join(kept) + text[pos:]
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        text = text[closes[-1].end() :]
    opened = _THINK_OPEN.search(text)
    if opened:
        text = text[: opened.start()]
    return text.strip()


_TYPOGRAPHY = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u200b": None,
        "\u200c": None,
        "\u200d": None,
        "\u2060": None,
        "\ufeff": None,
        "\u00ad": None,
    }
)
# <answer>…</answer> tags and LaTeX \boxed{…} are explicit final answers; rewriting them as
# "Final answer: …" lets the answer stage treat them with the same top priority.
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.I | re.S)
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}")
_BOXED = re.compile(r"\\boxed\s*\{([^{}]*)\}")
# Markdown emphasis, code ticks and math dollars only decorate an answer ("**B**", "`B`", "$B$").
_MARKUP = re.compile(r"\*+|__|`+|\$+")


def _prepare(response: str) -> str:
    # NFKC folds full-width letters and brackets, circled letters and odd spaces into ASCII.
    text = unicodedata.normalize("NFKC", strip_think(response)).translate(_TYPOGRAPHY)
    text = _ANSWER_TAG.sub(r"\nFinal answer: \1\n", text)
    text = _LATEX_TEXT.sub(r"\1", text)
    text = _BOXED.sub(r"\nFinal answer: \1\n", text)
    return _MARKUP.sub("", text).strip()


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Option:
    letter: str
    pattern: re.Pattern[str]
    length: int


@dataclass(frozen=True)
class _Choices:
    letters: frozenset[str]
    options: tuple[_Option, ...]  # longest text first, so "Very low" is found before "Low"
    by_letter: dict[str, _Option] = field(hash=False)


def _option_pattern(text: str) -> re.Pattern[str] | None:
    """Whole-word, case-insensitive pattern for an option text; hyphens and spaces interchange."""
    clean = unicodedata.normalize("NFKC", text).strip().rstrip(".").strip()
    words = [word for word in re.split(r"[\s\-]+", clean) if word]
    if not words:
        return None
    body = r"[\s\-]+".join(re.escape(word) for word in words)
    # A hyphen counts as part of a word: "low" must not match inside "low-light".
    return re.compile(rf"(?<![\w\-]){body}(?![\w\-])", re.I)


@lru_cache(maxsize=512)
def _choices(options: tuple[str, ...]) -> _Choices:
    letters = string.ascii_uppercase[: len(options)]
    compiled = []
    for letter, text in zip(letters, options, strict=False):
        pattern = _option_pattern(text)
        if pattern is not None:
            compiled.append(_Option(letter, pattern, len(text.strip())))
    compiled.sort(key=lambda option: -option.length)
    return _Choices(frozenset(letters), tuple(compiled), {o.letter: o for o in compiled})


# --------------------------------------------------------------------------------------------
# Negation
# --------------------------------------------------------------------------------------------

_CLAUSE_BREAK = re.compile(
    r'[.;:!?,"()\[\]\n]|\b(?:but|however|though|although|whereas|while|yet)\b', re.I
)
# Words that may stand between a negator and what it negates: "not very low", "isn't that blurry".
_SOFT_WORDS = frozenset(
    {
        *("a", "an", "the", "any", "that", "as", "at", "all", "so", "too", "much", "slightly"),
        *("very", "really", "quite", "entirely", "completely", "fully", "particularly"),
        *("especially", "overly", "extremely", "exactly", "necessarily", "totally"),
        *("is", "are", "was", "were", "be", "been", "being", "look", "looks", "seem", "seems"),
        *("appear", "appears", "sound", "sounds", "or"),
    }
)
_NEGATORS = frozenset(
    {"not", "no", "never", "neither", "nor", "without", "cannot", "except", "excluding"}
)
_NEGATOR_PAIRS = frozenset({"rather than", "instead of", "other than"})
_NEGATED_AFTER = re.compile(
    r"\s+(?:is|are|was|were|seems?|looks?|appears?)(?:\s+not\b|n't\b|\s+(?:incorrect|wrong|false)\b)"
    r"|[ \t]*[:=\-][ \t]*(?:no|false|absent|none|not\s+present)\b",  # "Noise: no"
    re.I,
)


def _is_negated(text: str, start: int, end: int, *, after: bool = True) -> bool:
    """Whether the span is negated: a negator among the two content words before it in its clause
    ("not high", "no visible blur"), or, with `after`, a denial right after it ("A is wrong",
    "Noise: no")."""
    prefix = text[max(0, start - 80) : start]
    breaks = list(_CLAUSE_BREAK.finditer(prefix))
    if breaks:
        prefix = prefix[breaks[-1].end() :]
    words = [word.lower() for word in re.findall(r"[\w']+", prefix)]
    hard = [word for word in reversed(words) if word not in _SOFT_WORDS][:2]
    if any(word in _NEGATORS or word.endswith("n't") for word in hard):
        return True
    if len(hard) == 2 and f"{hard[1]} {hard[0]}" in _NEGATOR_PAIRS:
        return True
    return after and _NEGATED_AFTER.match(text, end) is not None


# --------------------------------------------------------------------------------------------
# Letter tokens and answer lists
# --------------------------------------------------------------------------------------------

# One option letter, optionally bracketed or quoted; not part of a word, "A-grade", "e.g.", "A's".
# Boundaries are ASCII so that a letter right next to CJK text ("答案是B") still counts.
_TOKEN = re.compile(
    r"(?P<open>[(\[])?[\"']?(?P<l>[A-Za-z])[\"']?(?(open)[)\]]|\)?)"
    r"(?![A-Za-z0-9_'\-])(?!\.[A-Za-z0-9])"
)
# The same for loose prose: capital letters only, and not preceded by a word, "/" or ".".
_TAIL_TOKEN = re.compile(
    r"(?<![A-Za-z0-9_\-./'])(?P<open>[(\[])?(?P<l>[A-Z])(?(open)[)\]]|\)?)"
    r"(?![A-Za-z0-9_'\-])(?!\.[A-Za-z0-9])"
)
_TOKEN_END = re.compile(r"[ \t]*(?:$|[.,;:!?)\]/&+\n])")
_LONE_CAPITAL = r"[(\[]?[A-Z][)\]]?(?![A-Za-z0-9_'\-])"
_AFTER_LETTER_WORD = re.compile(
    rf"[ \t]+(?:(?i:and|or|because|since|is|seems|appears|looks)\b|{_LONE_CAPITAL})"
)
_STANDALONE_END = re.compile(rf"[ \t]*(?:$|[.,;:!?)\]/&+\n]|(?i:and|or)\b|{_LONE_CAPITAL})")
_LEAD_IN = re.compile(
    r"[ \t]*(?:(?:[-•]|\d{1,2}[.)])[ \t]*)?(?:(?:options?|choices?|letters?)\b[ \t]*:?[ \t]*)?",
    re.I,
)
_ARTICLE = re.compile(r"(?:an?|the)[ \t]+", re.I)
_OWN_TEXT_GAP = re.compile(r"[ \t]*(?:[.:)(\-\u2013\u2014][ \t]*)?")
_SEP = re.compile(r"[ \t]*(?P<mark>,?[ \t]*(?:\b(?:and|or|plus)\b|[,;/&+])|\n)?\s*", re.I)
_OR = re.compile(r"\bor\b", re.I)
_TRAILER = re.compile(r"[\s.!:;,]*")


def _is_letter(text: str, token: re.Match[str], choices: _Choices) -> bool:
    """Whether a token is an option letter rather than the article "A"/"a" or the pronoun "I".

    Other letters are never English words. "A" and "I" count when formatted as an option marker
    ("(A)", "A)", "A."), when they end the phrase ("A", "A,"), when a connective or another letter
    follows ("A and C", "A because", "A C"), or when their own option text follows ("A Blurry").
    """
    letter = token["l"]
    if letter not in "AaIi":
        return True
    if token["open"] or token.group().endswith((")", "]")):
        return True
    end = token.end()
    if _TOKEN_END.match(text, end) or _AFTER_LETTER_WORD.match(text, end):
        return True
    return _skip_own_text(text, end, choices.by_letter.get(letter.upper())) > end


def _skip_own_text(text: str, pos: int, option: _Option | None) -> int:
    """Skip the option's own text after its letter ("B. Low", "(B) Low", "B: Low", "B (Low)")."""
    if option is None:
        return pos
    gap = _OWN_TEXT_GAP.match(text, pos)
    assert gap is not None  # the gap pattern can match the empty string
    found = option.pattern.match(text, gap.end())
    if found is None:
        return pos
    if "(" not in gap.group():
        return found.end()
    closing = re.compile(r"[ \t]*\)").match(text, found.end())
    return closing.end() if closing else pos


@dataclass
class _Items:
    """Answer items read from a position: letters in order (valid or not) and how they were read."""

    letters: list[str] = field(default_factory=list)
    end: int = 0
    has_or: bool = False  # "A or C", "B or maybe …": alternatives, not an answer
    by_text: bool = False  # some item was an option text rather than a letter


def _read_option_text(text: str, pos: int, choices: _Choices) -> tuple[str, int] | None:
    starts = [pos]
    article = _ARTICLE.match(text, pos)
    if article:
        starts.append(article.end())
    for start in starts:
        for option in choices.options:
            found = option.pattern.match(text, start)
            if found:
                return option.letter, found.end()
    return None


def _read_item(
    text: str, pos: int, choices: _Choices, *, texts: bool, standalone: bool
) -> tuple[str, int, bool] | None:
    """One item at `pos`: (letter, end, whether it was read from an option text)."""
    lead = _LEAD_IN.match(text, pos)
    assert lead is not None  # the lead-in pattern can match the empty string
    start = lead.end()
    token = _TOKEN.match(text, start)
    if token and _is_letter(text, token, choices) and not _NEGATED_AFTER.match(text, token.end()):
        # After a bare space only a standalone letter continues a list: "A C", not "B A is".
        if standalone and not _STANDALONE_END.match(text, token.end()):
            return None
        letter = token["l"].upper()
        return letter, _skip_own_text(text, token.end(), choices.by_letter.get(letter)), False
    if not texts or standalone:
        return None
    found = _read_option_text(text, start, choices)
    return (found[0], found[1], True) if found else None


def _read_items(text: str, pos: int, choices: _Choices, *, texts: bool = True) -> _Items:
    """Read a list of answer items: "A, C", "A and C", "(A)(C)", "A C", "- A\\n- C", "Blur and
    noise". Stops before anything that is not an item, such as "not C" or "because …"."""
    items = _Items(end=pos)
    spacing = "first"
    pending_or = False
    while True:
        found = _read_item(text, pos, choices, texts=texts, standalone=spacing == "space")
        if found is None:
            # "B or maybe C", "B, or rather …": a dangling "or" offers an alternative.
            items.has_or |= pending_or and bool(items.letters)
            break
        letter, items.end, by_text = found
        items.letters.append(letter)
        items.by_text |= by_text
        items.has_or |= pending_or
        sep = _SEP.match(text, items.end)
        assert sep is not None  # the separator pattern can match the empty string
        mark = sep["mark"]
        pending_or = bool(mark and _OR.search(mark))
        spacing = "mark" if mark else ("space" if sep.end() > items.end else "none")
        if spacing == "none" and not text.startswith(("(", "["), sep.end()):
            break
        pos = sep.end()
    return items


def _whole_items(text: str, choices: _Choices) -> _Items | None:
    """Items that make up the whole of `text`, give or take closing punctuation or one pair of
    brackets around a list ("[A, C]")."""
    bracketed = re.fullmatch(r"\s*\[([^\[\]\"']*)\]\s*", text)
    if bracketed and "," in bracketed[1]:
        text = bracketed[1]
    items = _read_items(text, 0, choices)
    if items.letters and _TRAILER.fullmatch(text, items.end):
        return items
    return None


# --------------------------------------------------------------------------------------------
# Shared helpers for deciding
# --------------------------------------------------------------------------------------------


def _one(letters: Iterable[str], choices: _Choices, stage: str, has_or: bool = False) -> Parsed:
    """A single-choice answer from the letters a stage found (at least one)."""
    distinct = set(letters)
    if len(distinct) > 1 or has_or:
        return _CONFLICT
    (letter,) = distinct
    return Parsed(letter, stage) if letter in choices.letters else _FAIL


def _many(letters: Iterable[str], has_or: bool, choices: _Choices, stage: str) -> Parsed:
    """A multiple-choice answer (sorted unique letters) from the letters a stage found."""
    distinct = set(letters)
    if has_or:
        return _CONFLICT
    if not distinct <= choices.letters:
        return _FAIL
    return Parsed(tuple(sorted(distinct)), stage)


def _agree(results: Sequence[Parsed]) -> Parsed | None:
    """One answer if all results agree, a conflict if they differ, None if there are none."""
    if not results:
        return None
    if any(r.stage == CONFLICT for r in results) or len({r.value for r in results}) > 1:
        return _CONFLICT
    return results[0]


_Stage = Callable[[str, _Choices], Parsed | None]


def _run(text: str, choices: _Choices, stages: Sequence[_Stage]) -> Parsed:
    if not text:
        return _FAIL
    for stage in stages:
        result = stage(text, choices)
        if result is not None:
            return result
    return _FAIL


# --------------------------------------------------------------------------------------------
# JSON answers
# --------------------------------------------------------------------------------------------

_ANSWER_KEYS = frozenset(
    {
        "answer",
        "answers",
        "final_answer",
        "correct_answer",
        "correct_answers",
        "choice",
        "choices",
        "option",
        "selected_option",
        "selected_options",
        "correct_option",
        "correct_options",
        "selection",
        "letter",
        "letters",
        "verdict",
        "judgment",
        "judgement",
    }
)
# Where a JSON object or array plausibly starts; bounded tries keep junk like "[[[[" cheap.
_JSON_START = re.compile(r"\{\s*[\"'}]|\[\s*[\"'\[{\]\d\-tfnTFN]")
_MAX_JSON_TRIES = 64


def _lenient_json(text: str) -> str:
    """Python-literal spellings as JSON; each replacement keeps the length, so offsets hold."""
    text = re.sub(r"\bTrue\b", "true", text)
    text = re.sub(r"\bFalse\b", "false", text)
    text = re.sub(r"\bNone\b", "null", text)
    return text.replace("'", '"')


def _decode_at(texts: tuple[str, str], start: int) -> tuple[object, int] | None:
    """Decode one JSON value at `start`, as written or in its lenient spelling."""
    decoder = json.JSONDecoder()
    for candidate in texts:
        try:
            value, end = decoder.raw_decode(candidate, start)
        except (ValueError, RecursionError):
            continue
        return value, end
    return None


def _answer_values(value: object, *, top: bool) -> Iterator[object]:
    """Values under answer-like keys (any case), searching nested objects; a top-level list of
    strings is itself an answer (`["A", "C"]`)."""
    if isinstance(value, list) and top and value and all(isinstance(v, str) for v in value):
        yield value
    if not isinstance(value, dict):
        return
    keyed = [v for k, v in value.items() if re.sub(r"[\s\-]+", "_", str(k).lower()) in _ANSWER_KEYS]
    if keyed:
        yield from keyed
        return
    for nested in value.values():
        yield from _answer_values(nested, top=False)


def _json_answers(text: str) -> list[object]:
    values: list[object] = []
    texts = (text, _lenient_json(text))
    pos = 0
    for _ in range(_MAX_JSON_TRIES):
        bracket = _JSON_START.search(text, pos)
        if bracket is None:
            break
        decoded = _decode_at(texts, bracket.start())
        if decoded is None:
            pos = bracket.start() + 1
            continue
        values.extend(_answer_values(decoded[0], top=True))
        pos = decoded[1]
    return values


def _json_stage(text: str, read: Callable[[object], Parsed | None]) -> Parsed | None:
    """Answers from JSON in the reply; a value that holds no answer leaves the cascade going."""
    results = []
    for value in _json_answers(text):
        parsed = read(value)
        if parsed is None or parsed.stage == NO_ANSWER:
            continue
        results.append(Parsed(parsed.value, "json") if parsed.ok else parsed)
    return _agree(results)


def _as_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(str(v) for v in value)
    return None


# --------------------------------------------------------------------------------------------
# Stages for single and multiple choice
# --------------------------------------------------------------------------------------------

_QUALIFIER = r"(?:correct|right|best|my|chosen|selected|appropriate|suitable|proper|most\s+\w+)"
_MARKER = re.compile(
    r"(?:\b(?:(?P<final>final\s+(?:answer|option|choice|selection)s?)"
    r"|answers?(?:\s+(?:to|for)\s+(?:this|the)\s+question)?"
    rf"|{_QUALIFIER}\s+(?:option|choice|letter|selection)s?)\b[\"']?"
    r"\s*(?:(?:is|are|would\s+be|should\s+be|will\s+be|must\s+be)\b\s*:?|[:=\-])?"
    r"|\bI(?:\s+would|\s+will|'d|'ll)?\s+(?:choose|pick|select|go\s+with|opt\s+for|say)\b\s*:?)"
    r"\s*(?:(?:therefore|thus|clearly|probably|likely|definitely|then)\b\s*,?\s*)?",
    re.I,
)
_POSTFIX_ITEM = r"[(\[]?[A-Z][)\]]?(?![\w'])"
_POSTFIX_ANSWER = re.compile(
    r"(?<![\w\-./'])(?:(?:[Oo]ptions?|[Cc]hoices?)\s+)?"
    rf"(?P<items>{_POSTFIX_ITEM}(?:\s*(?:,|and|or|&|/)\s*(?:(?:[Oo]ptions?|[Cc]hoices?)\s+)?"
    rf"{_POSTFIX_ITEM})*)"
    r"\s+(?:is|are)\s+(?:the\s+)?(?:only\s+)?(?:correct|right|best|most\s+accurate)\b(?!-)"
)
_LINE_MARKER = re.compile(
    r"^[ \t]*(?:[-•][ \t]*)?(?:[(\[](?P<a>[A-Z])[)\]]|(?P<b>[A-Z])[.:)](?!\w))", re.M
)
_ABSTAIN = re.compile(
    r"\b(?:cannot|can\s+not|can't|unable\s+to|impossible\s+to|not\s+possible\s+to)\s+"
    r"(?:be\s+)?(?:tell|told|determine|determined|answer|answered|judge|judged|decide|decided|"
    r"know|known|assess|assessed)\b|\bit\s+depends\b|\b(?:not\s+enough|insufficient)\s+information\b",
    re.I,
)
_MARKER_OPENING = re.compile(r"[ \t]*(?:[-•][ \t]*)?(?:[(\[][A-Za-z][)\]]|[A-Za-z][.:)](?!\w))")
_SET_OFF = re.compile(r"[ \t]*(?:$|[.:;,!()\]\-\u2013\u2014]|(?:because|since|as|or)\b)", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _marked_items(text: str, choices: _Choices) -> list[_Items]:
    """Item lists after explicit answer markers ("Answer: B", "the correct option is (B)",
    "I'd choose B", "B is correct"). "Final answer" and \\boxed{} outrank the other markers."""
    final: list[_Items] = []
    other: list[_Items] = []
    for marker in _MARKER.finditer(text):
        items = _read_items(text, marker.end(), choices)
        if items.letters:
            (final if marker["final"] else other).append(items)
    for postfix in _POSTFIX_ANSWER.finditer(text):
        letters = re.findall(r"(?<![A-Za-z])[A-Z](?![A-Za-z])", postfix["items"])
        other.append(_Items(letters=letters, has_or=_OR.search(postfix["items"]) is not None))
    return final or other


def _answer_lines(text: str, choices: _Choices) -> list[_Items]:
    """Lines that hold nothing but valid answer items ("B", "- A. Blur", "Low")."""
    found = []
    for line in text.splitlines():
        items = _whole_items(line, choices)
        if items is not None and set(items.letters) <= choices.letters:
            found.append(items)
    return found


def _line_marker_letters(text: str) -> set[str]:
    return {m["a"] or m["b"] for m in _LINE_MARKER.finditer(text)}


def _is_option_walkthrough(text: str) -> bool:
    """Several lines start with different option markers: the reply echoes or discusses the
    options one by one, so a marker at the start of a line is not an answer."""
    return len(_line_marker_letters(text)) > 1


_OPTION_MARKER = re.compile(r"(?<![A-Za-z0-9])(?:[(\[](?P<a>[A-Z])[)\]]|(?P<b>[A-Z])[.:)])")


def _described_markers(text: str, choices: _Choices) -> list[tuple[str, int, int]]:
    """Option markers followed by their own option text ("B. Low", "(B) Low"): (letter, span)."""
    found = []
    for marker in _OPTION_MARKER.finditer(text):
        letter = marker["a"] or marker["b"]
        end = _skip_own_text(text, marker.end(), choices.by_letter.get(letter))
        if end > marker.end():
            found.append((letter, marker.start(), end))
    return found


def _without_echo(stage: _Stage) -> _Stage:
    """Run a loose stage on the reply minus a repeated option list ("A. High … D. Very low"):
    when every option of three or more appears with its text, those mentions are the prompt
    echoed back, not a choice."""

    def run(text: str, choices: _Choices) -> Parsed | None:
        described = _described_markers(text, choices)
        if len(choices.letters) < 3 or {d[0] for d in described} != choices.letters:
            return stage(text, choices)
        for _, start, end in reversed(described):
            text = text[:start] + " " + text[end:]
        return stage(text.strip(), choices) if text.strip() else _FAIL

    return run


def _leading_items(text: str, choices: _Choices) -> _Items | None:
    """Letters opening the reply ("B. The face is sharp", "(B) because …", "A, C. Both …").

    The letters must be set off from what follows; "A seems too high" talks about an option.
    """
    first_line = text.split("\n", 1)[0]
    if _is_option_walkthrough(text) or len(_described_markers(first_line, choices)) > 1:
        return None
    items = _read_items(first_line, 0, choices, texts=False)
    if not items.letters:
        return None
    if not (_MARKER_OPENING.match(first_line) or _SET_OFF.match(first_line, items.end)):
        return None
    return items


def _names_other_option(text: str, items: _Items, choices: _Choices) -> bool:
    """The letter comes with another option's text ("B. High" where B is "Low")."""
    first_line = text.split("\n", 1)[0]
    rest = re.sub(r"^[ \t]*[.:)(\-\u2013\u2014]?[ \t]*|[\s.!)]*$", "", first_line[items.end :])
    return bool(rest) and any(
        option.letter not in items.letters and option.pattern.fullmatch(rest)
        for option in choices.options
    )


def _tail_segments(text: str) -> list[str]:
    """Where a closing answer sits: the last sentence, then the whole last line. A last line that
    opens with an option marker amid other such lines is a list entry: its marker is dropped."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    last = lines[-1]
    if _is_option_walkthrough(text):
        last = _LINE_MARKER.sub("", last, count=1)
    sentences = [s for s in _SENTENCE_END.split(last) if s.strip()]
    return [sentences[-1], last] if sentences else [last]


def _tail_letters(segment: str, choices: _Choices) -> tuple[list[str], bool]:
    """Valid, non-negated capital letter tokens in a segment, and whether "or" joins two."""
    found = [
        token
        for token in _TAIL_TOKEN.finditer(segment)
        if token["l"] in choices.letters
        and _is_letter(segment, token, choices)
        and not _is_negated(segment, token.start(), token.end())
    ]
    has_or = any(_OR.search(segment[a.end() : b.start()]) for a, b in pairwise(found))
    return [token["l"] for token in found], has_or


def _option_mentions(text: str, choices: _Choices) -> tuple[list[str], bool]:
    """Letters of the option texts the reply affirms, longest texts first so that "very low"
    is not also read as "low"; negated mentions ("not blurry") are skipped."""
    taken: list[tuple[int, int]] = []
    hits: list[tuple[int, int, str]] = []
    for option in choices.options:
        for found in option.pattern.finditer(text):
            start, end = found.span()
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            taken.append((start, end))
            if not _is_negated(text, start, end):
                hits.append((start, end, option.letter))
    hits.sort()
    has_or = any(
        len(text[a[1] : b[0]]) <= 20 and _OR.search(text[a[1] : b[0]]) for a, b in pairwise(hits)
    )
    return [hit[2] for hit in hits], has_or


def _abstains(text: str, _choices: _Choices) -> Parsed | None:
    """A reply that declines to answer ("I cannot tell …") is a failure, even if it goes on to
    mention an option: loose stages below would otherwise read a guess into it."""
    return _FAIL if _ABSTAIN.search(text) else None


# Single choice ------------------------------------------------------------------------------


def _single_strict(text: str, choices: _Choices) -> Parsed | None:
    items = _whole_items(text, choices)
    if items is None:
        return None
    stage = "option_text" if items.by_text else "strict_letter"
    return _one(items.letters, choices, stage, items.has_or)


def _single_value(value: object, choices: _Choices) -> Parsed | None:
    text = _as_text(value)
    return None if text is None else _run(_prepare(text), choices, _SINGLE_BODY)


def _single_json(text: str, choices: _Choices) -> Parsed | None:
    return _json_stage(text, lambda value: _single_value(value, choices))


def _single_marked(text: str, choices: _Choices) -> Parsed | None:
    found = _marked_items(text, choices)
    if not found:
        return None
    letters = [letter for items in found for letter in items.letters]
    return _one(letters, choices, "answer_is", any(items.has_or for items in found))


def _single_line(text: str, choices: _Choices) -> Parsed | None:
    found = _answer_lines(text, choices)
    if not found:
        return None
    letters = [letter for items in found for letter in items.letters]
    return _one(letters, choices, "letter_line", any(items.has_or for items in found))


def _single_leading(text: str, choices: _Choices) -> Parsed | None:
    items = _leading_items(text, choices)
    if items is None:
        return None
    if _names_other_option(text, items, choices):
        return _CONFLICT
    if not set(items.letters) <= choices.letters:
        return None  # "I. Introduction": not an option marker after all
    return _one(items.letters, choices, "leading_letter", items.has_or)


def _single_tail(text: str, choices: _Choices) -> Parsed | None:
    for segment in _tail_segments(text):
        letters, has_or = _tail_letters(segment, choices)
        if letters:
            return _one(letters, choices, "tail_letter", has_or)
    return None


def _single_text(text: str, choices: _Choices) -> Parsed | None:
    letters, has_or = _option_mentions(text, choices)
    return _one(letters, choices, "option_text", has_or) if letters else None


_SINGLE_BODY: tuple[_Stage, ...] = (
    _without_echo(_single_strict),
    _single_marked,
    *map(_without_echo, (_single_line, _single_leading, _abstains, _single_tail, _single_text)),
)
_SINGLE_STAGES: tuple[_Stage, ...] = (_SINGLE_BODY[0], _single_json, *_SINGLE_BODY[1:])


def parse_single(response: str, options: Sequence[str]) -> Parsed:
    """The one option letter a reply chooses, e.g. Parsed("B", "strict_letter").

    Cascade: whole reply is a letter or option text → JSON → answer markers ("Answer: B",
    "the correct option is (B)", "B is correct"; "Final answer" outranks the rest) → a line that
    is only an answer → letter opening the reply → (abstention check) → letter in the last
    sentence, then last line → option text mentioned (negation-aware). Stages other than JSON and
    the markers ignore an echoed option list ("A. High … D. Very low").
    """
    return _run(_prepare(response), _choices(tuple(options)), _SINGLE_STAGES)


# Multiple choice ----------------------------------------------------------------------------

_CONCATENATED = re.compile(r"[A-Z]{2,}")


def _multi_strict(text: str, choices: _Choices) -> Parsed | None:
    run = text.rstrip(" .!")
    # "ACD": letters run together, accepted only in alphabetical order so words ("BAD") are not.
    in_order = list(run) == sorted(set(run))
    if _CONCATENATED.fullmatch(run) and in_order and set(run) <= choices.letters:
        return Parsed(tuple(run), "strict_letter")
    items = _whole_items(text, choices)
    if items is None:
        return None
    stage = "option_text" if items.by_text else "strict_letter"
    return _many(items.letters, items.has_or, choices, stage)


def _multi_value(value: object, choices: _Choices) -> Parsed | None:
    text = _as_text(value)
    return None if text is None else _run(_prepare(text), choices, _MULTI_BODY)


def _multi_json(text: str, choices: _Choices) -> Parsed | None:
    return _json_stage(text, lambda value: _multi_value(value, choices))


def _multi_marked(text: str, choices: _Choices) -> Parsed | None:
    found = _marked_items(text, choices)
    if not found:
        return None
    if len({frozenset(items.letters) for items in found}) > 1:
        return _CONFLICT
    return _many(found[0].letters, any(i.has_or for i in found), choices, "answer_is")


def _multi_line(text: str, choices: _Choices) -> Parsed | None:
    found = _answer_lines(text, choices)
    if not found:
        return None
    letters = [letter for items in found for letter in items.letters]
    return _many(letters, any(i.has_or for i in found), choices, "letter_line")


def _multi_leading(text: str, choices: _Choices) -> Parsed | None:
    items = _leading_items(text, choices)
    if items is None or not set(items.letters) <= choices.letters:
        return None
    return _many(items.letters, items.has_or, choices, "leading_letter")


def _multi_tail(text: str, choices: _Choices) -> Parsed | None:
    for segment in _tail_segments(text):
        letters, has_or = _tail_letters(segment, choices)
        if letters:
            return _many(letters, has_or, choices, "tail_letter")
    return None


def _multi_text(text: str, choices: _Choices) -> Parsed | None:
    letters, has_or = _option_mentions(text, choices)
    return _many(letters, has_or, choices, "option_text") if letters else None


_MULTI_BODY: tuple[_Stage, ...] = (
    _without_echo(_multi_strict),
    _multi_marked,
    *map(_without_echo, (_multi_line, _multi_leading, _abstains, _multi_tail, _multi_text)),
)
_MULTI_STAGES: tuple[_Stage, ...] = (_MULTI_BODY[0], _multi_json, *_MULTI_BODY[1:])


def parse_multi(response: str, options: Sequence[str]) -> Parsed:
    """The sorted, unique option letters a reply selects, e.g. Parsed(("A", "C"), "answer_is").

    Same cascade as `parse_single`, reading lists ("A, C", "A and C", "(A)(C)", "- A\\n- C",
    "Blur and noise"); alternatives joined by "or" are a conflict, not a selection.
    """
    return _run(_prepare(response), _choices(tuple(options)), _MULTI_STAGES)


# --------------------------------------------------------------------------------------------
# True / false
# --------------------------------------------------------------------------------------------

_TRUE_WORDS = frozenset({"true", "yes", "correct", "right", "t", "y"})
_TF_WORD = r"(?P<w>true|false|yes|no|correct|incorrect|right|wrong)"
_TF_STRICT = re.compile(
    r"[\s\"'(\[]*(?P<w>true|false|yes|no|correct|incorrect|right|wrong|t|f|y|n)[\s\"')\].!]*",
    re.I,
)
_TF_MARKER = re.compile(
    r"\b(?:(?P<final>final\s+)?answer\s*(?:is|would\s+be|:|=|-)?"
    r"|(?:statement|claim|assertion)\s+(?:is|seems|appears|would\s+be)"
    r"|I(?:'d|\s+would)?\s+say)"
    r"(?P<neg>n't|\s+not)?"
    r"(?:\s+(?:to\s+be|entirely|completely|fully|really|definitely|actually|absolutely|clearly))*"
    rf"\s*:?\s*[\"'(\[]?{_TF_WORD}\b",
    re.I,
)
# "yes"/"no" after a marker must end the phrase: "the answer is no longer …" is not "no".
_WORD_FOLLOWS = re.compile(r"[ \t]+(?!(?:because|since|as|and|but|-)\b)[a-z]", re.I)
_TF_LEADING = re.compile(
    r"[\s\"'(\[]*(?P<w>yes|no|true|false|correct|incorrect)\b(?=[ \t]*(?:[,.!;:)\-]|$))",
    re.I | re.M,
)
_TF_SCAN = re.compile(r"(?<![\w\-])(?P<w>true|false|correct|incorrect|yes|no)(?![\w\-])", re.I)
# In prose "no" is mostly a determiner ("no blur"); it answers only when it ends a phrase.
_NO_ENDS = re.compile(r"[ \t]*(?:$|[.,!;:?)\n]|(?:and|or)\b)", re.I)


def _tf_value(word: str) -> bool:
    return word.lower() in _TRUE_WORDS


def _tf_strict(text: str) -> Parsed | None:
    found = _TF_STRICT.fullmatch(text)
    return Parsed(_tf_value(found["w"]), "strict_word") if found else None


def _tf_json(text: str) -> Parsed | None:
    def read(value: object) -> Parsed | None:
        if isinstance(value, bool):
            return Parsed(value, "json")
        return _run_tf(_prepare(value), _TF_BODY) if isinstance(value, str) else None

    return _json_stage(text, read)


def _tf_marked(text: str) -> Parsed | None:
    final: list[bool] = []
    other: list[bool] = []
    for marker in _TF_MARKER.finditer(text):
        word = marker["w"].lower()
        if word in ("yes", "no") and _WORD_FOLLOWS.match(text, marker.end()):
            continue
        value = _tf_value(word) != bool(marker["neg"])
        (final if marker["final"] else other).append(value)
    chosen = final or other
    if not chosen:
        return None
    return Parsed(chosen[0], "answer_is") if len(set(chosen)) == 1 else _CONFLICT


def _tf_leading(text: str) -> Parsed | None:
    """An opening "Yes, …"/"No." decides, unless the rest says the opposite ("Yes.\nNo.")."""
    found = _TF_LEADING.match(text)
    if found is None:
        return None
    value = _tf_value(found["w"])
    rest = _tf_scan(text)
    return _CONFLICT if rest is not None and rest.value != value else Parsed(value, "leading_word")


def _tf_abstains(text: str) -> Parsed | None:
    return _FAIL if _ABSTAIN.search(text) else None


def _tf_scan(text: str) -> Parsed | None:
    """Every true/false word in the reply, flipped when negated ("not true"); they must agree."""
    values = []
    for found in _TF_SCAN.finditer(text):
        word = found["w"].lower()
        if word == "no" and not _NO_ENDS.match(text, found.end()):
            continue
        value = _tf_value(word)
        if word not in ("yes", "no") and _is_negated(text, found.start(), found.end(), after=False):
            value = not value
        values.append(value)
    if not values:
        return None
    return Parsed(values[0], "tf_word") if len(set(values)) == 1 else _CONFLICT


_TfStage = Callable[[str], Parsed | None]
_TF_BODY: tuple[_TfStage, ...] = (_tf_strict, _tf_marked, _tf_leading, _tf_abstains, _tf_scan)
_TF_STAGES: tuple[_TfStage, ...] = (_tf_strict, _tf_json, *_TF_BODY[1:])


def _run_tf(text: str, stages: Sequence[_TfStage]) -> Parsed:
    if not text:
        return _FAIL
    for stage in stages:
        result = stage(text)
        if result is not None:
            return result
    return _FAIL


def parse_tf(response: str) -> Parsed:
    """True or False from a reply, e.g. Parsed(False, "answer_is") for "The statement is false."

    Cascade: whole reply is a true/false word → JSON → answer markers ("Answer: True", "the
    statement is not true") → leading word ("Yes, the face is blurry.") → (abstention check) →
    true/false words anywhere, negation-aware; "yes and no" is a conflict.
    """
    return _run_tf(_prepare(response), _TF_STAGES)
