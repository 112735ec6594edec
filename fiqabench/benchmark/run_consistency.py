"""Score agreement between two runs of scalar tasks (`fiqabench consistency RUN_A RUN_B`)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from pydantic import BaseModel

from fiqabench.benchmark.consistency import PromptAgreement, cross_prompt
from fiqabench.benchmark.results import read_samples


class RunAgreement(BaseModel):
    task: str
    variant_a: str
    variant_b: str
    agreement: PromptAgreement


def scalar_scores(run: Path) -> dict[tuple[str, str], dict[str, float]]:
    """Scores of a run's scalar records by (task, variant), keyed by image id."""
    scores: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for record in read_samples(run):
        variant = record.meta.get("variant")
        if variant and record.status == "ok" and record.score is not None:
            scores[(record.task, variant)][record.meta["image_id"]] = record.score
    return dict(scores)


def compare_runs(run_a: Path, run_b: Path) -> list[RunAgreement]:
    """Every variant of B against every variant of A, for each scalar task both ran."""
    scores_a, scores_b = scalar_scores(run_a), scalar_scores(run_b)
    rows = []
    for (task, variant_a), base in sorted(scores_a.items()):
        for (task_b, variant_b), other in sorted(scores_b.items()):
            if task_b == task:
                agreement = cross_prompt({"a": base, "b": other}, base="a")["b"]
                rows.append(
                    RunAgreement(
                        task=task, variant_a=variant_a, variant_b=variant_b, agreement=agreement
                    )
                )
    return rows
