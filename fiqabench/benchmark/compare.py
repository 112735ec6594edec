"""Compare a candidate run with a base run (`fiqabench compare`): per result entry and metric,
the delta over the shared samples, a paired resampling CI, McNemar's test for accuracies, and
a regression verdict.

Result entries pair by name (`mini-qa`, `mini-fiqa:simple`), records by sample id within their
task. Only samples present in both runs and an error in neither take part in the quality
metrics: a failed call is infrastructure, not a wrong answer, and must not move them. Every
metric is recomputed from the shared records by the task's own `aggregate`, on both sides, with
the compare seed. Errors are compared on their own, as `error_rate` over every sample present in
both runs (McNemar's exact test on the samples that failed in one run only). An entry the base
has successful samples of is `lost` (failing) when no sample of it succeeded in both runs, or
when the candidate has no such entry.

Intervals and tests (compare_stats.py): metrics that are a mean over records (QA accuracies,
parse-failure rate, open score) take a vectorised paired bootstrap; their per-sample definition
is checked against the task's value on the shared set, and a metric that disagrees takes the
other route. Every other gated metric is recomputed by `aggregate` on paired half-samples:
bootstrap duplicates would silently vanish in tasks that key scores by image. Records that carry
`meta.image_id` (the prompt variants of one scalar-task image) are drawn together, so
cross-variant statistics keep their pairing. Verdicts come last (`decide`), because the default
Holm correction needs every metric's p-value.
"""

from __future__ import annotations

import math
import time
import warnings
import zlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fiqabench.benchmark.compare_report import (
    ComparisonReport,
    Correction,
    EntryComparison,
    EntryVerdict,
    McNemar,
    Method,
    MetricComparison,
    RunInfo,
    SampleSets,
    SideInfo,
    TaskComparison,
    gate_p,
)
from fiqabench.benchmark.compare_stats import (
    BoolArray,
    Estimate,
    FloatArray,
    IntArray,
    bootstrap_draws,
    bootstrap_estimate,
    draw_counts,
    half_sample_draws,
    half_sample_estimate,
    holm,
    mcnemar_exact,
    metric_direction,
    verdict,
    weighted_means,
)
from fiqabench.benchmark.metrics import numbers_match
from fiqabench.benchmark.results import (
    RESULTS_FILE,
    SAMPLES_FILE,
    ResultsFile,
    TaskResults,
    read_results,
    read_samples,
)
from fiqabench.benchmark.schema import Record
from fiqabench.errors import UserError
from fiqabench.tasks.base import Task, TaskResult
from fiqabench.tasks.qa import CLOSED_TYPES
from fiqabench.tasks.registry import TaskRegistry
from fiqabench.tasks.scalar import ScalarTask

ERROR_RATE = "error_rate"
# Zero on both sides of the shared successful records by construction: `error_row` compares
# errors over all the samples present in both runs instead.
EXCLUDED_METRICS = frozenset({ERROR_RATE})
MIN_BOOTSTRAP_UNITS = 2
MIN_HALF_SAMPLE_UNITS = 4


@dataclass(frozen=True)
class CompareSettings:
    tolerance: float = 0.01
    alpha: float = 0.05
    n_boot: int = 1000
    n_boot_aggregate: int = 100
    seed: int = 0
    correction: Correction = "holm"

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise UserError(f"--alpha must be between 0 and 1, got {self.alpha}")
        if not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise UserError(f"--tolerance must be a finite number >= 0, got {self.tolerance}")
        if self.n_boot < 0 or self.n_boot_aggregate < 0:
            raise UserError("--n-boot and --n-boot-aggregate must be >= 0")
        if self.correction not in ("holm", "none"):
            raise UserError(f"--correction must be holm or none, got {self.correction!r}")


# ---------------------------------------------------------------------------------------------
# Loading


@dataclass(frozen=True)
class Run:
    path: Path
    results: ResultsFile
    records: list[Record]


def load_run(path: Path) -> Run:
    """A run folder's results.json and samples.jsonl; a missing or bad file is a UserError."""
    if not path.is_dir():
        raise UserError("not a folder (expected a fiqabench run folder)", path=path)
    if not (path / RESULTS_FILE).is_file():
        raise UserError(f"no {RESULTS_FILE} here (is this a fiqabench run folder?)", path=path)
    if not (path / SAMPLES_FILE).is_file():
        raise UserError(f"no {SAMPLES_FILE} here: compare needs the per-sample records", path=path)
    return Run(path=path, results=read_results(path), records=read_samples(path))


