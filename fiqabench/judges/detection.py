"""Answer extraction for the mix-degradation detection prompt (protocols.md §6).

The prompt asks for STRICT JSON: a 0-100 `quality_score` and five booleans `has_blur`,
`has_noise`, `has_low_resolution`, `has_compression`, `has_poor_lighting`. The reply is read with
the JSON machinery of `fiqabench.judges.scores` (think blocks stripped, whole reply → ```json
fence → first balanced {...} → lenient single-quote/trailing-comma reading), plus `key: value`
lines in the prose for replies whose JSON does not decode.

Rules, as for every parser here: nothing is guessed. All five flags must be present with a
readable value, or the flags are None (a missing flag is never taken as false); every value the
reply gives for a key, in any object or prose line, must agree. Keys match exactly after case,
spaces, "-" and "_" are dropped (`hasLowResolution` = `has_low_resolution`), never by substring:
"compression" must not be read as low resolution because it contains "res".

The quality score is optional: it is parsed like `parse_score(text, "quality_score")` and its
stage (or the reason it is None) is kept in `score_stage`; a bad score never fails the flags.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from fiqabench.judges.scores import (
    _JSON_STAGES,
    CONFLICT,
    INVALID_VALUE,
    NO_ANSWER,
    _norm_key,
    _raw_text,
    _Reply,
    _Scale,
    _score,
    _values,
)
from fiqabench.tasks.mixdeg import ARTIFACTS, FLAG_KEYS

DETECTION_VERSION = "detection-v1"

MISSING_KEYS = "missing_keys"
KEY_VALUE = "key_value"  # flags read from `has_blur: true` lines outside any decodable JSON

SCORE_KEY = "quality_score"

_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


@dataclass(frozen=True)
class ParsedDetection:
    """The five flags (keyed by artifact enum) and the quality score of a detection reply.

    `flags` None is a parse failure; `stage` then names it (`no_answer`, `missing_keys`,
    `invalid_value`, `conflict`), `missing` lists absent prompt keys and `reason` explains.
    `score_stage` is the score's stage when `quality_score` is set, else why it is None.
    """

    flags: dict[str, bool] | None = field(hash=False)
    quality_score: float | None
    stage: str
    missing: tuple[str, ...] = ()
    reason: str = ""
    score_stage: str = NO_ANSWER

    @property
    def ok(self) -> bool:
        return self.flags is not None


def flag_value(value: object) -> bool | None:
    """A JSON or prose value as a boolean: true/false, yes/no (any case, as strings too), 1/0
    (integers or strings). Anything else (None, 2, 1.0, "maybe") is None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return bool(value) if value in (0, 1) else None
    if isinstance(value, str):
        word = value.strip().lower()
        return True if word in _TRUE else False if word in _FALSE else None
    return None


@lru_cache(maxsize=len(ARTIFACTS))
def _prose_pattern(key: str) -> re.Pattern[str]:
    """`has_blur: true`, `"Has Blur" = "yes"`, `hasBlur: 0`; the value is one token, so an
    echoed `"has_blur": <true or false>` or `true/false` gives nothing."""
    body = r"[\s_\-]*".join(re.escape(word) for word in key.split("_"))
    return re.compile(
        rf"(?<!\w)[\"']?{body}[\"']?\s*[:=]\s*[\"']?(?P<v>[+\-]?\w+(?:\.\d+)?)(?![\w/])", re.I
    )


@dataclass(frozen=True)
class _KeyValues:
    """Every value the reply gives for one key: from JSON objects (with their stages) and prose."""

    key: str
    values: tuple[object, ...]
    json_stages: tuple[str, ...]

    @classmethod
    def read(cls, reply: _Reply, key: str) -> _KeyValues:
        values: list[object] = []
        stages: list[str] = []
        for found in reply.objects:
            mine = list(_values(found.value, _norm_key(key)))
            values += mine
            stages += [found.stage] if mine else []
        values += [m["v"] for m in _prose_pattern(key).finditer(reply.prose)]
        return cls(key, tuple(values), tuple(stages))

    def outcome(self) -> bool | str:
        """The flag, or the failure: `missing_keys`, `invalid_value`, `conflict`."""
        if not self.values:
            return MISSING_KEYS
        read = [flag_value(value) for value in self.values]
        flags = {flag for flag in read if flag is not None}
        if len(flags) < len(set(read)):
            return INVALID_VALUE
        return flags.pop() if len(flags) == 1 else CONFLICT

    def describe(self, outcome: str) -> str:
        raws = " vs ".join(dict.fromkeys(_raw_text(value) for value in self.values))
        kind = "not a boolean" if outcome == INVALID_VALUE else "values disagree"
        return f"{self.key}: {raws} ({kind})"


# A failing key decides the stage in this order: a reply that contradicts itself is worse than
# one with an unreadable value, which is worse than one that left a key out.
_FAILURE_ORDER = (CONFLICT, INVALID_VALUE, MISSING_KEYS)


def _flags_stage(keys: Mapping[str, _KeyValues]) -> str:
    """The most explicit JSON stage if every key came from JSON, else `key_value`."""
    if not all(values.json_stages for values in keys.values()):
        return KEY_VALUE
    stages = (stage for values in keys.values() for stage in values.json_stages)
    return min(stages, key=_JSON_STAGES.index)


def parse_detection(text: str) -> ParsedDetection:
    """The flags and quality score of a detection reply, e.g. for '{"quality_score": 40,
    "has_blur": true, "has_noise": false, ...}' ParsedDetection({"blur": True, ...}, 40.0,
    "strict_json"). See the module docstring for the rules."""
    reply = _Reply.read(text)
    scored = _score(reply, _Scale(SCORE_KEY, 0, 100))
    keys: dict[str, _KeyValues] = {a: _KeyValues.read(reply, FLAG_KEYS[a]) for a in ARTIFACTS}
    outcomes = {artifact: values.outcome() for artifact, values in keys.items()}
    failed = {a: outcome for a, outcome in outcomes.items() if isinstance(outcome, str)}
    if not failed:
        flags = {artifact: bool(outcome) for artifact, outcome in outcomes.items()}
        return ParsedDetection(flags, scored.score, _flags_stage(keys), score_stage=scored.stage)
    missing = tuple(keys[a].key for a, outcome in failed.items() if outcome == MISSING_KEYS)
    if len(missing) == len(ARTIFACTS) and not reply.objects and not scored.ok:
        # Nothing follows the format (empty, refusal, free prose): no answer rather than a
        # reply that left keys out.
        reason = "no JSON object, flag or quality score in the reply"
        return ParsedDetection(None, None, NO_ANSWER, missing, reason, scored.stage)
    problems = [f"missing {', '.join(missing)}"] if missing else []
    problems += [keys[a].describe(o) for a, o in failed.items() if o != MISSING_KEYS]
    stage = min(failed.values(), key=_FAILURE_ORDER.index)
    return ParsedDetection(None, scored.score, stage, missing, "; ".join(problems), scored.stage)
