"""What the site knows about metrics: which to headline, which way is better, how to print them."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from fiqabench.benchmark.compare_stats import metric_direction
from fiqabench.benchmark.results import TaskResults

Kind = Literal["qa", "describe", "scalar", "detection", "other"]
Better = Literal["higher", "lower"] | None


def entry_kind(entry: TaskResults) -> Kind:
    """The kind of a result entry, told by the metrics only that kind reports."""
    if "accuracy" in entry.metrics:
        return "qa"
    if "describe_score" in entry.metrics:
        return "describe"
    if "coverage" in entry.metrics:
        return "scalar"
    if "hallucination_rate" in entry.metrics:
        return "detection"
    return "other"


@dataclass(frozen=True)
class MetricInfo:
    name: str
    label: str
    better: Better
    percent: bool

    @property
    def arrow(self) -> str:
        return {"higher": "↑", "lower": "↓", None: ""}[self.better]


# Labels of the metrics the site headlines or tabulates; others show under their own name.
_LABELS = {
    "accuracy": "accuracy",
    "accuracy_single": "single",
    "accuracy_multi": "multi",
    "accuracy_tf": "true/false",
    "open_score": "open (judge score)",
    "describe_score": "description score",
    "describe_completeness": "completeness",
    "describe_precision": "precision",
    "describe_relevance": "relevance",
    "parse_failure_rate": "unparsed",
    "error_rate": "errors",
    "coverage": "coverage",
    "iso_edc_pauc_05": "EDC pAUC@5%",
    "iso_edc_pauc_20": "EDC pAUC@20%",
    "iso_edc_auc": "EDC AUC",
    "vlm4fiqa_evr_pauc_20": "EvR pAUC@20%",
    "vlm4fiqa_evr_auc": "EvR AUC",
    "crfiqa_erc_auc_fmr1e-3": "ERC AUC@FMR1e-3",
    "srocc": "SROCC",
    "krcc": "KRCC",
    "plcc": "PLCC",
    "plcc_logistic": "PLCC (logistic)",
    "vquala_score": "VQualA score",
    "hallucination_rate": "hallucination",
    "hard_recall": "hard-artifact recall",
    "complete3_share": "all 3 found",
    "hamming_mean": "mean Hamming",
}

# Shares shown as percentages; the describe_* judge scores are points, not shares.
_PERCENT = re.compile(
    r"^(?!describe_)(accuracy|.*_rate$|.*recall$|.*precision$|.*_f1$|.*_share$|coverage$)"
)


def metric_info(name: str) -> MetricInfo:
    """Label, direction and unit of a metric, from its name (unknown names: no direction)."""
    # The table `fiqabench compare` gates on; failed samples are never better, though
    # compare leaves them ungated.
    direction = "lower" if name == "error_rate" else metric_direction(name)
    better: Better = None if direction == "none" else direction
    return MetricInfo(
        name=name,
        label=_LABELS.get(name, name),
        better=better,
        percent=bool(_PERCENT.search(name)),
    )


# Per kind: the overall table's columns, and the task page's main table.
HEADLINE: dict[Kind, tuple[str, ...]] = {
    "qa": ("accuracy",),
    "describe": ("describe_score",),
    "scalar": ("iso_edc_pauc_20", "srocc"),
    "detection": ("hallucination_rate", "hard_recall"),
    "other": (),
}
_MAIN: dict[Kind, tuple[str, ...]] = {
    "qa": (
        "accuracy",
        "accuracy_single",
        "accuracy_multi",
        "accuracy_tf",
        "open_score",
        "parse_failure_rate",
        "error_rate",
    ),
    "describe": (
        "describe_score",
        "describe_completeness",
        "describe_precision",
        "describe_relevance",
        "error_rate",
    ),
    "scalar": (
        "coverage",
        "iso_edc_pauc_05",
        "iso_edc_pauc_20",
        "iso_edc_auc",
        "vlm4fiqa_evr_pauc_20",
        "vlm4fiqa_evr_auc",
        "crfiqa_erc_auc_fmr1e-3",
        "srocc",
        "plcc_logistic",
        "vquala_score",
        "error_rate",
    ),
    "detection": (
        "hallucination_rate",
        "hard_recall",
        "complete3_share",
        "hamming_mean",
        "error_rate",
    ),
    "other": (),
}
_DETECTION_EXTRA = re.compile(r"(_f1$|^ladder_spearman_)")


def main_metrics(kind: Kind, entries: Sequence[TaskResults]) -> list[str]:
    """The metrics a task page tabulates for these entries (one entry per submission).

    Known kinds get a curated list (plus per-artifact F1 and ladder correlations for
    detection); other entries show every metric any submission reported.
    """
    present = list(dict.fromkeys(name for entry in entries for name in entry.metrics))
    if kind == "other":
        return present
    chosen = [name for name in _MAIN[kind] if name in present]
    if kind == "detection":
        chosen[-1:-1] = [name for name in present if _DETECTION_EXTRA.search(name)]
    return chosen


def format_value(value: float | int | None, percent: bool) -> str:
    """A metric for people: percentages with one decimal, others with 3 significant digits."""
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and not percent):
        return str(int(value))
    if percent:
        return f"{100 * value:.1f}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 10:
        return f"{value:.2f}"
    if magnitude >= 0.1 or magnitude == 0:
        return f"{value:.3f}"
    return f"{value:.3g}" if magnitude >= 1e-4 else f"{value:.2e}"


def format_metric(name: str, value: float | int | None) -> str:
    return format_value(value, metric_info(name).percent)


def format_ci(name: str, ci: tuple[float, float] | None) -> str:
    if ci is None:
        return ""
    return f"[{format_metric(name, ci[0])}, {format_metric(name, ci[1])}]"


def sort_value(value: object) -> str:
    """The `data-sort-value` of a cell: the number in full precision, empty when missing."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return repr(float(value))
    return ""


@dataclass(frozen=True)
class ProtocolKey:
    """What must agree for two numbers of one entry to be comparable."""

    protocol: str
    judge: str
    templates: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, entry: TaskResults) -> ProtocolKey:
        return cls(entry.protocol, entry.judge, tuple(sorted(entry.prompt_template_sha256.items())))

    def describe(self) -> str:
        prompts = ", ".join(f"{role} {digest[:12]}" for role, digest in self.templates)
        return f"protocol {self.protocol} · judge {self.judge} · prompt {prompts or 'none'}"


def protocol_labels(entries: Sequence[TaskResults]) -> dict[ProtocolKey, str]:
    """`P1`, `P2`, … for the distinct protocol keys, the most common first."""
    counts: dict[ProtocolKey, int] = {}
    for entry in entries:
        key = ProtocolKey.of(entry)
        counts[key] = counts.get(key, 0) + 1
    ordered = sorted(counts, key=lambda key: -counts[key])  # stable: ties keep first-seen order
    return {key: f"P{index}" for index, key in enumerate(ordered, start=1)}
