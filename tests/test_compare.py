"""`fiqabench compare`: pairing, paired resampling CIs, McNemar, direction table, verdicts, CLI."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fiqabench.benchmark import compare as compare_module
from fiqabench.benchmark.compare import (
    CompareSettings,
    aggregate_draws,
    bootstrap_deltas,
    compare_runs,
    load_run,
    pair_records,
    per_sample_metrics,
    prepared_task,
    task_registry,
)
from fiqabench.benchmark.compare_report import (
    ComparisonReport,
    EntryComparison,
    MetricComparison,
    render_markdown,
)
from fiqabench.benchmark.compare_stats import (
    DIRECTIONS,
    Direction,
    bootstrap_draws,
    bootstrap_estimate,
    direction_rule,
    draw_counts,
    half_sample_draws,
    half_sample_estimate,
    holm,
    mcnemar_exact,
    metric_direction,
    normal_p,
    verdict,
    weighted_means,
)
from fiqabench.benchmark.pipeline import summarise
from fiqabench.benchmark.rescore import score_predictions
from fiqabench.benchmark.results import read_results, read_samples, write_results, write_samples
from fiqabench.benchmark.schema import QAItem, Record
from fiqabench.tasks.registry import TaskRegistry
from fiqabench.tasks.scalar import ScalarTask
from tests.test_cli import run_cli

MINI_TASKS = "mini-qa,mini-fiqa,mini-degradation"
CandidateFactory = Callable[..., Path]

# ---------------------------------------------------------------------------------------------
# Building runs: mini-qa answers scored by the real pipeline (`score --predictions`)


def _answer(item: QAItem, right: bool) -> str:
    letters = item.letters
    if item.type == "single":
        assert isinstance(item.answer, str)
        return item.answer if right else next(x for x in letters if x != item.answer)
    if item.type == "multi":
        assert isinstance(item.answer, list)
        wrong = [letters[0]] if item.answer != [letters[0]] else [letters[1]]
        return ", ".join(item.answer if right else wrong)
    if item.type == "tf":
        return str(item.answer if right else not item.answer)
    return "A sharp, well exposed portrait."


def _closed_ids() -> list[str]:
    samples = TaskRegistry().get("mini-qa").samples()
    return [s.id for s in samples if s.item.type in ("single", "multi", "tf")]


def _base_right() -> set[str]:
    """The closed items the base answers correctly: every other one (90 of 180)."""
    return set(_closed_ids()[::2])


def write_qa_run(folder: Path, right: set[str]) -> Path:
    """A mini-qa run that answers exactly the items in `right` correctly."""
    task = TaskRegistry().get("mini-qa")
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"sample_id": s.id, "response": _answer(s.item, s.id in right)})
        for s in task.samples()
    ]
    predictions = folder / "predictions.jsonl"
    predictions.write_text("\n".join(lines) + "\n")
    results, records = score_predictions(task, predictions)
    write_results(folder, results)
    write_samples(folder, records)
    return folder


def flipped(k: int) -> set[str]:
    """The base's right answers with the first k of them turned wrong."""
    right = sorted(_base_right())
    return set(right[k:])


@pytest.fixture(scope="module")
def qa_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_qa_run(tmp_path_factory.mktemp("base") / "run", _base_right())


@pytest.fixture
def candidate_of(tmp_path: Path) -> CandidateFactory:
    def make(right: set[str], name: str = "candidate") -> Path:
        return write_qa_run(tmp_path / name, right)

    return make


def _compare(base: Path, candidate: Path, **settings: float | str) -> ComparisonReport:
    base_run, candidate_run = load_run(base), load_run(candidate)
    registry = task_registry(base_run, candidate_run)
    chosen = CompareSettings(**settings)  # type: ignore[arg-type]
    return compare_runs(base_run, candidate_run, registry, chosen)


def _metric(report: ComparisonReport, entry: str, metric: str) -> MetricComparison:
    found = [m for t in report.tasks for e in t.entries if e.entry == entry for m in e.metrics]
    return next(m for m in found if m.metric == metric)


# ---------------------------------------------------------------------------------------------
# McNemar


def test_mcnemar_exact_matches_a_hand_computed_example() -> None:
    # b = 8, c = 2: P(X <= 2 | n = 10, 1/2) = (1 + 10 + 45) / 1024; two-sided doubles it.
    assert mcnemar_exact(8, 2) == pytest.approx(112 / 1024, rel=1e-12)
    assert mcnemar_exact(2, 8) == pytest.approx(112 / 1024, rel=1e-12)
    # All 20 discordant pairs one way: 2 / 2^20.
    assert mcnemar_exact(20, 0) == pytest.approx(2 / 2**20, rel=1e-12)
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(0, 0) == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


