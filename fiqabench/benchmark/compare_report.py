"""The result of `fiqabench compare`: its typed report (also its JSON form) and its Markdown form
for a pull-request comment."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from fiqabench.benchmark.compare_stats import FAILING, Direction, Verdict

SCHEMA_VERSION: Literal["fiqabench.compare/1"] = "fiqabench.compare/1"
Method = Literal["bootstrap", "half-sample", "none"]
# lost: the base has successful samples of the entry, the candidate none of them (it failed on
# them, or has no such entry); it fails the gate like a regression.
EntryVerdict = Literal["compared", "lost"]
Correction = Literal["holm", "none"]


class McNemar(BaseModel):
    """b: items the base got right and the candidate wrong; c: the reverse. For `error_rate`,
    right is no error."""

    b: int
    c: int
    p: float


class MetricComparison(BaseModel):
    metric: str
    direction: Direction
    base: float | None
    candidate: float | None
    delta: float | None = Field(default=None, description="candidate - base")
    ci: tuple[float, float] | None = None
    method: Method = "none"
    n_resamples: int = 0
    p: float | None = Field(
        default=None, description="two-sided: McNemar's exact test, else from the resampling SE"
    )
    p_adjusted: float | None = Field(default=None, description="Holm-adjusted p (--correction)")
    note: str | None = None
    mcnemar: McNemar | None = None
    verdict: Verdict = "undefined"


class SideInfo(BaseModel):
    """What produced one side's numbers of an entry."""

    protocol: str
    model: str
    model_id: str
    revision: str | None
    judge: str
    prompt_template_sha256: dict[str, str]


class EntryComparison(BaseModel):
    entry: str
    task: str
    n: int | None = Field(description="shared records in this entry (its `total` count)")
    base: SideInfo
    candidate: SideInfo | None = Field(description="None: the candidate has no such entry")
    verdict: EntryVerdict = "compared"
    reason: str | None = Field(default=None, description="why the entry is lost")
    warnings: list[str] = Field(default_factory=list)
    metrics: list[MetricComparison] = Field(default_factory=list)


class SampleSets(BaseModel):
    """How the two runs' records of a task pair up."""

    shared: int
    only_base: int
    only_candidate: int
    error_base: int = Field(
        description="in both runs, an error in the base (out of the quality metrics; error_rate)"
    )
    error_candidate: int = Field(
        description="in both runs, an error in the candidate (out of the quality metrics)"
    )
    units: int = Field(description="resampling units: samples, or images for scalar tasks")


class TaskComparison(BaseModel):
    task: str
    kind: str
    samples: SampleSets
    entries: list[EntryComparison] = Field(default_factory=list)
    seconds: float = 0.0


class RunInfo(BaseModel):
    path: str
    model: str
    model_id: str
    runner: str
    revision: str | None
    fiqabench_version: str
    git_commit: str | None
    seed: int
    limit: int | None
    scoring: str


class ComparisonReport(BaseModel):
    schema_version: Literal["fiqabench.compare/1"] = SCHEMA_VERSION
    base: RunInfo
    candidate: RunInfo
    tolerance: float
    alpha: float
    n_boot: int
    n_boot_aggregate: int
    seed: int
    correction: Correction
    tasks: list[TaskComparison] = Field(default_factory=list)
    entries_only_base: list[str] = Field(default_factory=list)
    entries_only_candidate: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    def regressions(self) -> list[tuple[EntryComparison, MetricComparison]]:
        """The failing metrics (regression or lost)."""
        return [
            (entry, metric)
            for task in self.tasks
            for entry in task.entries
            for metric in entry.metrics
            if metric.verdict in FAILING
        ]

    def lost_entries(self) -> list[EntryComparison]:
        return [entry for task in self.tasks for entry in task.entries if entry.verdict == "lost"]

    @property
    def passed(self) -> bool:
        return not self.regressions() and not self.lost_entries()


# ---------------------------------------------------------------------------------------------
# Cell formatting (Markdown here, and the terminal tables of cli_compare)

VERDICT_TEXT = {
    "regression": "⚠️ regression",
    "lost": "⚠️ lost (undefined in the candidate)",
    "improved": "✅ improved",
    "unchanged": "— unchanged",
    "no_ci": "❔ no CI",
    "undefined": "n/a",
    "not_gated": "not gated",
}


def number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.4f}"