def task_registry(base: Run, candidate: Run, include_paths: Sequence[Path] = ()) -> TaskRegistry:
    """Tasks as defined on this machine: the given folders, else those the two runs recorded.

    Recorded folders that do not exist here (a baseline made elsewhere) are skipped; a task that
    is then unknown is reported by `compare_runs`.
    """
    if include_paths:
        return TaskRegistry(list(include_paths))
    recorded = [*candidate.results.manifest.include_paths, *base.results.manifest.include_paths]
    folders = dict.fromkeys(Path(p).resolve() for p in recorded if Path(p).is_dir())
    return TaskRegistry(list(folders))


# ---------------------------------------------------------------------------------------------
# Pairing


@dataclass(frozen=True)
class PairedRecords:
    """The records of one task in both runs, in the same order on both sides."""

    base: list[Record]  # shared: present in both runs and an error in neither
    candidate: list[Record]
    units: list[list[int]]  # record indices of each resampling unit of the shared records
    sets: SampleSets
    present_base: list[Record]  # present in both runs, errors included
    present_candidate: list[Record]
    base_successes: list[Record]  # every base record that is not an error, shared or not


def _records_of(run: Run, task: str) -> dict[str, Record]:
    by_id: dict[str, Record] = {}
    for record in run.records:
        if record.task != task:
            continue
        if record.sample_id in by_id:
            raise UserError(
                f"two records for sample '{record.sample_id}' of task '{task}'",
                path=run.path / SAMPLES_FILE,
            )
        by_id[record.sample_id] = record
    return by_id


