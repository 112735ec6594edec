"""Where reported numbers differ from recomputed ones: a field-by-field comparison of JSON values.

Counts and other integers must be equal; floats may differ by 1e-9 relative (1e-12 absolute
near zero), because re-scoring on another machine or library build can change the last bits
of a fitted curve; a null and a NaN both mean "no value" and are equal to each other.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fiqabench.benchmark.metrics import numbers_match


class _Absent:
    """A key present on one side only (distinct from any JSON value, null included)."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT = _Absent()


@dataclass(frozen=True)
class MetricDiff:
    """One reported value that re-scoring does not reproduce."""

    entry: str  # a results entry ("mini-qa") or a sample ("mini-qa/mqa-0001")
    field: str  # where in it: "metrics.accuracy", "ci95.accuracy[0]", "correct"
    reported: Any
    recomputed: Any


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same(reported: Any, recomputed: Any) -> bool:
    """Equal as reported numbers must be: see the module docstring."""
    if _missing(reported) or _missing(recomputed):
        return _missing(reported) and _missing(recomputed)
    if _number(reported) and _number(recomputed):
        if isinstance(reported, int) and isinstance(recomputed, int):
            return reported == recomputed
        return numbers_match(reported, recomputed)
    if type(reported) is not type(recomputed):
        return False
    return bool(reported == recomputed)


def differences(reported: Any, recomputed: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(path, reported, recomputed) for every leaf where the two JSON values differ."""
    if isinstance(reported, dict) and isinstance(recomputed, dict):
        for key in dict.fromkeys([*reported, *recomputed]):
            where = f"{path}.{key}" if path else str(key)
            yield from differences(reported.get(key, ABSENT), recomputed.get(key, ABSENT), where)
    elif (
        isinstance(reported, list)
        and isinstance(recomputed, list)
        and len(reported) == len(recomputed)
    ):
        for index, (left, right) in enumerate(zip(reported, recomputed, strict=True)):
            yield from differences(left, right, f"{path}[{index}]")
    elif not same(reported, recomputed):
        yield path, reported, recomputed


def display(value: Any, width: int = 48) -> str:
    """A value for a diff table: JSON, ASCII-escaped (no terminal codes), shortened."""
    if value is ABSENT:
        return repr(ABSENT)
    text = json.dumps(value, ensure_ascii=True, allow_nan=True, default=str)
    return text if len(text) <= width else f"{text[: width - 3]}..."