def interval(ci: tuple[float, float] | None, digits: int = 4) -> str:
    return "—" if ci is None else f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"


def _ci_cell(metric: MetricComparison) -> str:
    """The CI, or why there is none."""
    if metric.ci is None and metric.note and metric.delta is not None:
        return f"— ({metric.note})"
    return interval(metric.ci)


def is_gated(metric: MetricComparison) -> bool:
    # A metric undefined on both sides has nothing to gate: it goes with the ungated ones.
    return metric.direction != "none" and not (metric.base is None and metric.candidate is None)


def pvalue(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def gate_p(report: ComparisonReport, metric: MetricComparison) -> float | None:
    """The p the verdict uses: Holm-adjusted, or without a correction McNemar's for accuracies
    (other metrics are then judged on their interval alone)."""
    if report.correction == "holm":
        return metric.p_adjusted
    return metric.mcnemar.p if metric.mcnemar else None


def _method(metric: MetricComparison) -> str:
    if metric.method == "none":
        return "—"
    test = ", McNemar p" if metric.mcnemar else ""
    return f"{metric.method} x{metric.n_resamples}{test}"


def _cell(text: object) -> str:
    """Text safe inside a Markdown table cell of a pull-request comment."""
    return (
        str(text)
        .replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\n", " ")
    )


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def ci_label(report: ComparisonReport) -> str:
    return f"{100 * (1 - report.alpha):g} % CI"


def samples_line(samples: SampleSets) -> str:
    parts = [f"{samples.shared} shared samples ({samples.units} resampling units)"]
    for count, label in (
        (samples.only_base, "only in the base"),
        (samples.only_candidate, "only in the candidate"),
        (samples.error_base, "errors in the base"),
        (samples.error_candidate, "errors in the candidate"),
    ):
        if count:
            parts.append(f"{count} {label}")
    return " · ".join(parts)


def _run_cell(run: RunInfo, field: str) -> str:
    values = {
        "run": f"`{run.path}`",
        "model": f"{run.model} ({run.runner}: {run.model_id})",
        "revision": run.revision or "—",
        "fiqabench": f"{run.fiqabench_version}"
        + (f" ({run.git_commit[:12]})" if run.git_commit else ""),
        "seed / limit": f"{run.seed} / {run.limit if run.limit is not None else 'none'}",
    }
    return _cell(values[field])


# ---------------------------------------------------------------------------------------------
# Markdown


def _headline(report: ComparisonReport) -> str:
    if report.passed:
        return "## fiqabench compare: ✅ PASS"
    counts = [
        f"{count} {label}"
        for count, label in (
            (len(report.regressions()), "metric(s)"),
            (len(report.lost_entries()), "lost entry(ies)"),
        )
        if count
    ]
    return f"## fiqabench compare: ⚠️ REGRESSION ({', '.join(counts)})"


def _lost_line(entry: EntryComparison) -> str:
    return f"- `{_cell(entry.entry)}` **lost**: {_cell(entry.reason or '')}"


def _regression_line(report: ComparisonReport, entry: EntryComparison, m: MetricComparison) -> str:
    if m.verdict == "lost":
        return (
            f"- `{_cell(entry.entry)}` **{_cell(m.metric)}**: {number(m.base)} → undefined "
            "(the candidate no longer yields it on the same samples)"
        )
    text = (
        f"- `{_cell(entry.entry)}` **{_cell(m.metric)}**: {number(m.base)} → "
        f"{number(m.candidate)} (Δ {signed(m.delta)}, {ci_label(report)} {interval(m.ci)}"
    )
    if m.p is not None:
        text += f", {'McNemar ' if m.mcnemar else ''}p = {pvalue(m.p)}"
    if m.p_adjusted is not None:
        text += f", Holm-adjusted p = {pvalue(m.p_adjusted)}"
    return text + ")"


def _gated_table(report: ComparisonReport, entry: EntryComparison) -> list[str]:
    gated = [m for m in entry.metrics if is_gated(m)]
    if not gated:
        return []
    holm = report.correction == "holm"
    header = ["metric", "better", "base", "candidate", "Δ", ci_label(report), "p"]
    header += [*(["p (Holm)"] if holm else []), "verdict", "method"]
    lines = [_row(header), _row(["---"] * len(header))]
    for m in gated:
        verdict = VERDICT_TEXT[m.verdict]
        if m.note and m.verdict == "undefined":
            verdict += f" ({m.note})"
        lines.append(
            _row(
                [
                    f"`{_cell(m.metric)}`",
                    "↑" if m.direction == "higher" else "↓",
                    number(m.base),
                    number(m.candidate),
                    signed(m.delta),
                    _cell(_ci_cell(m)),
                    pvalue(m.p),
                    *([pvalue(m.p_adjusted)] if holm else []),
                    _cell(verdict),
                    _method(m),
                ]
            )
        )
    return lines


def _ungated_table(report: ComparisonReport, entry: EntryComparison) -> list[str]:
    ungated = [m for m in entry.metrics if not is_gated(m)]
    if not ungated:
        return []
    header = ["metric", "base", "candidate", "Δ", ci_label(report)]
    lines = [
        "<details><summary>"
        f"{len(ungated)} metric(s) not gated (counts, thresholds, buckets, undefined)"
        "</summary>",
        "",
        _row(header),
        _row(["---"] * len(header)),
    ]
    for m in ungated:
        lines.append(
            _row(
                [
                    f"`{_cell(m.metric)}`",
                    number(m.base),
                    number(m.candidate),
                    signed(m.delta),
                    interval(m.ci),
                ]
            )
        )
    return [*lines, "", "</details>"]


def _entry_section(report: ComparisonReport, entry: EntryComparison) -> list[str]:
    side = entry.base
    described = (
        f"n = {entry.n if entry.n is not None else '—'} · protocol `{_cell(side.protocol)}` · "
        f"judge `{_cell(side.judge)}`"
    )
    # A task with one entry of its own name needs no second heading.
    heading = [] if entry.entry == entry.task else [f"#### {_cell(entry.entry)}", ""]
    lines = [*heading, described, ""]
    if entry.verdict == "lost":
        lines += [f"> ⚠️ **lost**: {_cell(entry.reason or '')}", ""]
    for warning in entry.warnings:
        lines.append(f"> ⚠️ {_cell(warning)}")
    if entry.warnings and entry.candidate is not None:
        lines.append("")
        other = entry.candidate
        lines.append(
            f"Candidate: protocol `{_cell(other.protocol)}` · judge `{_cell(other.judge)}`"
        )
        lines.append("")
    lines += _gated_table(report, entry)
    ungated = _ungated_table(report, entry)
    if ungated:
        lines += ["", *ungated]
    return [*lines, ""]


def render_markdown(report: ComparisonReport) -> str:
    """The comparison as Markdown for a pull-request comment."""
    lines = [_headline(report), ""]
    header = ["", "base", "candidate"]
    lines += [_row(header), _row(["---"] * 3)]
    for field in ("run", "model", "revision", "fiqabench", "seed / limit"):
        cells = [field, _run_cell(report.base, field), _run_cell(report.candidate, field)]
        lines.append(_row(cells))
    significance = (
        f"Holm-adjusted p < {report.alpha:g} over all gated metrics"
        if report.correction == "holm"
        else f"McNemar p < {report.alpha:g} for accuracies and `error_rate`"
    )
    lines += [
        "",
        f"Regression: worse by more than {report.tolerance:g} (absolute), with the "
        f"{ci_label(report)} of Δ (candidate - base) excluding 0 and {significance}. "
        f"Paired resampling (seed {report.seed}): a bootstrap of {report.n_boot} for metrics "
        f"that are means over samples, {report.n_boot_aggregate} half-samples for the others; "
        "p is McNemar's exact test for accuracies, else from the resampling SE. Errors are "
        "left out of the quality metrics; `error_rate` compares them over all samples in both "
        "runs (McNemar). An entry is lost, and fails, when the base has successful samples of it "
        "and no sample succeeded in both runs, or the candidate has no such entry.",
        "",
    ]
    if not report.passed:
        lines += ["### Regressions", ""]
        lines += [_lost_line(entry) for entry in report.lost_entries()]
        lines += [_regression_line(report, e, m) for e, m in report.regressions()]
        lines.append("")
    if report.warnings:
        lines += ["### Warnings", ""]
        lines += [f"- {_cell(warning)}" for warning in report.warnings]
        lines.append("")
    for task in report.tasks:
        lines += [f"### {_cell(task.task)}", "", samples_line(task.samples), ""]
        for entry in task.entries:
            lines += _entry_section(report, entry)
    return "\n".join(lines).rstrip() + "\n"