def resampling_units(records: Sequence[Record]) -> list[list[int]]:
    """Record indices grouped into resampling units: the prompt variants of an image (records
    that carry `meta.image_id`) are drawn together, other records alone."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        groups[str(record.meta.get("image_id") or record.sample_id)].append(index)
    return list(groups.values())


def pair_records(base: Mapping[str, Record], candidate: Mapping[str, Record]) -> PairedRecords:
    """Records present in both runs and an error in neither, grouped into resampling units; and
    the records present in both runs with errors, for the comparison of errors."""
    both = sorted(base.keys() & candidate.keys())
    shared = [i for i in both if base[i].status != "error" and candidate[i].status != "error"]
    units = resampling_units([base[i] for i in shared])
    sets = SampleSets(
        shared=len(shared),
        only_base=len(base.keys() - candidate.keys()),
        only_candidate=len(candidate.keys() - base.keys()),
        error_base=sum(base[i].status == "error" for i in both),
        error_candidate=sum(candidate[i].status == "error" for i in both),
        units=len(units),
    )
    return PairedRecords(
        base=[base[i] for i in shared],
        candidate=[candidate[i] for i in shared],
        units=units,
        sets=sets,
        present_base=[base[i] for i in both],
        present_candidate=[candidate[i] for i in both],
        base_successes=[record for record in base.values() if record.status != "error"],
    )


def prepared_task(registry: TaskRegistry, name: str, records: Sequence[Record]) -> Task:
    """The task as compare needs it: the prompt variants the runs used, and no inner bootstrap
    (its CIs would be recomputed, and thrown away, on every resample)."""
    if name not in registry.specs:
        raise UserError(
            f"task '{name}' is not defined here; pass --include-path with the folder of its spec"
        )
    task = registry.get(name)
    if isinstance(task, ScalarTask):
        variants = [r.meta["variant"] for r in records if r.meta.get("variant")]
        if variants:
            task.use_variants(list(dict.fromkeys(variants)))
        task.settings = task.settings.model_copy(update={"bootstrap": 0})
    return task


# ---------------------------------------------------------------------------------------------
# Per-sample metrics (the bootstrap route)


@dataclass(frozen=True)
class PerSampleMetric:
    """A metric that is the mean of `values` over the records in `mask`, on each side."""

    base_mask: BoolArray
    base_values: FloatArray
    candidate_mask: BoolArray
    candidate_values: FloatArray
    correctness: bool  # values are per-item correctness (0/1): McNemar applies

    def points(self) -> tuple[float | None, float | None]:
        def mean(mask: BoolArray, values: FloatArray) -> float | None:
            return float(values[mask].mean()) if mask.any() else None

        return mean(self.base_mask, self.base_values), mean(
            self.candidate_mask, self.candidate_values
        )

    def mcnemar(self) -> McNemar:
        both = self.base_mask & self.candidate_mask
        base_right = both & (self.base_values == 1.0)
        candidate_right = both & (self.candidate_values == 1.0)
        b = int(np.sum(base_right & ~candidate_right))
        c = int(np.sum(candidate_right & ~base_right))
        return McNemar(b=b, c=c, p=mcnemar_exact(b, c))


Column = tuple[BoolArray, FloatArray, bool]


def _qa_columns(records: Sequence[Record]) -> dict[str, Column]:
    """(mask, values, is correctness) of the QA metrics that are means over records, as
    tasks/qa.py defines them: a parse failure is wrong, errors and unscored answers are out."""
    kinds = np.array([r.meta.get("type", "") for r in records])
    answered = np.array([r.status in ("ok", "parse_fail") for r in records], dtype=bool)
    closed = np.isin(kinds, CLOSED_TYPES) & answered
    correct = np.array([1.0 if r.correct else 0.0 for r in records])
    failed = np.array([1.0 if r.status == "parse_fail" else 0.0 for r in records])
    judged = np.array([r.status == "ok" and r.score is not None for r in records], dtype=bool)
    scores = np.array([r.score if r.score is not None else 0.0 for r in records], dtype=float)
    columns: dict[str, Column] = {
        "accuracy": (closed, correct, True),
        "parse_failure_rate": (closed, failed, False),
        "open_score": ((kinds == "open") & judged, scores, False),
    }
    for kind in CLOSED_TYPES:
        columns[f"accuracy_{kind}"] = (closed & (kinds == kind), correct, True)
    return columns


def per_sample_metrics(
    task: Task, base: Sequence[Record], candidate: Sequence[Record]
) -> dict[str, PerSampleMetric]:
    """The metrics of `task` that have a per-sample definition, by name (QA tasks only)."""
    if task.spec.kind != "qa":
        return {}
    base_columns, candidate_columns = _qa_columns(base), _qa_columns(candidate)
    return {
        name: PerSampleMetric(
            base_mask=base_columns[name][0],
            base_values=base_columns[name][1],
            candidate_mask=candidate_columns[name][0],
            candidate_values=candidate_columns[name][1],
            correctness=base_columns[name][2],
        )
        for name in base_columns
    }


def record_weights(units: Sequence[Sequence[int]], n_records: int, draws: IntArray) -> IntArray:
    """How often each record is drawn, per bootstrap draw of units (rows of `draws`): a record
    counts as often as its unit."""
    unit_of = np.empty(n_records, dtype=np.int64)
    for unit, members in enumerate(units):
        unit_of[list(members)] = unit
    return draw_counts(draws, len(units))[:, unit_of]


def bootstrap_deltas(
    metrics: Mapping[str, PerSampleMetric], paired: PairedRecords, draws: IntArray
) -> dict[str, FloatArray]:
    """Candidate - base of each metric on each bootstrap draw of units (rows of `draws`)."""
    weights = record_weights(paired.units, len(paired.base), draws)
    return {
        name: weighted_means(weights, m.candidate_mask, m.candidate_values)
        - weighted_means(weights, m.base_mask, m.base_values)
        for name, m in metrics.items()
    }


def _same(value: float | None, other: float | None) -> bool:
    if value is None or other is None:
        return value is other
    return numbers_match(value, other)


# ---------------------------------------------------------------------------------------------
# Recomputed metrics (the half-sample route)

Draws = dict[tuple[str, str], tuple[FloatArray, FloatArray]]  # (entry, metric) -> base, cand
# Called with (task, number of draws) before a task's half-samples; returns a per-draw callback.
ProgressFactory = Callable[[str, int], Callable[[], None]]


def aggregate_draws(
    task: Task,
    paired: PairedRecords,
    draws: IntArray,
    seed: int,
    on_draw: Callable[[], None] | None = None,
) -> Draws:
    """Every metric of every entry recomputed by `task.aggregate` on each draw of units (rows
    of `draws`), the same units on both sides; NaN where a metric is undefined."""
    total = draws.shape[0]
    collected: dict[tuple[str, str], tuple[list[float], list[float]]] = defaultdict(
        lambda: ([], [])
    )

    def pick(records: Sequence[Record], units: IntArray) -> list[Record]:
        return [records[i] for unit in units for i in paired.units[int(unit)]]

    for row, units in enumerate(draws):
        with warnings.catch_warnings():
            # Small subsets can be near-constant: an undefined metric becomes NaN, not noise.
            warnings.simplefilter("ignore")
            sides = (
                task.aggregate(pick(paired.base, units), seed),
                task.aggregate(pick(paired.candidate, units), seed),
            )
        for side, entries in enumerate(sides):
            for entry, result in entries.items():
                for metric, value in result.metrics.items():
                    column = collected[(entry, metric)][side]
                    column.extend([math.nan] * (row - len(column)))  # absent from earlier draws
                    column.append(_as_float(value))
        if on_draw is not None:
            on_draw()

    def padded(column: list[float]) -> FloatArray:
        return np.array(column + [math.nan] * (total - len(column)), dtype=np.float64)

    return {key: (padded(b), padded(c)) for key, (b, c) in collected.items()}


def _as_float(value: float | None) -> float:
    return math.nan if value is None or not math.isfinite(value) else float(value)


# ---------------------------------------------------------------------------------------------
# Comparison of one task


@dataclass(frozen=True)
class _Resampled:
    per_sample: Mapping[str, PerSampleMetric]
    bootstrap: Mapping[str, FloatArray]
    half_samples: Draws
    n_units: int
    skipped: str  # why a gated metric has no resamples, when it has none


def _rng(settings: CompareSettings, task: str) -> np.random.Generator:
    # One stream per task: a task's CIs do not depend on which other tasks are compared.
    return np.random.default_rng([settings.seed, zlib.crc32(task.encode())])


def _resample(
    task: Task,
    paired: PairedRecords,
    points: tuple[Mapping[str, TaskResult], Mapping[str, TaskResult]],
    entries: Sequence[str],
    settings: CompareSettings,
    on_task: ProgressFactory | None,
) -> _Resampled:
    rng = _rng(settings, task.name)
    n_units = len(paired.units)
    base_points, candidate_points = points
    per_sample = {
        name: metric
        for name, metric in per_sample_metrics(task, paired.base, paired.candidate).items()
        if all(  # the per-sample definition must reproduce the task's own values
            _same(metric.points()[0], base_points[e].metrics.get(name))
            and _same(metric.points()[1], candidate_points[e].metrics.get(name))
            for e in entries
        )
    }
    boot: dict[str, FloatArray] = {}
    if per_sample and n_units >= MIN_BOOTSTRAP_UNITS and settings.n_boot:
        boot = bootstrap_deltas(per_sample, paired, bootstrap_draws(n_units, settings.n_boot, rng))
    needs_half_samples = any(  # a gated metric, defined on both sides, not bootstrapped
        metric not in boot
        and metric not in EXCLUDED_METRICS
        and metric_direction(metric) != "none"
        and value is not None
        and candidate_points[e].metrics.get(metric) is not None
        for e in entries
        for metric, value in base_points[e].metrics.items()
    )
    halves: Draws = {}
    if needs_half_samples and n_units >= MIN_HALF_SAMPLE_UNITS and settings.n_boot_aggregate:
        draws = half_sample_draws(n_units, settings.n_boot_aggregate, rng)
        on_draw = on_task(task.name, settings.n_boot_aggregate) if on_task else None
        halves = aggregate_draws(task, paired, draws, settings.seed, on_draw)
    skipped = (
        f"too few shared samples to resample ({n_units})"
        if n_units < MIN_HALF_SAMPLE_UNITS
        else "resampling turned off (--n-boot / --n-boot-aggregate 0)"
    )
    return _Resampled(per_sample, boot, halves, n_units, skipped)


def _undefined_note(base: float | None, candidate: float | None) -> str:
    if base is None and candidate is None:
        return "undefined on both sides"
    return "undefined in the base" if base is None else "undefined in the candidate"


def _estimate(
    entry: str, name: str, delta: float, resampled: _Resampled, alpha: float
) -> tuple[Method, int, Estimate, McNemar | None]:
    """The interval method of one metric, its resamples, what they say, and McNemar's test."""
    if name in resampled.bootstrap:
        deltas = resampled.bootstrap[name]
        per_sample = resampled.per_sample[name]
        mcnemar = per_sample.mcnemar() if per_sample.correctness else None
        return "bootstrap", deltas.size, bootstrap_estimate(delta, deltas, alpha), mcnemar
    if (entry, name) in resampled.half_samples:
        draws_b, draws_c = resampled.half_samples[(entry, name)]
        estimate = half_sample_estimate(delta, draws_c - draws_b, resampled.n_units, alpha)
        return "half-sample", draws_b.size, estimate, None
    return "none", 0, Estimate(None, None, resampled.skipped), None


