"""Answer extraction for the scalar face-quality prompts (protocols.md §2).

Three parsers share one cascade style with `fiqabench.judges.rules`: the most explicit answer form
decides first, a reply that states two different values is a conflict, and a reply without a
usable value is a parse failure (score None) whose stage says why. Nothing is ever guessed.

* `parse_score`: a 0-100 score under a named key ("Quality Score", "Utility Score", ...).
* `parse_classification`: the "Quality Score" plus the four attributes mapped to exact enums.
* `parse_level`: the standard-guided K-level answer (one digit 1..K, optionally its word).

Scores are never rescaled: a reply on a 0-10 or 0-1 scale ("7", "0.72") is read as written and
only the range check applies, because the prompt fixes the scale and a silent x10 would invent
precision. An explicit denominator other than the scale's top ("7/10" on 0-100) is a failure
("scale_mismatch") rather than a misread 7.
"""

from __future__ import annotations

import ast
import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from fiqabench.benchmark.consistency import ATTRIBUTE_LEVELS, ATTRIBUTE_SEVERITY
from fiqabench.judges.rules import strip_think

SCORES_VERSION = "scores-v1"

NO_ANSWER = "no_answer"
OUT_OF_RANGE = "out_of_range"
MISSING_KEY = "missing_key"
CONFLICT = "conflict"
INVALID_VALUE = "invalid_value"  # the key is there but its value is not a number
SCALE_MISMATCH = "scale_mismatch"  # "7/10" or "72%" where the scale's top is something else

# The classification enums, mildest first, live in the consistency module (one source of truth).
ATTRIBUTE_ENUMS: dict[str, tuple[str, ...]] = ATTRIBUTE_LEVELS

# LLM-IQA's K = 7 anchors; LEVEL_WORDS[i] names level i + 1.
LEVEL_WORDS: tuple[str, ...] = ("Very Bad", "Poor", "Bad", "Fair", "Good", "Excellent", "Perfect")


@dataclass(frozen=True)
class ParsedScore:
    """A parsed score and the stage that decided it; score None is a parse failure.

    `attributes` holds classification attributes mapped to exact enum names; `attribute_failures`
    maps an attribute to the raw value that could not be mapped (values that disagree are joined
    with " | "). An attribute the reply does not mention is in neither.
    """

    score: float | None
    stage: str
    attributes: dict[str, str] = field(default_factory=dict, hash=False)
    attribute_failures: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def ok(self) -> bool:
        return self.score is not None


def severity(attribute: str, level: str) -> int:
    """Ordinal severity of an exact enum level: 0 = no degradation; Lighting counts 1..3 away from
    Balanced in either direction (Slightly, Moderately, Very)."""
    levels = ATTRIBUTE_SEVERITY.get(attribute)
    if levels is None or level not in levels:
        raise ValueError(f"unknown {attribute!r} level {level!r}")
    return levels[level]


# A stage's outcome: the value it read, or the name of the failure it met.
Outcome = float | str

# --------------------------------------------------------------------------------------------
# Reply preparation and JSON objects
# --------------------------------------------------------------------------------------------

_TYPOGRAPHY = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u200b": None, "\ufeff": None}
)
# Fence markers (with their language tag), emphasis and code ticks only decorate prose.
_MARKUP = re.compile(r"```[a-z0-9]*|\*+|__|`+", re.I)
_FENCE = re.compile(r"```[\w+\-]{0,20}(.*?)```", re.S)
_MAX_OBJECT_TRIES = 64  # bounded starts keep a reply full of "{" linear-ish
_MAX_LENIENT_CHARS = 20_000  # the Python parser is only run on object-sized text
_MAX_DEPTH = 32  # nesting no real reply reaches; keeps the key search's recursion bounded


@dataclass(frozen=True)
class _Object:
    """A decoded object as its (key, value) pairs; duplicate keys are kept, where a dict would
    silently keep the last one and hide a reply that disagrees with itself."""

    pairs: tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class _Found:
    value: object
    start: int
    end: int
    stage: str


