"""How well an LLM judge agrees with human labels on the open-ended rubric (0/1/2)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich import box
from rich.console import Console
from rich.table import Table

from fiqabench.benchmark.images import file_sha256
from fiqabench.benchmark.results import atomic_write_text, read_jsonl
from fiqabench.benchmark.schema import ModelIdentity
from fiqabench.errors import UserError, describe_validation_error
from fiqabench.judges.judging import mean_valid
from fiqabench.judges.llm import JUDGE_SCORES, OPEN_TEMPLATE, JudgeCall, LLMJudge, parse_judge_score

CALIBRATION_LABELS = Path(__file__).parent / "calibration" / "mini-open.jsonl"


class LabelledAnswer(BaseModel):
    """A line of a labels file: an answer to an open question and the score a human gave it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    question: str
    reference: str
    response: str
    label: int = Field(ge=min(JUDGE_SCORES), le=max(JUDGE_SCORES))
    note: str = ""  # why the label is what it is


class ItemVerdict(BaseModel):
    id: str
    label: int
    judge_scores: list[int | None]
    judge_label: int | None
    error: str | None = None


class AgreementReport(BaseModel):
    labels_file: str
    labels_sha256: str
    judge: ModelIdentity
    template_sha256: str
    rounds: int
    temperature: float
    n_items: int
    n_compared: int = Field(description="items with a human label and a judge label")
    n_unscored: int = Field(description="items where no judge reply gave a valid score")
    n_errors: int = Field(description="items whose judge calls failed; rerun to retry them")
    accuracy: float | None
    cohen_kappa: float | None
    krippendorff_alpha_ordinal: float | None
    mean_abs_error: float | None = Field(description="|mean judge score - label|, on 0-2")
    confusion: list[list[int]] = Field(description="rows: human label 0-2; columns: judge label")
    items: list[ItemVerdict]


def read_labels(path: Path) -> list[LabelledAnswer]:
    items: list[LabelledAnswer] = []
    seen: set[str] = set()
    for number, document in read_jsonl(path):
        try:
            item = LabelledAnswer.model_validate(document)
        except ValidationError as exc:
            raise UserError(describe_validation_error(exc), path=path, line=number) from exc
        if item.id in seen:
            raise UserError(f"duplicate id '{item.id}'", path=path, line=number)
        seen.add(item.id)
        items.append(item)
    if not items:
        raise UserError("no labelled answers", path=path)
    return items


def judge_agreement(
    judge: LLMJudge, items: Sequence[LabelledAnswer], labels_path: Path
) -> AgreementReport:
    calls = [
        JudgeCall(
            item.id,
            OPEN_TEMPLATE,
            {"question": item.question, "reference": item.reference, "response": item.response},
        )
        for item in items
    ]
    replies = judge.ask("judge-agreement", calls)
    verdicts: list[ItemVerdict] = []
    means: list[float] = []
    for item, rounds in zip(items, replies, strict=True):
        failed = next((r.error for r in rounds if not r.ok), None)
        scores = [parse_judge_score(r.text or "") if r.ok else None for r in rounds]
        mean = mean_valid(scores) if failed is None else None
        judge_label = math.floor(mean + 0.5) if mean is not None else None
        verdicts.append(
            ItemVerdict(
                id=item.id,
                label=item.label,
                judge_scores=scores,
                judge_label=judge_label,
                error=failed,
            )
        )
        if mean is not None:
            means.append(abs(mean - item.label))
    pairs = [(v.label, v.judge_label) for v in verdicts if v.judge_label is not None]
    human = [h for h, _ in pairs]
    machine = [j for _, j in pairs if j is not None]
    confusion = [[0] * len(JUDGE_SCORES) for _ in JUDGE_SCORES]
    for h, j in zip(human, machine, strict=True):
        confusion[h][j] += 1
    return AgreementReport(
        labels_file=str(labels_path),
        labels_sha256=file_sha256(labels_path),
        judge=judge.runner.identity,
        template_sha256=judge.template(OPEN_TEMPLATE).sha256,
        rounds=judge.rounds,
        temperature=judge.temperature,
        n_items=len(items),
        n_compared=len(pairs),
        n_unscored=sum(v.judge_label is None and v.error is None for v in verdicts),
        n_errors=sum(v.error is not None for v in verdicts),
        accuracy=sum(h == j for h, j in pairs) / len(pairs) if pairs else None,
        cohen_kappa=cohen_kappa(human, machine),
        krippendorff_alpha_ordinal=krippendorff_alpha(human, machine),
        mean_abs_error=sum(means) / len(means) if means else None,
        confusion=confusion,
        items=verdicts,
    )


def cohen_kappa(a: Sequence[int], b: Sequence[int]) -> float | None:
    """Cohen's kappa of two raters over the same items; None when chance agreement is 1."""
    if len(a) != len(b):
        raise ValueError("raters must label the same items")
    if not a:
        return None
    categories = sorted(set(a) | set(b))
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
    expected = sum((a.count(c) / len(a)) * (b.count(c) / len(b)) for c in categories)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def krippendorff_alpha(a: Sequence[int], b: Sequence[int]) -> float | None:
    """Krippendorff's alpha, ordinal, for two raters; None when it is undefined."""
    import krippendorff

    if len(set(a) | set(b)) < 2:
        return None  # one value throughout: no disagreement to measure
    data = np.array([a, b], dtype=float)
    value = krippendorff.alpha(
        reliability_data=data, level_of_measurement="ordinal", value_domain=list(JUDGE_SCORES)
    )
    return None if math.isnan(value) else float(value)


def print_agreement(report: AgreementReport, out: Console) -> None:
    counted = f"{report.n_compared}/{report.n_items} items"
    table = Table(title=f"judge agreement · {report.judge.alias} · {counted}", box=box.SIMPLE_HEAD)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in (
        ("accuracy", report.accuracy),
        ("Cohen's kappa", report.cohen_kappa),
        ("Krippendorff's alpha (ordinal)", report.krippendorff_alpha_ordinal),
        ("mean |score - label|", report.mean_abs_error),
    ):
        table.add_row(name, "—" if value is None else f"{value:.3f}")
    table.add_row("unscored (no valid reply)", str(report.n_unscored))
    table.add_row("failed calls (rerun to retry)", str(report.n_errors))
    out.print(table)
    grid = Table(title="confusion (rows: human, columns: judge)", box=box.SIMPLE_HEAD)
    grid.add_column("")
    for score in JUDGE_SCORES:
        grid.add_column(str(score), justify="right")
    for score, row in zip(JUDGE_SCORES, report.confusion, strict=True):
        grid.add_row(str(score), *(str(n) for n in row))
    out.print(grid)


def write_agreement(report: AgreementReport, path: Path) -> None:
    atomic_write_text(path, report.model_dump_json(indent=2) + "\n")