def _metric_rows(
    entry: str,
    base: TaskResult,
    candidate: TaskResult,
    resampled: _Resampled,
    settings: CompareSettings,
) -> list[MetricComparison]:
    """One row per metric, without its verdict (`decide` gives it, over the whole report)."""
    rows = []
    for name in dict.fromkeys([*base.metrics, *candidate.metrics]):
        if name in EXCLUDED_METRICS:
            continue
        direction = metric_direction(name)
        b, c = base.metrics.get(name), candidate.metrics.get(name)
        row = MetricComparison(metric=name, direction=direction, base=b, candidate=c)
        if b is None or c is None:
            row.note = _undefined_note(b, c)
        else:
            row.delta = c - b
            row.method, row.n_resamples, estimate, row.mcnemar = _estimate(
                entry, name, row.delta, resampled, settings.alpha
            )
            row.ci = estimate.ci
            row.p = row.mcnemar.p if row.mcnemar else estimate.p
            row.note = estimate.note if direction != "none" or estimate.ci else None
        rows.append(row)
    return rows


def error_row(
    base: Sequence[Record],
    candidate: Sequence[Record],
    settings: CompareSettings,
    rng: np.random.Generator,
) -> MetricComparison | None:
    """`error_rate` over the records of one entry present in both runs (the same samples in the
    same order on both sides, errors included): the share of errors on each side, a paired
    bootstrap CI of the delta, and McNemar's exact test on the samples that failed in one run
    only (b: an error in the candidate only). None without such records."""
    if not base:
        return None
    failed_base = np.array([r.status == "error" for r in base], dtype=bool)
    failed_candidate = np.array([r.status == "error" for r in candidate], dtype=bool)
    b = int(np.sum(~failed_base & failed_candidate))
    c = int(np.sum(failed_base & ~failed_candidate))
    mcnemar = McNemar(b=b, c=c, p=mcnemar_exact(b, c))
    share_base, share_candidate = float(failed_base.mean()), float(failed_candidate.mean())
    delta = share_candidate - share_base
    row = MetricComparison(
        metric=ERROR_RATE,
        direction=metric_direction(ERROR_RATE),
        base=share_base,
        candidate=share_candidate,
        delta=delta,
        mcnemar=mcnemar,
        p=mcnemar.p,
    )
    units = resampling_units(base)
    if len(units) < MIN_BOOTSTRAP_UNITS or not settings.n_boot:
        row.note = (
            f"too few samples in both runs to resample ({len(units)})"
            if len(units) < MIN_BOOTSTRAP_UNITS
            else "resampling turned off (--n-boot 0)"
        )
        return row
    weights = record_weights(units, len(base), bootstrap_draws(len(units), settings.n_boot, rng))
    every = np.ones(len(base), dtype=bool)
    deltas = weighted_means(weights, every, failed_candidate.astype(np.float64)) - (
        weighted_means(weights, every, failed_base.astype(np.float64))
    )
    estimate = bootstrap_estimate(delta, deltas, settings.alpha)
    row.method, row.n_resamples, row.ci = "bootstrap", deltas.size, estimate.ci
    row.note = estimate.note
    return row