# Most explicit first: which stage a JSON-decided score is credited to.
_JSON_STAGES = ("strict_json", "fenced_json", "first_object", "lenient_json")


def _pairs(pairs: list[tuple[str, object]]) -> _Object:
    return _Object(tuple(pairs))


def _strict(text: str) -> object:
    """The JSON value of `text`, or None (an object-shaped candidate is never JSON null)."""
    try:
        return json.loads(text, object_pairs_hook=_pairs)
    except (ValueError, RecursionError):
        return None


_PY_WORDS = re.compile(r"(\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*')|\b(true|false|null|None)\b")
_PY_SPELLING = {"true": "True", "false": "False", "null": "None", "None": "'None'"}


def _pythonise(text: str) -> str:
    """JSON words as Python literals, outside strings. A bare None becomes the string "None": in
    these replies it is the Compression enum written without quotes, whereas JSON null is not."""
    return _PY_WORDS.sub(lambda m: m[1] or _PY_SPELLING[m[2]], text)


def _literal(node: ast.AST) -> object:
    """A restricted `ast.literal_eval`: constants, signed numbers, lists and dicts (as pairs)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str | int | float | bool | None):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _literal(node.operand)
        if isinstance(operand, int | float) and not isinstance(operand, bool):
            return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.Dict) and None not in node.keys:
        keys = [_literal(key) for key in node.keys if key is not None]
        return _Object(tuple((str(k), _literal(v)) for k, v in zip(keys, node.values, strict=True)))
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(item) for item in node.elts]
    raise ValueError("not a literal")


def _decode(candidate: str) -> tuple[_Object, bool] | None:
    """A `{...}` candidate as an object, and whether it needed the lenient second attempt
    (single quotes, trailing commas, Python True/False/None). Never `eval`."""
    value = _strict(candidate)
    if isinstance(value, _Object):
        return value, False
    if len(candidate) > _MAX_LENIENT_CHARS:
        return None
    try:
        value = _literal(ast.parse(_pythonise(candidate), mode="eval").body)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return (value, True) if isinstance(value, _Object) else None


# Quoted strings (one line at most, so a stray apostrophe cannot swallow the reply) and braces.
_BRACE_TOKEN = re.compile(r"\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'|[{}]")


def _balanced_end(text: str, start: int) -> int | None:
    depth = 0
    for token in _BRACE_TOKEN.finditer(text, start):
        if token[0] in "{}":
            depth += 1 if token[0] == "{" else -1
            if depth == 0:
                return token.end()
    return None


def _objects(text: str) -> list[_Found]:
    """Every top-level object in the reply: the whole reply, else each balanced `{...}` block
    that decodes, labelled by where it sits (inside a ``` fence or in prose)."""
    whole = _strict(text)
    if isinstance(whole, _Object | list):
        return [_Found(whole, 0, len(text), "strict_json")]
    fences = [m.span(1) for m in _FENCE.finditer(text)]
    found: list[_Found] = []
    pos = 0
    for _ in range(_MAX_OBJECT_TRIES):
        start = text.find("{", pos)
        if start < 0:
            break
        end = _balanced_end(text, start)
        decoded = None if end is None else _decode(text[start:end])
        if end is None or decoded is None:
            pos = start + 1
            continue
        fenced = any(a <= start and end <= b for a, b in fences)
        stage = "lenient_json" if decoded[1] else "fenced_json" if fenced else "first_object"
        found.append(_Found(decoded[0], start, end, stage))
        pos = end
    return found


@dataclass(frozen=True)
class _Reply:
    text: str  # think-stripped, NFKC-normalised reply
    objects: tuple[_Found, ...]
    prose: str  # the reply minus its JSON objects, markdown emphasis removed

    @classmethod
    def read(cls, response: str) -> _Reply:
        text = unicodedata.normalize("NFKC", strip_think(response)).translate(_TYPOGRAPHY).strip()
        objects = tuple(_objects(text))
        prose = text
        for found in reversed(objects):
            prose = prose[: found.start] + "\n" + prose[found.end :]
        return cls(text, objects, _MARKUP.sub("", prose).strip())


def _norm_key(key: object) -> str:
    """Keys compare case-insensitively and ignore spacing: quality_score = qualityScore."""
    return re.sub(r"[^0-9a-z]", "", str(key).lower())


def _values(value: object, key: str, depth: int = 0) -> Iterator[object]:
    """Every value stored under `key` (normalised), searching nested objects and lists."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, _Object):
        for name, item in value.pairs:
            if _norm_key(name) == key:
                yield item
            else:
                yield from _values(item, key, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _values(item, key, depth + 1)


def _json_values(reply: _Reply, key: str) -> tuple[list[object], str]:
    """Values of `key` in all of the reply's objects, and the most explicit stage holding one."""
    values: list[object] = []
    stages: list[str] = []
    for found in reply.objects:
        mine = list(_values(found.value, _norm_key(key)))
        values += mine
        stages += [found.stage] if mine else []
    return values, min(stages, key=_JSON_STAGES.index, default="")


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------

_NUMBER = r"[-+]?\d{1,12}(?:\.\d{1,12})?"
# "72", "72/100", "72 out of 100", "72%"; the numerator, denominator and percent sign.
_SCALED = rf"(?P<n>{_NUMBER})(?:\s*(?:/|\bout\s+of\b)\s*(?P<d>{_NUMBER})|\s*(?P<pct>%))?"
# Not followed by more digits, nor by a range ("70-80", "70 to 80"): a range is no answer.
_SCALED_END = r"(?!\.?\d)(?!\s*(?:-|\u2013|to\b)\s*\d)"
_SCALED_VALUE = re.compile(rf"[\"']?\s*{_SCALED}\s*[\"']?", re.I)  # on a stripped string


@dataclass(frozen=True)
class _Scale:
    key: str
    low: float
    high: float

    def check(self, number: float, denominator: float | None = None) -> Outcome:
        if denominator is not None and denominator != self.high:
            return SCALE_MISMATCH
        return float(number) if self.low <= number <= self.high else OUT_OF_RANGE

    def scaled(self, match: re.Match[str]) -> Outcome:
        """The outcome of a `_SCALED` match; a percent is a denominator of 100."""
        denominator = 100.0 if match["pct"] else float(match["d"]) if match["d"] else None
        return self.check(float(match["n"]), denominator)

    def value(self, value: object) -> Outcome:
        """A JSON value: a number or a numeric string; booleans, NaN and infinities are not."""
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return INVALID_VALUE
        if isinstance(value, str):
            found = _SCALED_VALUE.fullmatch(value.strip())
            return self.scaled(found) if found else INVALID_VALUE
        if isinstance(value, float) and not math.isfinite(value):
            return INVALID_VALUE
        return self.check(value)  # a huge int compares exactly before any float conversion


def _decide(outcomes: Sequence[Outcome], stage: str) -> ParsedScore | None:
    """One outcome if all agree (value or failure), a conflict if they differ, None if none."""
    distinct = set(outcomes)
    if not distinct:
        return None
    if len(distinct) > 1:
        return ParsedScore(None, CONFLICT)
    (only,) = distinct
    return ParsedScore(None, only) if isinstance(only, str) else ParsedScore(only, stage)


# --------------------------------------------------------------------------------------------
# Score stages
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _key_value_pattern(key: str) -> re.Pattern[str]:
    """`Key: 72/100`, `"key" = "72"`, `quality_score is 72%`, `Quality Score (0-100): 72`."""
    words = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", key)
    body = r"[\s_\-]*".join(re.escape(word) for word in words)
    return re.compile(
        rf"(?<![a-z0-9])[\"']?{body}[\"']?(?![a-z0-9])\s*"
        r"(?:\([^()\n]{0,20}\)\s*)?"
        r"(?:(?:[:=\u2013\u2014]|\bis\b|\bof\b|\bwould\s+be\b)\s*)?"
        r"(?:(?:around|about|approximately|roughly|~)\s*)?"
        rf"(?:[\"']\s*)?{_SCALED}{_SCALED_END}",
        re.I,
    )


def _keyed(text: str, scale: _Scale) -> list[Outcome]:
    return [scale.scaled(m) for m in _key_value_pattern(scale.key).finditer(text)]


def _score_json(reply: _Reply, scale: _Scale) -> ParsedScore | None:
    """The key in the reply's JSON objects. Keyed prose outside them must agree too: "two
    different values for the key in the text" is a conflict wherever they are written."""
    values, stage = _json_values(reply, scale.key)
    if not values:
        return None
    return _decide([scale.value(v) for v in values] + _keyed(reply.prose, scale), stage)


def _score_key_value(reply: _Reply, scale: _Scale) -> ParsedScore | None:
    return _decide(_keyed(reply.prose, scale), "key_value")


_BARE = re.compile(
    rf"(?:(?:final\s+)?(?:score|rating|answer)\s*(?:[:=]\s*)?)?(?:[\"']\s*)?{_SCALED}"
    r"(?:\s*[\"'])?\s*[.!]?",
    re.I,
)


def _score_bare(reply: _Reply, scale: _Scale) -> ParsedScore | None:
    """The whole reply is a number ("72", "72%", "Score: 72/100"). A number inside prose is not
    accepted: "512 pixels wide" is not a score."""
    found = _BARE.fullmatch(reply.prose)
    return _decide([scale.scaled(found)], "bare_number") if found else None


_ABSTAIN = re.compile(
    r"\b(?:cannot|can\s*not|can't|unable\s+to|not\s+able\s+to|impossible\s+to)\s+(?:\w+\s+)?"
    r"(?:assess|evaluate|rate|score|judge|determine|tell|provide)\b|\bI'm\s+sorry\b",
    re.I,
)


def _abstains(reply: _Reply, _context: object) -> ParsedScore | None:
    """A refusal stops the loose stage below from reading a guess out of it."""
    return ParsedScore(None, NO_ANSWER) if _ABSTAIN.search(reply.prose) else None


_FRACTION = re.compile(
    rf"(?<![\w./])(?P<n>{_NUMBER})\s*(?:/|\bout\s+of\b)\s*(?P<d>{_NUMBER}){_SCALED_END}(?!/)",
    re.I,
)


def _score_fraction(reply: _Reply, scale: _Scale) -> ParsedScore | None:
    """ "I'd rate it 72/100." Only fractions over the scale's top count: "1/2 of the face"."""
    outcomes = [
        scale.check(float(m["n"]))
        for m in _FRACTION.finditer(reply.prose)
        if float(m["d"]) == scale.high
    ]
    return _decide(outcomes, "fraction")


ScoreStage = Callable[[_Reply, _Scale], ParsedScore | None]
_SCORE_STAGES: tuple[ScoreStage, ...] = (
    _score_json,
    _score_key_value,
    _score_bare,
    _abstains,
    _score_fraction,
)


def _score(reply: _Reply, scale: _Scale) -> ParsedScore:
    if not reply.text:
        return ParsedScore(None, NO_ANSWER)
    for stage in _SCORE_STAGES:
        result = stage(reply, scale)
        if result is not None:
            return result
    # JSON was given but without the key: the reply followed the format, not the schema.
    return ParsedScore(None, MISSING_KEY if reply.objects else NO_ANSWER)


def parse_score(
    text: str, key: str = "Quality Score", *, low: float = 0, high: float = 100
) -> ParsedScore:
    """The score under `key`, e.g. ParsedScore(72.0, "strict_json") for '{"Quality Score": 72}'.

    Cascade: whole reply is JSON → ```json fence → first balanced {...} block (then a lenient
    Python-literal reading: single quotes, trailing commas) → `Key: 72/100`-style prose → whole
    reply is a number → (refusal check) → "72/100" in prose. Keys match ignoring case, spaces and
    underscores. Values are not rescaled (see the module docstring); outside [low, high] is
    "out_of_range", a JSON reply without the key "missing_key", disagreeing values "conflict".
    """
    return _score(_Reply.read(text), _Scale(key, low, high))


# --------------------------------------------------------------------------------------------
# Classification attributes
# --------------------------------------------------------------------------------------------


def _norm_value(raw: str) -> str:
    return re.sub(r"[\s_\-]+", " ", raw.lower()).strip(" .!\"'")


def _degrees(
    degrees: Mapping[str, tuple[str, ...]], words: Sequence[str], template: str
) -> dict[str, str]:
    """Synonyms "<adverb> <word>" for each degree, e.g. "slightly blurry" → "Slightly Blurred"."""
    return {
        f"{adverb} {word}": template.format(degree)
        for degree, adverbs in degrees.items()
        for adverb in adverbs
        for word in words
    }


_MILD = ("slightly", "mildly", "a bit", "a little", "somewhat")
_VERY = ("very", "extremely", "severely", "strongly", "highly", "heavily")

# Whole-value synonyms only (never substrings): "low" is Resolution's Low, never "Very Low", and
# "compression" says nothing about resolution. Ambiguous words ("blurry", "dark", "high"
# compression) are left unmapped on purpose.
ATTRIBUTE_SYNONYMS: dict[str, dict[str, str]] = {
    "Sharpness": {
        **dict.fromkeys(
            ("sharp", "crisp", "in focus", "not blurred", "not blurry", "no blur"), "Clear"
        ),
        **_degrees(
            {"Slightly": _MILD, "Moderately": ("moderately",), "Strongly": _VERY},
            ("blurred", "blurry"),
            "{} Blurred",
        ),
        **dict.fromkeys(("slight blur", "mild blur", "minor blur"), "Slightly Blurred"),
        **dict.fromkeys(("moderate blur", "medium blur"), "Moderately Blurred"),
        **dict.fromkeys(("strong blur", "heavy blur", "severe blur"), "Strongly Blurred"),
    },
    "Resolution": {
        **{
            f"{level.lower()} {suffix}": level
            for level in ("High", "Medium", "Low", "Very Low")
            for suffix in ("resolution", "res")
        },
        **dict.fromkeys(("very high", "very high resolution", "hd", "high definition"), "High"),
        **dict.fromkeys(("moderate", "moderate resolution"), "Medium"),
        **dict.fromkeys(("extremely low", "extremely low resolution"), "Very Low"),
    },
    "Lighting": {
        **dict.fromkeys(
            (
                "well balanced",
                "balanced lighting",
                "normal",
                "good",
                "even",
                "evenly lit",
                "well lit",
                "well exposed",
                "properly exposed",
                "correctly exposed",
            ),
            "Balanced",
        ),
        **_degrees(
            {"Slightly": _MILD, "Moderately": ("moderately",), "Very": _VERY},
            ("dark", "dim", "underexposed", "under exposed"),
            "{} Dark",
        ),
        **_degrees(
            {"Slightly": _MILD, "Moderately": ("moderately",), "Very": _VERY},
            ("bright", "overexposed", "over exposed"),
            "{} Bright",
        ),
    },
    "Compression": {
        **dict.fromkeys(
            (
                "no",
                "no compression",
                "no artifacts",
                "no compression artifacts",
                "uncompressed",
                "lossless",
            ),
            "None",
        ),
        **dict.fromkeys(
            (
                "minor",
                "slight",
                "mild",
                "light",
                "minimal compression",
                "minor compression",
                "slight compression",
                "mild compression",
                "light compression",
            ),
            "Minimal",
        ),
        **dict.fromkeys(("moderate compression", "moderate artifacts"), "Moderate"),
        **dict.fromkeys(
            ("heavy", "strong", "severe compression", "heavy compression", "strong compression"),
            "Severe",
        ),
    },
}


def map_attribute(attribute: str, raw: str) -> str | None:
    """The exact enum for a raw label: whole-value match ignoring case, spaces, "_" and "-",
    then the synonym table; None if neither matches."""
    wanted = _norm_value(raw)
    for level in ATTRIBUTE_ENUMS.get(attribute, ()):
        if _norm_value(level) == wanted:
            return level
    return ATTRIBUTE_SYNONYMS.get(attribute, {}).get(wanted)


def _raw_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float) or value is None:
        return json.dumps(value)
    return "<object>" if isinstance(value, _Object) else "<list>"


# A prose label "Sharpness: Slightly Blurred (motion)" up to the end of its clause.
_EXPLANATION = re.compile(r"(?:[(\[]|\s[-\u2013\u2014]\s|\.\s|:).*$", re.S)


def _prose_labels(prose: str, attribute: str) -> list[str]:
    pattern = (
        rf"(?<![a-z0-9])[\"']?{re.escape(attribute)}[\"']?\s*"
        r"(?:\([^()\n]{0,80}\)\s*)?"  # an echoed "(Clear | Slightly Blurred | ...)"
        r"[:=]\s*[\"']?(?P<v>[^\n,;\"'{}]*)"
    )
    found = (m["v"] for m in re.finditer(pattern, prose, re.I))
    return [label for label in (_EXPLANATION.sub("", v).strip() for v in found) if label]


def _attribute(reply: _Reply, attribute: str) -> tuple[str | None, list[str]]:
    """The attribute's enum (or None) and the raw labels it was read from."""
    values, _ = _json_values(reply, attribute)
    raws = [_raw_text(v) for v in values] + _prose_labels(reply.prose, attribute)
    mapped = {map_attribute(attribute, raw) for raw in raws}
    return (mapped.pop() if len(mapped) == 1 else None), list(dict.fromkeys(raws))


def _attributes(reply: _Reply) -> tuple[dict[str, str], dict[str, str]]:
    attributes: dict[str, str] = {}
    failures: dict[str, str] = {}
    for attribute in ATTRIBUTE_ENUMS:
        level, raws = _attribute(reply, attribute)
        if level is not None:
            attributes[attribute] = level
        elif raws:
            failures[attribute] = " | ".join(raws)
    return attributes, failures


def parse_classification(text: str) -> ParsedScore:
    """The classification prompt: "Quality Score" as in `parse_score`, plus Sharpness, Resolution,
    Lighting and Compression mapped to exact enums (see `map_attribute`). An unmappable or
    self-contradicting attribute goes to `attribute_failures`; the score can still be ok."""
    reply = _Reply.read(text)
    scored = _score(reply, _Scale("Quality Score", 0, 100))
    attributes, failures = _attributes(reply)
    return ParsedScore(scored.score, scored.stage, attributes, failures)


# --------------------------------------------------------------------------------------------
# Standard-guided levels
# --------------------------------------------------------------------------------------------

_LEVEL_LABEL = re.compile(
    r"(?:(?:final\s+|quality\s+)?(?:level|rating|score|answer|grade)\s*(?:is\b\s*)?(?:[:=]\s*)?)?",
    re.I,
)
# Every optional token carries its own trailing spaces: adjacent optional \s* runs would make
# a reply full of spaces backtrack polynomially.
_SEP = r"\s*(?:[-\u2013\u2014:,.(\[]\s*)?"
_WORD = r"(?P<w>[a-z]+(?:[ \-]+[a-z]+)*)"
_DIGIT = r"(?P<d>\d{1,9})(?:\s*/\s*(?P<den>\d{1,9}))?"
_CLOSE = r"\s*(?:[)\]]\s*)?(?:[.!]\s*)?"
_DIGIT_FIRST = re.compile(rf"{_DIGIT}(?:{_SEP}{_WORD})?{_CLOSE}", re.I)
_WORD_FIRST = re.compile(rf"{_WORD}(?:{_SEP}{_DIGIT})?{_CLOSE}", re.I)
_LEVEL_MARKER = re.compile(
    rf"\b(?:level|rating|score|grade|answer)\s*(?:(?:is|of)\b\s*)?(?:[:=]\s*)?{_DIGIT}(?!\.?\d)",
    re.I,
)
# "5 (Good)" inside prose; counted only when the word is a level word ("2 (two) eyes" is not).
_LEVEL_PAIR = re.compile(rf"(?<![\w.]){_DIGIT}\s*[(\[]\s*{_WORD}\s*[)\]]", re.I)
_LEVEL_KEYS = frozenset({"level", "qualitylevel", "rating", "score", "qualityscore", "answer"})


@dataclass(frozen=True)
class _Levels:
    k: int
    words: dict[str, int]  # normalised word → level

    def digit(self, match: re.Match[str]) -> ParsedScore:
        """A digit with an optional "/K" and word: the word, if it is a level word, must agree."""
        level = int(match["d"])
        if match["den"] is not None and int(match["den"]) != self.k:
            return ParsedScore(None, SCALE_MISMATCH)
        if not 1 <= level <= self.k:
            return ParsedScore(None, OUT_OF_RANGE)
        named = self.words.get(_norm_value(match.groupdict().get("w") or ""))
        if named is not None and named != level:
            return ParsedScore(None, CONFLICT)
        return ParsedScore(float(level), "level_digit")

    def whole(self, text: str) -> ParsedScore | None:
        """The whole answer is a level: "5", "5 (Good)", "Level: 5", "Good", "Level: Good"."""
        label = _LEVEL_LABEL.match(text)
        start = label.end() if label else 0
        found = _DIGIT_FIRST.fullmatch(text, start)
        if found:
            return self.digit(found)
        found = _WORD_FIRST.fullmatch(text, start)
        if found is None:
            return None
        if found["d"] is not None:
            return self.digit(found)
        level = self.words.get(_norm_value(found["w"]))
        return None if level is None else ParsedScore(float(level), "level_word")


def _level_json(reply: _Reply, levels: _Levels) -> ParsedScore | None:
    outcomes: list[Outcome] = []
    for found in reply.objects:
        for key in _LEVEL_KEYS:
            for value in _values(found.value, key):
                readable = isinstance(value, int | str) and not isinstance(value, bool)
                parsed = levels.whole(str(value)) if readable else None
                if parsed is None:
                    outcomes.append(INVALID_VALUE)
                else:
                    outcomes.append(parsed.score if parsed.score is not None else parsed.stage)
    return _decide(outcomes, "level_json")


def _level_whole(reply: _Reply, levels: _Levels) -> ParsedScore | None:
    return levels.whole(reply.prose)


def _level_marker(reply: _Reply, levels: _Levels) -> ParsedScore | None:
    """ "I would rate it Level 5 because …", "I'd say 5 (Good).": every marked digit in the prose
    must agree."""
    pairs = [m for m in _LEVEL_PAIR.finditer(reply.prose) if _norm_value(m["w"]) in levels.words]
    outcomes: list[Outcome] = []
    for found in [*_LEVEL_MARKER.finditer(reply.prose), *pairs]:
        parsed = levels.digit(found)
        outcomes.append(parsed.score if parsed.score is not None else parsed.stage)
    return _decide(outcomes, "level_marker")


LevelStage = Callable[[_Reply, _Levels], ParsedScore | None]
_LEVEL_STAGES: tuple[LevelStage, ...] = (
    _level_json,
    _level_whole,
    _abstains,
    _level_marker,
)


def parse_level(text: str, k: int = 7, words: Sequence[str] | None = None) -> ParsedScore:
    """The level 1..k of a standard-guided answer, e.g. ParsedScore(5.0, "level_digit") for
    "5 (Good)". `words[i]` names level i + 1; by default the LLM-IQA words when k = 7, else none.

    Cascade: JSON {"level": ...} → whole answer is a digit and/or an exact level word, optionally
    after "Level:" → (refusal check) → "Level 5" in prose. A digit outside 1..k is
    "out_of_range"; a digit whose word names another level ("5 (Poor)") is a "conflict".
    """
    if words is None:
        words = LEVEL_WORDS if k == len(LEVEL_WORDS) else ()
    if words and len(words) != k:
        raise ValueError(f"{len(words)} level words for k = {k}")
    levels = _Levels(k, {_norm_value(word): i for i, word in enumerate(words, start=1)})
    reply = _Reply.read(text)
    if not reply.text:
        return ParsedScore(None, NO_ANSWER)
    for stage in _LEVEL_STAGES:
        result = stage(reply, levels)
        if result is not None:
            return result
    return ParsedScore(None, NO_ANSWER)