@pytest.mark.parametrize(("b", "c"), [(1, 0), (3, 7), (12, 4), (30, 18), (0, 9)])
def test_mcnemar_exact_agrees_with_the_binomial_formula(b: int, c: int) -> None:
    n = b + c
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    assert mcnemar_exact(b, c) == pytest.approx(min(1.0, 2 * tail), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Direction table


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("accuracy", "higher"),
        ("accuracy_tf", "higher"),
        ("parse_failure_rate", "lower"),
        ("open_score", "higher"),
        ("describe_score", "higher"),
        ("coverage", "higher"),
        ("srocc", "higher"),
        ("plcc_logistic", "higher"),
        ("vquala_score_raw", "higher"),
        ("iso_edc_pauc_05", "lower"),
        ("iso_edc_auc", "lower"),
        ("vlm4fiqa_evr_fixed_pauc_20", "lower"),
        ("crfiqa_erc_auc_fmr1e-3", "lower"),
        ("iso_edc_threshold", "none"),
        ("vlm4fiqa_evr_fnmr_at_fmr", "none"),
        ("largest_tie_group", "none"),
        ("levels_pearson", "higher"),
        ("levels_mae", "lower"),
        ("levels_bias", "none"),
        ("levels_n", "none"),
        ("hallucination_rate", "lower"),
        ("hard_recall", "higher"),
        ("clean_fp0_share", "higher"),
        ("clean_fp2_share", "none"),
        ("hamming_mean", "lower"),
        ("hamming_d0_share", "higher"),
        ("hamming_d3_share", "none"),
        ("blur_f1", "higher"),
        ("poor_lighting_precision", "higher"),
        ("ladder_spearman_blur", "lower"),
        ("n_unparsed_clean", "none"),
        ("clean_n", "none"),
        ("a_metric_nobody_defined", "none"),
    ],
)
def test_metric_direction(metric: str, direction: str) -> None:
    assert metric_direction(metric) == direction


def test_unknown_metrics_have_no_rule() -> None:
    assert direction_rule("a_metric_nobody_defined") is None
    assert direction_rule("accuracy") is not None


@pytest.fixture(scope="module")
def all_tasks_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("all") / "random"
    code = _main("eval", "--model", "random", "--task", MINI_TASKS, "--output-dir", folder)
    assert code == 0
    return folder


def _main(*args: str | Path) -> int:
    """Run the CLI outside a test's capsys (module fixtures)."""
    import sys

    from fiqabench.cli import main

    saved, sys.argv = sys.argv, ["fiqabench", *map(str, args), "--no-progress"]
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = saved
    return 0


def test_every_builtin_metric_has_a_deliberate_direction(all_tasks_run: Path) -> None:
    results = read_results(all_tasks_run)
    undecided = {
        f"{name}:{metric}"
        for name, entry in results.results.items()
        for metric in entry.metrics
        if metric not in compare_module.EXCLUDED_METRICS and direction_rule(metric) is None
    }
    assert not undecided, "add these metrics to compare_stats.DIRECTIONS"
    assert len({r[0] for r in DIRECTIONS}) == len(DIRECTIONS)


# ---------------------------------------------------------------------------------------------
# Resampling primitives


def test_weighted_means_equal_the_means_of_explicit_resamples() -> None:
    rng = np.random.default_rng(3)
    values = rng.random(25)
    mask = rng.random(25) > 0.3
    draws = bootstrap_draws(25, 50, rng)
    got = weighted_means(draw_counts(draws, 25), mask, values)
    for row, drawn in enumerate(draws):
        kept = [values[i] for i in drawn if mask[i]]
        assert got[row] == pytest.approx(np.mean(kept))


def test_weighted_means_are_nan_where_nothing_masked_was_drawn() -> None:
    counts = np.array([[2, 0, 0], [0, 1, 2]], dtype=np.int64)
    mask = np.array([False, True, True])
    got = weighted_means(counts, mask, np.array([1.0, 0.0, 1.0]))
    assert math.isnan(got[0])
    assert got[1] == pytest.approx(2 / 3)


def test_half_sample_draws_are_distinct_halves() -> None:
    draws = half_sample_draws(11, 30, np.random.default_rng(0))
    assert draws.shape == (30, 5)
    assert all(len(set(row)) == 5 and row.max() < 11 for row in draws)


def test_bootstrap_ci_of_a_known_paired_delta() -> None:
    # 400 paired items: 40 right in the base only, 10 right in the candidate only. The delta is
    # (c - b) / n = -0.075 and its sampling variance is ((b + c)/n - delta^2) / n.
    n, b, c = 400, 40, 10
    base = np.zeros(n)
    candidate = np.zeros(n)
    base[:b] = 1.0
    candidate[b : b + c] = 1.0
    base[b + c : 200], candidate[b + c : 200] = 1.0, 1.0  # concordant right
    mask = np.ones(n, dtype=bool)
    counts = draw_counts(bootstrap_draws(n, 4000, np.random.default_rng(1)), n)
    deltas = weighted_means(counts, mask, candidate) - weighted_means(counts, mask, base)
    delta = (c - b) / n
    estimate = bootstrap_estimate(delta, deltas, alpha=0.05)
    assert estimate.ci is not None and estimate.note is None
    sd = math.sqrt(((b + c) / n - delta**2) / n)
    assert estimate.ci[0] == pytest.approx(delta - 1.96 * sd, abs=0.004)
    assert estimate.ci[1] == pytest.approx(delta + 1.96 * sd, abs=0.004)
    # p from the bootstrap SD: z = 0.075 / 0.01727 = 4.34.
    assert estimate.p == pytest.approx(normal_p(delta, sd), rel=0.3)
    assert estimate.p is not None and 1e-6 < estimate.p < 1e-4