def decide(report: ComparisonReport, settings: CompareSettings) -> None:
    """Give every metric its verdict; with the Holm correction, significance is judged on
    p-values adjusted over all the gated metrics of the comparison."""
    rows = [m for task in report.tasks for e in task.entries for m in e.metrics]
    if settings.correction == "holm":
        tested = [(m, m.p) for m in rows if m.direction != "none" and m.p is not None]
        for (metric, _), adjusted in zip(tested, holm([p for _, p in tested]), strict=True):
            metric.p_adjusted = adjusted
    for m in rows:
        m.verdict = verdict(
            m.direction,
            (m.base, m.candidate),
            m.ci,
            gate_p(report, m),
            tolerance=settings.tolerance,
            alpha=settings.alpha,
        )


def _side(result: TaskResults) -> SideInfo:
    return SideInfo(
        protocol=result.protocol,
        model=result.model,
        model_id=result.model_id,
        revision=result.revision,
        judge=_judge_description(result),
        prompt_template_sha256=result.prompt_template_sha256,
    )


def _judge_description(result: TaskResults) -> str:
    # Judge models, when a task used them, are part of what produced the numbers.
    judges = result.model_dump().get("judges") or []
    models = [
        f"{j.get('role', 'judge')} {j['model'].get('model_id')}@{j['model'].get('revision')}"
        for j in judges
        if isinstance(j, dict) and isinstance(j.get("model"), dict)
    ]
    return ", ".join([result.judge, *models])


