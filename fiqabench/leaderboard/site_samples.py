"""Rows of the per-sample browser: question, response, parsed answer and verdict of a record."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fiqabench.benchmark.schema import QAItem, Record
from fiqabench.judges.judging import EXTRACTED, EXTRACTOR_NONE, JUDGE_UNPARSEABLE, JUDGED
from fiqabench.tasks.base import Sample

PAGE_SIZE = 200  # records per browser page: a page stays well under a megabyte
MAX_TEXT = 4000  # characters of a response or parsed answer shown before it is cut


@dataclass(frozen=True)
class Verdict:
    kind: str  # CSS class and filter value: correct, wrong, scored, unparsed, unscored, error
    text: str


@dataclass(frozen=True)
class SampleRow:
    sample_id: str
    thumb: str | None  # path from the site root
    question: str | None = None
    options: list[tuple[str, str]] = field(default_factory=list)  # (letter, text)
    reference: str | None = None
    facts: list[tuple[str, str]] = field(default_factory=list)
    response: str | None = None
    response_cut: int = 0  # characters not shown
    parsed: str = ""
    parse_stage: str | None = None
    verdict: Verdict = Verdict("unscored", "")
    error: str | None = None


def _number(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else str(value)


def verdict(record: Record) -> Verdict:
    """What became of the record: the status, then correctness and score when scored."""
    if record.status == "error":
        return Verdict("error", "error (not counted as wrong)")
    if record.status == "parse_fail":
        if record.parse_stage == EXTRACTOR_NONE:
            return Verdict("unparsed", "unparsed (LLM extractor found no answer)")
        return Verdict("unparsed", "unparsed")
    if record.status == "unscored":
        if record.parse_stage == JUDGE_UNPARSEABLE:  # judged, but no round gave a valid score
            return Verdict("unscored", "judge gave no valid score")
        return Verdict("unscored", "unscored (needs a judge)")
    judged = record.parse_stage == JUDGED
    parts: list[str] = []
    kind = "scored"
    if record.correct is not None:
        kind = "correct" if record.correct else "wrong"
        parts.append(kind)
    if record.score is not None:
        parts.append(f"{'judge score' if judged else 'score'} {_number(record.score)}")
    text = " · ".join(parts) or "ok"
    if record.parse_stage == EXTRACTED:  # the rules could not read it; the extractor did
        text += " (read by LLM extractor)"
    return Verdict(kind, text)


def _cut(text: str) -> tuple[str, int]:
    return (text, 0) if len(text) <= MAX_TEXT else (text[:MAX_TEXT], len(text) - MAX_TEXT)


def show_json(value: Any) -> str:
    """A parsed answer as compact JSON (keys sorted), cut to MAX_TEXT characters."""
    if value is None:
        return ""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    shown, cut = _cut(text)
    return shown + (f" … ({cut} more characters)" if cut else "")


def _answer(item: QAItem) -> str:
    if isinstance(item.answer, bool):
        return "true" if item.answer else "false"
    if isinstance(item.answer, list):
        return ", ".join(item.answer)
    return item.answer


def _qa_fields(item: QAItem) -> dict[str, Any]:
    facts = [
        ("type", item.type),
        ("scope", item.scope),
        ("dimension", "/".join(part for part in (item.dimension, item.subdimension) if part)),
        ("source", item.source),
    ]
    return {
        "question": item.question,
        "options": list(zip(item.letters, item.options or [], strict=True)),
        "reference": _answer(item),
        "facts": [(key, value) for key, value in facts if value],
    }


def _meta_facts(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    shown = [
        (str(key), value if isinstance(value, str) else show_json(value))
        for key, value in meta.items()
    ]
    return [(key, value) for key, value in shown if value != ""]


def sample_row(record: Record, item: Sample | None, thumb: str | None) -> SampleRow:
    """One record as the browser shows it; the question comes from the task's item when known."""
    fields: dict[str, Any] = {"facts": _meta_facts(record.meta)}
    if item is not None and isinstance(item.item, QAItem):
        fields = _qa_fields(item.item)
    response, cut = _cut(record.response) if record.response is not None else (None, 0)
    return SampleRow(
        sample_id=record.sample_id,
        thumb=thumb,
        response=response,
        response_cut=cut,
        parsed=show_json(record.parsed),
        parse_stage=record.parse_stage,
        verdict=verdict(record),
        error=record.error,
        **fields,
    )


def pages(count: int, size: int = PAGE_SIZE) -> list[range]:
    """Index ranges of the browser pages of `count` records (one empty page when none)."""
    return [range(start, min(start + size, count)) for start in range(0, count, size)] or [range(0)]


def verdict_counts(rows: Sequence[SampleRow]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.verdict.kind] = counts.get(row.verdict.kind, 0) + 1
    return counts