def test_half_sample_ci_has_the_width_of_the_sampling_distribution() -> None:
    # For a mean, the delete-d jackknife variance of half-samples is S^2 / n.
    rng = np.random.default_rng(7)
    values = rng.normal(size=301)
    draws = half_sample_draws(values.size, 3000, rng)
    means = values[draws].mean(axis=1)
    estimate = half_sample_estimate(0.0, means, values.size, alpha=0.05)
    assert estimate.ci is not None and estimate.p == 1.0
    se = values.std(ddof=1) / math.sqrt(values.size)
    assert estimate.ci[1] == pytest.approx(1.959964 * se, rel=0.05)
    assert estimate.ci[0] == pytest.approx(-1.959964 * se, rel=0.05)
    shifted = half_sample_estimate(2 * se, means + 2 * se, values.size, alpha=0.05)
    assert shifted.p == pytest.approx(2 * (1 - 0.9772499), rel=0.1)  # z = 2


def test_intervals_are_withheld_when_too_many_resamples_are_undefined() -> None:
    deltas = np.array([0.1] * 90 + [np.nan] * 10)
    withheld = bootstrap_estimate(0.1, deltas, alpha=0.05)
    assert withheld.ci is None and withheld.p is None
    assert withheld.note == "undefined in 10 of 100 resamples"
    assert half_sample_estimate(0.1, deltas, 40, alpha=0.05).ci is None
    kept = bootstrap_estimate(0.1, np.array([0.1] * 97 + [np.nan] * 3), alpha=0.05)
    assert kept.ci is not None and kept.ci[0] == pytest.approx(0.1) == kept.ci[1]
    assert kept.p == 0.0  # every resample moved by the same amount
    assert kept.note == "3 of 100 resamples undefined, left out"


def test_normal_p() -> None:
    assert normal_p(1.959964, 1.0) == pytest.approx(0.05, rel=1e-5)
    assert normal_p(-1.959964, 1.0) == pytest.approx(0.05, rel=1e-5)
    assert normal_p(0.0, 0.0) == 1.0 and normal_p(0.2, 0.0) == 0.0


def test_holm_matches_a_hand_computed_example() -> None:
    # Sorted 0.01, 0.02, 0.03, 0.5 times 4, 3, 2, 1 = 0.04, 0.06, 0.06, 0.5; monotone.
    assert holm([0.03, 0.5, 0.01, 0.02]) == pytest.approx([0.06, 0.5, 0.04, 0.06])
    assert holm([0.4, 0.3]) == pytest.approx([0.6, 0.6])  # 0.3 x 2 = 0.6, then max(0.6, 0.4)
    assert holm([0.9, 0.8, 0.7]) == pytest.approx([1.0, 1.0, 1.0])
    assert holm([]) == []


@pytest.mark.parametrize(
    ("direction", "values", "ci", "p", "expected"),
    [
        ("higher", (0.5, 0.45), (-0.08, -0.02), 0.001, "regression"),
        ("higher", (0.5, 0.45), (-0.08, 0.01), 0.001, "unchanged"),  # CI covers 0
        ("higher", (0.5, 0.45), (-0.08, -0.02), 0.2, "unchanged"),  # McNemar not significant
        ("higher", (0.5, 0.495), (-0.008, -0.002), 0.001, "unchanged"),  # within the tolerance
        ("higher", (0.5, 0.55), (0.02, 0.08), None, "improved"),
        ("lower", (0.5, 0.55), (0.02, 0.08), None, "regression"),
        ("lower", (0.5, 0.45), (-0.08, -0.02), None, "improved"),
        ("lower", (0.5, 0.55), None, None, "no_ci"),
        ("higher", (0.5, None), None, None, "lost"),
        ("higher", (None, 0.5), None, None, "undefined"),
        ("higher", (None, None), None, None, "undefined"),
        ("none", (2.0, 1.0), (-2.0, -0.5), None, "not_gated"),
        ("none", (2.0, None), None, None, "not_gated"),
    ],
)
def test_verdict(
    direction: Direction,
    values: tuple[float | None, float | None],
    ci: tuple[float, float] | None,
    p: float | None,
    expected: str,
) -> None:
    assert verdict(direction, values, ci, p, tolerance=0.01, alpha=0.05) == expected


# ---------------------------------------------------------------------------------------------
# The engine on real runs


def test_identical_runs_have_zero_deltas_and_pass(qa_base: Path) -> None:
    report = _compare(qa_base, qa_base)
    assert report.passed
    accuracy = _metric(report, "mini-qa", "accuracy")
    assert accuracy.base == accuracy.candidate == 0.5
    assert accuracy.delta == 0.0 and accuracy.ci == (0.0, 0.0)
    assert accuracy.mcnemar is not None and accuracy.mcnemar.p == 1.0
    assert accuracy.method == "bootstrap" and accuracy.verdict == "unchanged"
    assert report.tasks[0].samples.shared == 240
    errors = _metric(report, "mini-qa", "error_rate")  # over all samples, not the task's zero
    assert (errors.base, errors.candidate, errors.delta) == (0.0, 0.0, 0.0)
    assert errors.direction == "lower" and errors.verdict == "unchanged"
    assert errors.mcnemar is not None and (errors.mcnemar.b, errors.mcnemar.c) == (0, 0)
    assert [e.verdict for t in report.tasks for e in t.entries] == ["compared"]