def _protocol_warnings(base: SideInfo, candidate: SideInfo) -> list[str]:
    return [
        f"{label} differ: the delta mixes the model change with a {label} change"
        for field, label in (
            ("protocol", "protocols"),
            ("judge", "judges"),
            ("prompt_template_sha256", "prompt templates"),
        )
        if getattr(base, field) != getattr(candidate, field)
    ]


def _lost_reason(entry: str, successes: int, failed: int) -> str:
    missing = successes - failed
    why = [
        f"{count} {label}"
        for count, label in ((failed, "errors"), (missing, "not in the candidate"))
        if count
    ]
    return (
        f"none of the base's {successes} successful samples of '{entry}' succeeded in the "
        f"candidate ({', '.join(why)})"
    )


def compare_task(
    task: Task,
    paired: PairedRecords,
    base_results: Mapping[str, TaskResults],
    candidate_results: Mapping[str, TaskResults],
    settings: CompareSettings,
    on_task: ProgressFactory | None = None,
) -> tuple[list[EntryComparison], list[str]]:
    """The entries of one task that both runs have: every metric with its delta, CI and
    verdict, `error_rate` over the samples present in both runs, and the verdict `lost` for an
    entry the base has successful samples of and no sample succeeded in both runs; and warnings
    for entries the shared records no longer produce."""
    listed = [name for name in base_results if name in candidate_results]
    shared, present = task.entry_members(paired.base), task.entry_members(paired.present_base)
    successes = task.entry_members(paired.base_successes)
    lost = {
        name: _lost_reason(
            name,
            len(successes[name]),
            sum(paired.present_base[i].status != "error" for i in present.get(name, [])),
        )
        for name in listed
        if successes.get(name) and not shared.get(name)
    }
    base_points: dict[str, TaskResult] = {}
    candidate_points: dict[str, TaskResult] = {}
    if paired.base:
        base_points = task.aggregate(paired.base, settings.seed)
        candidate_points = task.aggregate(paired.candidate, settings.seed)
    names = [
        name
        for name in listed
        if name not in lost and name in base_points and name in candidate_points
    ]
    problems = [
        f"'{name}' cannot be recomputed from the shared samples: its quality metrics are left out"
        for name in listed
        if paired.base and name not in names and name not in lost
    ]
    resampled = None
    if names:
        points = (base_points, candidate_points)
        resampled = _resample(task, paired, points, names, settings, on_task)
    entries = []
    for name in listed:
        rows, n = [], len(shared.get(name, []))
        if resampled is not None and name in names:
            rows = _metric_rows(
                name, base_points[name], candidate_points[name], resampled, settings
            )
            n = base_points[name].counts.get("total", n)
        if ERROR_RATE in base_results[name].metrics:
            members = present.get(name, [])
            errors = error_row(
                [paired.present_base[i] for i in members],
                [paired.present_candidate[i] for i in members],
                settings,
                _rng(settings, f"{name} {ERROR_RATE}"),
            )
            rows += [errors] if errors else []
        if not rows and name not in lost:
            continue  # nothing to compare (warned about)
        base_side, candidate_side = _side(base_results[name]), _side(candidate_results[name])
        verdict: EntryVerdict = "lost" if name in lost else "compared"
        entries.append(
            EntryComparison(
                entry=name,
                task=task.name,
                n=n,
                base=base_side,
                candidate=candidate_side,
                verdict=verdict,
                reason=lost.get(name),
                warnings=_protocol_warnings(base_side, candidate_side),
                metrics=rows,
            )
        )
    return entries, problems