def test_flipped_answers_are_a_regression(qa_base: Path, candidate_of: CandidateFactory) -> None:
    candidate = candidate_of(flipped(20))
    report = _compare(qa_base, candidate)
    accuracy = _metric(report, "mini-qa", "accuracy")
    assert accuracy.delta == pytest.approx(-20 / 180)
    assert accuracy.mcnemar is not None
    assert (accuracy.mcnemar.b, accuracy.mcnemar.c) == (20, 0)
    assert accuracy.mcnemar.p == pytest.approx(mcnemar_exact(20, 0))
    assert accuracy.ci is not None and accuracy.ci[1] < 0
    assert accuracy.verdict == "regression"
    assert not report.passed
    assert ("mini-qa", "accuracy") in {(e.entry, m.metric) for e, m in report.regressions()}


def test_bootstrap_route_equals_recomputing_with_the_task(
    qa_base: Path, candidate_of: CandidateFactory
) -> None:
    # The vectorised per-sample route and the task's own aggregate agree draw by draw.
    base, candidate = load_run(qa_base), load_run(candidate_of(flipped(12)))
    registry = task_registry(base, candidate)
    paired = pair_records(
        {r.sample_id: r for r in base.records}, {r.sample_id: r for r in candidate.records}
    )
    task = prepared_task(registry, "mini-qa", paired.base)
    draws = bootstrap_draws(len(paired.units), 15, np.random.default_rng(5))
    fast = bootstrap_deltas(per_sample_metrics(task, paired.base, paired.candidate), paired, draws)
    slow = aggregate_draws(task, paired, draws, seed=0)
    for metric in ("accuracy", "accuracy_single", "accuracy_multi", "accuracy_tf"):
        draws_b, draws_c = slow[("mini-qa", metric)]
        np.testing.assert_allclose(fast[metric], draws_c - draws_b, atol=1e-12)


def _judge_open_answers(folder: Path, scores: list[float]) -> None:
    """Score the open answers as an LLM judge leaves them: `ok`, with a score in [0, 1]."""
    records = read_samples(folder)
    opened = [r for r in records if r.meta.get("type") == "open"]
    for record, score in zip(opened, scores, strict=True):
        record.status, record.score = "ok", score
    write_samples(folder, records)


def test_judged_open_answers_take_the_bootstrap_route(candidate_of: CandidateFactory) -> None:
    scores = np.random.default_rng(2).random(60)
    base, candidate = candidate_of(_base_right(), "base"), candidate_of(_base_right())
    _judge_open_answers(base, list(scores))
    _judge_open_answers(candidate, list(np.clip(scores - 0.25, 0.0, 1.0)))
    open_score = _metric(_compare(base, candidate), "mini-qa", "open_score")
    assert open_score.method == "bootstrap" and open_score.mcnemar is None
    assert open_score.base == pytest.approx(scores.mean())
    assert open_score.delta == pytest.approx(np.clip(scores - 0.25, 0, 1).mean() - scores.mean())
    assert open_score.verdict == "regression"