def missing_entry(name: str, base: TaskResults) -> EntryComparison:
    """An entry of the base that the candidate has no result for: lost."""
    return EntryComparison(
        entry=name,
        task=base.task,
        n=0,
        base=_side(base),
        candidate=None,
        verdict="lost",
        reason=f"the candidate has no result for '{name}'",
    )


# ---------------------------------------------------------------------------------------------
# Comparison of two runs


def _run_info(run: Run) -> RunInfo:
    manifest = run.results.manifest
    return RunInfo(
        path=str(run.path),
        model=manifest.model.alias,
        model_id=manifest.model.model_id,
        runner=manifest.model.runner,
        revision=manifest.model.revision,
        fiqabench_version=manifest.fiqabench_version,
        git_commit=manifest.git_commit,
        seed=manifest.seed,
        limit=manifest.limit,
        scoring=manifest.scoring,
    )


def _run_warnings(base: Run, candidate: Run) -> list[str]:
    b, c = base.results.manifest, candidate.results.manifest
    found = []
    if b.scoring != c.scoring:
        found.append(f"scoring differs: base {b.scoring}, candidate {c.scoring}")
    if b.limit != c.limit:
        found.append(f"--limit differs: base {b.limit}, candidate {c.limit}")
    specs = {t.name: t.spec_sha256 for t in b.tasks}
    found += [
        f"the spec of task '{t.name}' differs between the runs"
        for t in c.tasks
        if t.name in specs and specs[t.name] != t.spec_sha256
    ]
    if b.model.fingerprint() == c.model.fingerprint():
        found.append("both runs used the same model (runner, id, revision and arguments)")
    return found


def compare_runs(
    base: Run,
    candidate: Run,
    registry: TaskRegistry,
    settings: CompareSettings | None = None,
    on_task: ProgressFactory | None = None,
) -> ComparisonReport:
    """The comparison of `candidate` with `base`, over every task of the base.

    `on_task` reports the progress of half-sample resampling. Raises UserError when the runs
    share no result entry, or when no sample succeeded in both and no entry is lost (nothing
    to compare).
    """
    settings = settings or CompareSettings()
    base_entries, candidate_entries = base.results.results, candidate.results.results
    if not any(name in candidate_entries for name in base_entries):
        raise UserError(
            f"the runs share no result entry (base: {', '.join(base_entries) or 'none'}; "
            f"candidate: {', '.join(candidate_entries) or 'none'})",
            path=candidate.path / RESULTS_FILE,
        )
    report = ComparisonReport(
        base=_run_info(base),
        candidate=_run_info(candidate),
        tolerance=settings.tolerance,
        alpha=settings.alpha,
        n_boot=settings.n_boot,
        n_boot_aggregate=settings.n_boot_aggregate,
        seed=settings.seed,
        correction=settings.correction,
        entries_only_base=[n for n in base_entries if n not in candidate_entries],
        entries_only_candidate=[n for n in candidate_entries if n not in base_entries],
        warnings=_run_warnings(base, candidate),
    )
    report.warnings += [
        f"'{n}' is in the candidate only: there is no baseline for it"
        for n in report.entries_only_candidate
    ]
    for name in dict.fromkeys(entry.task for entry in base_entries.values()):
        started = time.perf_counter()
        paired = pair_records(_records_of(base, name), _records_of(candidate, name))
        kind = registry.specs[name].spec.kind if name in registry.specs else "unknown"
        comparison = TaskComparison(task=name, kind=kind, samples=paired.sets)
        report.tasks.append(comparison)
        if not paired.base:
            report.warnings.append(f"task '{name}': no sample succeeded in both runs")
        mine = {n: r for n, r in base_entries.items() if r.task == name}
        theirs = {n: r for n, r in candidate_entries.items() if r.task == name}
        if mine.keys() & theirs.keys():
            task = prepared_task(registry, name, paired.base or paired.present_base)
            comparison.entries, problems = compare_task(
                task, paired, mine, theirs, settings, on_task
            )
            report.warnings += problems
        comparison.entries += [missing_entry(n, r) for n, r in mine.items() if n not in theirs]
        comparison.seconds = round(time.perf_counter() - started, 3)
    if not any(task.samples.shared for task in report.tasks) and not report.lost_entries():
        raise UserError(
            "the runs share no sample that succeeded in both (compare runs of the same tasks "
            "with the same --limit)",
            path=candidate.path / SAMPLES_FILE,
        )
    decide(report, settings)
    return report