def test_a_per_sample_definition_that_disagrees_falls_back_to_the_task(
    qa_base: Path, candidate_of: CandidateFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = compare_module._qa_columns

    def broken(records: list[Record]) -> dict[str, compare_module.Column]:
        columns = real(records)
        mask, values, correctness = columns["accuracy"]
        columns["accuracy"] = (mask, 1.0 - values, correctness)  # not the task's definition
        return columns

    monkeypatch.setattr(compare_module, "_qa_columns", broken)
    report = _compare(qa_base, candidate_of(flipped(20)), n_boot_aggregate=20)
    accuracy = _metric(report, "mini-qa", "accuracy")
    assert accuracy.method == "half-sample" and accuracy.mcnemar is None
    assert accuracy.delta == pytest.approx(-20 / 180)
    assert _metric(report, "mini-qa", "accuracy_tf").method == "bootstrap"


def test_tolerance_suppresses_a_small_regression(
    qa_base: Path, candidate_of: CandidateFactory
) -> None:
    candidate = candidate_of(flipped(8))
    strict = _metric(_compare(qa_base, candidate, tolerance=0.01), "mini-qa", "accuracy")
    assert strict.delta == pytest.approx(-8 / 180)  # -0.044, McNemar p = 2/256
    assert strict.mcnemar is not None and strict.mcnemar.p == pytest.approx(2 / 256)
    assert strict.verdict == "regression"
    lenient = _metric(_compare(qa_base, candidate, tolerance=0.05), "mini-qa", "accuracy")
    assert lenient.verdict == "unchanged"


def test_the_holm_correction_counts_every_gated_metric(
    qa_base: Path, candidate_of: CandidateFactory
) -> None:
    # 6 single-choice answers turned wrong: McNemar p = 2 / 2^6 for accuracy and for
    # accuracy_single; over the 6 gated metrics (5 QA metrics and error_rate) Holm makes that
    # 6 x 0.03125 = 0.1875.
    samples = TaskRegistry().get("mini-qa").samples()
    single = {s.id for s in samples if s.item.type == "single"}
    lost = sorted(_base_right() & single)[:6]
    candidate = candidate_of(_base_right() - set(lost))
    alone = _metric(_compare(qa_base, candidate, correction="none"), "mini-qa", "accuracy")
    assert alone.p == pytest.approx(2 / 64) and alone.p_adjusted is None
    assert alone.ci is not None and alone.ci[1] < 0
    assert alone.verdict == "regression"
    adjusted = _metric(_compare(qa_base, candidate), "mini-qa", "accuracy")
    assert adjusted.p_adjusted == pytest.approx(6 * 2 / 64)
    assert adjusted.verdict == "unchanged"


def test_a_better_candidate_is_improved(qa_base: Path, candidate_of: CandidateFactory) -> None:
    better = candidate_of(_base_right() | set(_closed_ids()[1:40:2]))
    report = _compare(qa_base, better)
    accuracy = _metric(report, "mini-qa", "accuracy")
    assert accuracy.delta == pytest.approx(20 / 180)
    assert accuracy.verdict == "improved" and report.passed


def _rewrite_samples(folder: Path, drop: int, errors: int) -> None:
    records = read_samples(folder)
    kept = records[drop:]
    for record in kept[:errors]:
        record.status, record.error, record.correct = "error", "timeout", None
    write_samples(folder, kept)


def test_sample_set_mismatch_is_reported(qa_base: Path, candidate_of: CandidateFactory) -> None:
    candidate = candidate_of(_base_right())
    _rewrite_samples(candidate, drop=10, errors=5)
    report = _compare(qa_base, candidate)
    sets = report.tasks[0].samples
    assert (sets.shared, sets.only_base, sets.only_candidate) == (225, 10, 0)
    assert (sets.error_base, sets.error_candidate) == (0, 5)
    assert _metric(report, "mini-qa", "accuracy").delta == 0.0  # the same answers where shared
    errors = _metric(report, "mini-qa", "error_rate")  # the 230 samples both runs have
    assert errors.delta == pytest.approx(5 / 230)
    assert errors.mcnemar is not None and errors.mcnemar.p == pytest.approx(2 / 32)
    assert errors.verdict == "unchanged" and report.passed  # 5 errors are not significant


def test_scalar_regression_is_found_by_half_samples(tmp_path: Path) -> None:
    random = tmp_path / "random"
    code = _main(
        "eval", "--model", "random", "--task", "mini-fiqa", "--variants", "simple",
        "--limit", "60", "--output-dir", random,
    )  # fmt: skip
    assert code == 0
    # The base scores every image by its MOS: perfect agreement, which random scores lose.
    perfect = tmp_path / "perfect"
    shutil.copytree(random, perfect)
    results, records = read_results(random), read_samples(random)
    task = TaskRegistry().get("mini-fiqa")
    assert isinstance(task, ScalarTask)
    task.use_variants(["simple"])
    assert task.mos is not None
    for record in records:
        record.score = task.mos[record.meta["image_id"]]
    results.results.update(summarise(task, records, results.manifest.model, seed=0))
    write_results(perfect, results)
    write_samples(perfect, records)

    report = _compare(perfect, random, n_boot_aggregate=40)
    srocc = _metric(report, "mini-fiqa:simple", "srocc")
    assert srocc.base == pytest.approx(1.0)
    assert srocc.method == "half-sample" and srocc.n_resamples == 40
    assert srocc.ci is not None and srocc.ci[1] < 0
    assert srocc.verdict == "regression"
    assert report.tasks[0].samples.units == 60
    reverse = _metric(_compare(random, perfect, n_boot_aggregate=40), "mini-fiqa:simple", "srocc")
    assert reverse.verdict == "improved"


def test_identical_runs_of_every_task_kind_pass(all_tasks_run: Path) -> None:
    report = _compare(all_tasks_run, all_tasks_run, n_boot_aggregate=8)
    assert [(e.entry, m.metric) for e, m in report.regressions()] == []
    assert {t.kind for t in report.tasks} == {"qa", "scalar", "detection"}
    rows = [m for t in report.tasks for e in t.entries for m in e.metrics]
    # Exact zeros, but for float noise in refits (the logistic fit of plcc_logistic, whose
    # half-sample refits vary by about 1e-11 from run to run).
    assert [m for m in rows if m.delta is not None and abs(m.delta) > 1e-12] == []
    assert [m for m in rows if m.ci is not None and max(map(abs, m.ci)) > 1e-9] == []
    assert {m.method for m in rows} >= {"bootstrap", "half-sample"}
    assert {"mini-fiqa:consistency", "mini-degradation"} <= {
        e.entry for t in report.tasks for e in t.entries
    }


def test_a_metric_the_candidate_no_longer_yields_fails_the_gate(
    all_tasks_run: Path, tmp_path: Path
) -> None:
    # Every detection answer unparseable: the rates are undefined on the same samples.
    candidate = tmp_path / "unparsed"
    shutil.copytree(all_tasks_run, candidate)
    records = read_samples(candidate)
    for record in records:
        if record.task == "mini-degradation":
            record.status, record.parsed, record.correct, record.score = (
                "parse_fail",
                None,
                None,
                None,
            )
    write_samples(candidate, records)
    report = _compare(all_tasks_run, candidate, n_boot_aggregate=4)
    hallucination = _metric(report, "mini-degradation", "hallucination_rate")
    assert hallucination.base == 1.0 and hallucination.candidate is None
    assert hallucination.verdict == "lost"
    assert not report.passed
    assert _metric(report, "mini-degradation", "n_unparsed_clean").verdict == "not_gated"
    assert _metric(report, "mini-qa", "accuracy").verdict == "unchanged"


def _fail(folder: Path, failed: Callable[[Record], bool]) -> None:
    """Turn the records `failed` selects into infrastructure errors."""
    records = read_samples(folder)
    for record in records:
        if failed(record):
            record.status, record.error = "error", "timeout"
            record.parsed, record.correct, record.score = None, None, None
    write_samples(folder, records)


def _entry(report: ComparisonReport, name: str) -> EntryComparison:
    return next(e for t in report.tasks for e in t.entries if e.entry == name)


def test_a_rise_in_errors_is_a_regression(qa_base: Path, candidate_of: CandidateFactory) -> None:
    # The same answers, but 30 calls failed: the quality metrics do not move, error_rate does.
    candidate = candidate_of(_base_right())
    failed = set(sorted(r.sample_id for r in read_samples(candidate))[:30])
    _fail(candidate, lambda r: r.sample_id in failed)
    report = _compare(qa_base, candidate)
    assert _metric(report, "mini-qa", "accuracy").verdict == "unchanged"
    errors = _metric(report, "mini-qa", "error_rate")
    assert errors.base == 0.0 and errors.candidate == pytest.approx(30 / 240)
    assert errors.mcnemar is not None and (errors.mcnemar.b, errors.mcnemar.c) == (30, 0)
    assert errors.mcnemar.p == pytest.approx(2 / 2**30)
    assert errors.method == "bootstrap" and errors.ci is not None and errors.ci[0] > 0
    assert errors.p_adjusted is not None and errors.p_adjusted < 0.05
    assert errors.verdict == "regression" and not report.passed
    assert _entry(report, "mini-qa").verdict == "compared"
    # Fewer errors than the base is an improvement; a rise within the tolerance passes.
    assert _metric(_compare(candidate, qa_base), "mini-qa", "error_rate").verdict == "improved"
    lenient = _compare(qa_base, candidate, tolerance=0.2)
    assert _metric(lenient, "mini-qa", "error_rate").verdict == "unchanged" and lenient.passed


def test_a_task_the_candidate_failed_outright_is_lost(all_tasks_run: Path, tmp_path: Path) -> None:
    # Every detection call and every call of one prompt variant failed; mini-qa still shares
    # samples, which used to let the gate pass.
    candidate = tmp_path / "failed"
    shutil.copytree(all_tasks_run, candidate)
    _fail(
        candidate,
        lambda r: r.task == "mini-degradation" or r.meta.get("variant") == "simple",
    )
    report = _compare(all_tasks_run, candidate, n_boot_aggregate=4)
    assert not report.passed
    lost = {e.entry: e for e in report.lost_entries()}
    assert set(lost) == {"mini-degradation", "mini-fiqa:simple"}
    detection = lost["mini-degradation"]
    n = sum(r.task == "mini-degradation" for r in read_samples(all_tasks_run))
    assert detection.reason == (
        f"none of the base's {n} successful samples of 'mini-degradation' succeeded in the "
        f"candidate ({n} errors)"
    )
    assert detection.n == 0 and [m.metric for m in detection.metrics] == ["error_rate"]
    errors = detection.metrics[0]
    assert (errors.base, errors.candidate, errors.verdict) == (0.0, 1.0, "regression")
    assert _metric(report, "mini-fiqa:simple", "error_rate").verdict == "regression"
    # The other entries are compared as before.
    assert _entry(report, "mini-qa").verdict == "compared"
    assert _metric(report, "mini-qa", "accuracy").verdict == "unchanged"
    assert _metric(report, "mini-fiqa:levels", "srocc").delta == 0.0
    assert _metric(report, "mini-fiqa:levels", "error_rate").verdict == "unchanged"
    markdown = render_markdown(report)
    assert markdown.startswith("## fiqabench compare: ⚠️ REGRESSION (2 metric(s), 2 lost entry")
    assert "- `mini-degradation` **lost**: none of the base's" in markdown


def test_an_entry_missing_from_the_candidate_is_lost(
    all_tasks_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate = tmp_path / "no-detection"
    shutil.copytree(all_tasks_run, candidate)
    results = read_results(candidate)
    del results.results["mini-degradation"], results.results["mini-fiqa:utility"]
    write_results(candidate, results)
    write_samples(candidate, [r for r in read_samples(candidate) if r.task != "mini-degradation"])
    report = _compare(all_tasks_run, candidate, n_boot_aggregate=4)
    assert report.entries_only_base == ["mini-fiqa:utility", "mini-degradation"]
    detection = _entry(report, "mini-degradation")
    assert (detection.verdict, detection.candidate, detection.metrics) == ("lost", None, [])
    assert detection.reason == "the candidate has no result for 'mini-degradation'"
    assert _entry(report, "mini-fiqa:utility").verdict == "lost"
    assert [e.entry for e in report.lost_entries()] == ["mini-fiqa:utility", "mini-degradation"]
    assert not report.passed and report.regressions() == []

    code, out, _ = run_cli(
        "compare", all_tasks_run, candidate, "--n-boot-aggregate", "4", "--no-progress",
        capsys=capsys,
    )  # fmt: skip
    assert code == 1
    assert "LOST mini-degradation: the candidate has no result" in out
    assert "REGRESSION in mini-fiqa:utility (lost), mini-degradation (lost)" in out
    markdown = (candidate / "compare.md").read_text()
    assert "- `mini-degradation` **lost**: the candidate has no result for" in markdown
    assert "> ⚠️ **lost**: the candidate has no result for 'mini-degradation'" in markdown


def test_entry_members_group_records_as_the_tasks_do(all_tasks_run: Path) -> None:
    records = read_samples(all_tasks_run)
    registry = TaskRegistry()
    for name in ("mini-qa", "mini-fiqa", "mini-degradation"):
        mine = [r for r in records if r.task == name]
        task = prepared_task(registry, name, mine)
        members = task.entry_members(mine)
        for entry, result in task.aggregate(mine, seed=0).items():
            total = result.counts.get("total", len(mine))  # the cross-prompt entry: all
            assert len(members[entry]) == total, entry


def test_compare_shares_its_rules_with_the_tasks_and_validation() -> None:
    from fiqabench.benchmark.metrics import numbers_match
    from fiqabench.leaderboard.validate_diff import same
    from fiqabench.tasks import qa

    assert vars(compare_module)["CLOSED_TYPES"] is qa.CLOSED_TYPES  # one definition
    assert "_QA_CLOSED" not in vars(compare_module)
    pairs = [(0.5, 0.5 * (1 + 5e-10)), (0.5, 0.5 * (1 + 5e-9)), (0.0, 1e-13), (0.0, 1e-9)]
    assert [numbers_match(a, b) for a, b in pairs] == [True, False, True, False]
    assert [same(a, b) for a, b in pairs] == [compare_module._same(a, b) for a, b in pairs]
    assert [same(a, b) for a, b in pairs] == [True, False, True, False]


# ---------------------------------------------------------------------------------------------
# The command


def test_cli_identical_runs_exit_0_with_a_report(
    qa_base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate = tmp_path / "candidate"
    shutil.copytree(qa_base, candidate)
    code, out, _ = run_cli("compare", qa_base, candidate, "--no-progress", capsys=capsys)
    assert code == 0
    assert "PASS" in out
    markdown = (candidate / "compare.md").read_text()
    assert markdown.startswith("## fiqabench compare: ✅ PASS")
    assert "| `accuracy` | ↑ | 0.5000 | 0.5000 | +0.0000 | [+0.0000, +0.0000] | 1.000 |" in markdown


def test_cli_regression_exits_1_and_names_it(
    qa_base: Path,
    candidate_of: CandidateFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    candidate = candidate_of(flipped(20))
    report, as_json = tmp_path / "out" / "compare.md", tmp_path / "compare.json"
    code, out, _ = run_cli(
        "compare", qa_base, candidate, "--report", report, "--json", as_json, "--no-progress",
        capsys=capsys,
    )  # fmt: skip
    assert code == 1
    assert "REGRESSION" in out
    markdown = report.read_text()
    assert markdown.startswith("## fiqabench compare: ⚠️ REGRESSION (")
    assert "### Regressions" in markdown
    assert "- `mini-qa` **accuracy**: 0.5000 → 0.3889 (Δ -0.1111" in markdown
    assert "McNemar p = 1.9e-06" in markdown
    document = json.loads(as_json.read_text())
    assert document["schema_version"] == "fiqabench.compare/1"
    rows = {m["metric"]: m for m in document["tasks"][0]["entries"][0]["metrics"]}
    assert rows["accuracy"]["verdict"] == "regression"
    assert rows["accuracy"]["mcnemar"] == {"b": 20, "c": 0, "p": pytest.approx(2 / 2**20)}


def test_cli_tolerance_lets_a_small_regression_pass(
    qa_base: Path, candidate_of: CandidateFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate = candidate_of(flipped(8))
    args = ("compare", qa_base, candidate, "--no-progress")
    assert run_cli(*args, capsys=capsys)[0] == 1
    assert run_cli(*args, "--tolerance", "0.05", capsys=capsys)[0] == 0


def test_cli_a_candidate_whose_calls_all_failed_exits_1(
    qa_base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    all_errors = tmp_path / "all-errors"
    shutil.copytree(qa_base, all_errors)
    _rewrite_samples(all_errors, drop=0, errors=240)
    code, out, _ = run_cli("compare", qa_base, all_errors, "--json", tmp_path / "c.json",
                           capsys=capsys)  # fmt: skip
    assert code == 1
    assert "LOST mini-qa: none of the base's 240 successful samples" in out
    markdown = (all_errors / "compare.md").read_text()
    assert markdown.startswith("## fiqabench compare: ⚠️ REGRESSION (1 metric(s), 1 lost entry")
    assert (
        "- `mini-qa` **lost**: none of the base's 240 successful samples of 'mini-qa'" in markdown
    )
    assert "- `mini-qa` **error_rate**: 0.0000 → 1.0000 (Δ +1.0000" in markdown
    entry = json.loads((tmp_path / "c.json").read_text())["tasks"][0]["entries"][0]
    assert entry["verdict"] == "lost" and entry["reason"].endswith("(240 errors)")
    assert [m["metric"] for m in entry["metrics"]] == ["error_rate"]


def test_cli_report_to_stdout(qa_base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        "compare", qa_base, qa_base, "--report", "-", "--no-progress", capsys=capsys
    )
    assert code == 0
    assert out.startswith("## fiqabench compare: ✅ PASS")
    assert "PASS" in err  # the terminal tables go to stderr


def test_cli_warns_about_protocol_and_sample_differences(
    qa_base: Path, candidate_of: CandidateFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate = candidate_of(_base_right())
    results = read_results(candidate)
    results.results["mini-qa"].prompt_template_sha256 = {"user": "0" * 64}
    results.manifest.model = results.manifest.model.model_copy(update={"alias": "new|model"})
    write_results(candidate, results)
    _rewrite_samples(candidate, drop=10, errors=5)
    code, _, _ = run_cli("compare", qa_base, candidate, "--no-progress", capsys=capsys)
    assert code == 0
    markdown = (candidate / "compare.md").read_text()
    assert "> ⚠️ prompt templates differ: the delta mixes the model change" in markdown
    assert "225 shared samples (225 resampling units) · 10 only in the base" in markdown
    assert "5 errors in the candidate" in markdown
    assert "new\\|model" in markdown  # a pipe cannot break the table


def test_cli_bad_inputs_exit_2(
    qa_base: Path, tmp_path: Path, all_tasks_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    code, _, err = run_cli("compare", qa_base, missing, capsys=capsys)
    assert code == 2 and f"{missing}: not a folder" in err

    no_samples = tmp_path / "no-samples"
    no_samples.mkdir()
    shutil.copy(qa_base / "results.json", no_samples / "results.json")
    code, _, err = run_cli("compare", qa_base, no_samples, capsys=capsys)
    assert code == 2 and "no samples.jsonl here" in err

    malformed = tmp_path / "malformed"
    shutil.copytree(qa_base, malformed)
    lines = (malformed / "samples.jsonl").read_text().splitlines()
    lines[2] = "{not json"
    (malformed / "samples.jsonl").write_text("\n".join(lines) + "\n")
    code, _, err = run_cli("compare", qa_base, malformed, capsys=capsys)
    assert code == 2 and "samples.jsonl:3: malformed JSON" in err

    duplicated = tmp_path / "duplicated"
    shutil.copytree(qa_base, duplicated)
    with (duplicated / "samples.jsonl").open("a") as handle:
        handle.write(lines[0] + "\n")
    code, _, err = run_cli("compare", qa_base, duplicated, capsys=capsys)
    assert code == 2 and "two records for sample 'mqa-0001'" in err

    degradation_only = tmp_path / "degradation-only"
    shutil.copytree(all_tasks_run, degradation_only)
    results = read_results(degradation_only)
    results.results = {"mini-degradation": results.results["mini-degradation"]}
    write_results(degradation_only, results)
    code, _, err = run_cli("compare", qa_base, degradation_only, capsys=capsys)
    assert code == 2 and "the runs share no result entry" in err

    all_errors = tmp_path / "all-errors"  # both runs: there is nothing to compare
    shutil.copytree(qa_base, all_errors)
    _rewrite_samples(all_errors, drop=0, errors=240)
    code, _, err = run_cli("compare", all_errors, all_errors, capsys=capsys)
    assert code == 2 and "share no sample that succeeded in both" in err

    code, _, err = run_cli("compare", qa_base, qa_base, "--tolerance", "-0.1", capsys=capsys)
    assert code == 2 and "--tolerance" in err
    code, _, err = run_cli(
        "compare", qa_base, qa_base, "--report", "-", "--json", "-", capsys=capsys
    )
    assert code == 2 and "cannot both go to stdout" in err


def test_cli_needs_the_folder_of_an_external_task(
    task_folder: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import qa_item

    folder = task_folder([qa_item(i) for i in range(8)])
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text(
        "".join(json.dumps({"sample_id": f"q{i:05d}", "response": "B"}) + "\n" for i in range(8))
    )
    run = tmp_path / "run"
    args = ("score", "--task", "ext-qa", "--predictions", predictions, "--output-dir", run)
    assert run_cli(*args, "--include-path", folder, capsys=capsys)[0] == 0
    code, _, err = run_cli("compare", run, run, "--no-progress", capsys=capsys)
    assert code == 2 and "task 'ext-qa' is not defined here; pass --include-path" in err
    code, _, _ = run_cli(
        "compare", run, run, "--include-path", folder, "--no-progress", capsys=capsys
    )
    assert code == 0


def test_the_documented_workflow_uses_real_options() -> None:
    # docs/examples/fiqabench-gate.yml must keep working as the commands change.
    import shlex

    import yaml

    from fiqabench.cli import cli

    workflow = Path(__file__).parent.parent / "docs" / "examples" / "fiqabench-gate.yml"
    steps = yaml.safe_load(workflow.read_text())["jobs"]["gate"]["steps"]
    scripts = [str(step.get("run", "")).replace("\\\n", " ") for step in steps]
    commands = [
        shlex.split(line)
        for script in scripts
        for line in script.splitlines()
        if line.strip().startswith("fiqabench ")
    ]
    assert [c[1] for c in commands] == ["eval", "compare"]
    for command in commands:
        params = cli.commands[command[1]].params
        known = {option for p in params for option in (*p.opts, *p.secondary_opts)}
        options = {token for token in command[2:] if token.startswith("--")}
        assert options <= known, f"{command[1]}: unknown {sorted(options - known)}"
