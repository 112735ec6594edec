"""The statistics of `fiqabench compare`: which way each metric is better, McNemar's exact test,
paired resampling draws and the confidence intervals of a delta, and the regression verdict.

Two interval methods, both paired (the same draw of shared samples for base and candidate):
- `bootstrap`: resamples with replacement; the interval is the (alpha/2, 1 - alpha/2)
  percentiles of the resampled deltas, p comes from their SD. Used for metrics that are a mean
  over records, computed for all resamples at once as count-weighted ratios.
- `half-sample`: subsets of m = n // 2 units without replacement, recomputed by the task; the
  interval (and p) is normal, delta +/- z * sqrt(v), with the delete-d jackknife variance
  v = m / (n - m) * mean((d_s - mean d_s)^2) (Shao & Wu 1989, d = n - m). The factor makes v
  exact for a mean: a subset mean varies by (1/m - 1/n) S^2, and m / (n - m) turns that into
  S^2 / n. With d ~ n/2 the estimator stays consistent for non-smooth statistics (quantiles,
  thresholds), and no record is ever duplicated, which tasks that key records by image need.

Many metrics are tested at once (about 160 for the mini suite), so by default significance is
judged on Holm-adjusted p-values over every gated metric of a comparison: a run against itself
under another seed otherwise "regresses" on a few metrics by chance.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

Direction = Literal["higher", "lower", "none"]
Verdict = Literal["regression", "lost", "improved", "unchanged", "no_ci", "undefined", "not_gated"]
FAILING: frozenset[Verdict] = frozenset({"regression", "lost"})
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Interval = tuple[float, float]

# Which way is better; the first pattern that matches the whole metric name wins. "none" is
# reported, never gated: counts, thresholds, signed biases, shares of middle buckets. A metric
# that no pattern matches is reported and not gated either.
DIRECTIONS: tuple[tuple[str, Direction, str], ...] = (
    # Every entry (compare.py: over all shared samples, errors included, not by the task)
    (r"error_rate", "lower", "share of samples whose call failed"),
    # Portrait Q&A (tasks/qa.py)
    (r"accuracy(_\w+)?", "higher", "share of closed questions answered correctly"),
    (r"parse_failure_rate", "lower", "share of closed answers that could not be parsed"),
    (r"open_score", "higher", "LLM-judge score of open answers, 0-1"),
    (r"describe_\w+", "higher", "LLM-judge scores of quality descriptions"),
    # Scalar face quality (tasks/scalar.py)
    (r"coverage", "higher", "share of answers that gave a score"),
    (r"srocc|krcc|plcc|plcc_logistic|vquala_score|vquala_score_raw", "higher", "MOS agreement"),
    (r"(iso_edc|vlm4fiqa_evr|vlm4fiqa_evr_fixed)_(auc|pauc_\d+)", "lower", "error-vs-reject area"),
    (r"crfiqa_erc_auc_\S+", "lower", "error-vs-reject area"),
    (r"(\w+_)?(fnmr_at_fmr|threshold)", "none", "set by the face recognizer, not by the scores"),
    (r"distinct_quality_values|largest_tie_group", "none", "tie structure of the scores"),
    (r"imputed_images|mos_n|n_mated|n_nonmated", "none", "a count"),
    (r"scface_monotonic", "none", "a yes/no flag"),
    # Cross-prompt consistency (task:consistency)
    (r"\w+_pearson", "higher", "agreement with the simple prompt"),
    (r"\w+_mae", "lower", "mean absolute difference from the simple prompt"),
    (r"\w+_bias", "none", "a signed mean difference"),
    # Degradation detection (benchmark/detection_metrics.py)
    (r"hallucination_rate", "lower", "clean images with a false artifact"),
    (r"hard_recall", "higher", "mixed images whose hard artifact is flagged"),
    (r"complete3_share", "higher", "mixed images with all three artifacts flagged"),
    (r"clean_fp0_share", "higher", "clean images with no false positive"),
    (r"hamming_d0_share", "higher", "mixed images flagged exactly right"),
    (r"hamming_mean", "lower", "mean Hamming distance to the truth"),
    (r"\w+_(precision|recall|f1)", "higher", "per-artifact detection"),
    (r"ladder_spearman_\w+", "lower", "negative: the score falls as the artifact strengthens"),
    (r"complete[0-2]_share|clean_fp\w+|hamming_d\w+", "none", "one bucket of a distribution"),
    (r"\w+_n|n_unparsed_\w+", "none", "a count"),
)
_COMPILED = tuple((re.compile(pattern), direction) for pattern, direction, _ in DIRECTIONS)

MIN_DEFINED_SHARE = 0.95  # of resamples; below it the CI is withheld, not computed from a few


def direction_rule(name: str) -> int | None:
    """The index in DIRECTIONS of the rule that decides `name`, or None when none does."""
    for index, (pattern, _) in enumerate(_COMPILED):
        if pattern.fullmatch(name):
            return index
    return None


def metric_direction(name: str) -> Direction:
    """Whether a higher or a lower value of `name` is better, or "none" (not gated)."""
    rule = direction_rule(name)
    return "none" if rule is None else DIRECTIONS[rule][1]


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p: b discordant pairs one way, c the other, binomial under 1/2.

    Exact rather than the chi-square approximation, which is poor for the few discordant pairs
    a mini subset gives."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got {b}, {c}")
    if b + c == 0:
        return 1.0
    return float(stats.binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)


# ---------------------------------------------------------------------------------------------
# Draws


def bootstrap_draws(n_units: int, n_draws: int, rng: np.random.Generator) -> IntArray:
    """`n_draws` bootstrap resamples of unit indices, one per row (with replacement)."""
    return rng.integers(0, n_units, size=(n_draws, n_units), dtype=np.int64)


def half_sample_draws(n_units: int, n_draws: int, rng: np.random.Generator) -> IntArray:
    """`n_draws` half-samples, n // 2 unit indices each without replacement, one per row."""
    keys = rng.random((n_draws, n_units))
    return np.argsort(keys, axis=1)[:, : n_units // 2].astype(np.int64)


def draw_counts(draws: IntArray, n_units: int) -> IntArray:
    """How often each unit is drawn, per resample: shape (resamples, units)."""
    resamples = draws.shape[0]
    offsets = (np.arange(resamples, dtype=np.int64) * n_units)[:, None]
    flat = np.bincount((draws + offsets).ravel(), minlength=resamples * n_units)
    return flat.reshape(resamples, n_units).astype(np.int64)


def weighted_means(weights: IntArray, mask: BoolArray, values: FloatArray) -> FloatArray:
    """Per resample (row of `weights`), the mean of `values` over the records in `mask`, each
    counted as often as it was drawn; NaN where no masked record was drawn."""
    denominator = weights @ mask.astype(np.float64)
    numerator = weights @ np.where(mask, values, 0.0)
    means = np.full(denominator.shape, np.nan)
    np.divide(numerator, denominator, out=means, where=denominator > 0)
    return means


# ---------------------------------------------------------------------------------------------
# Intervals


def _defined(deltas: FloatArray) -> tuple[FloatArray | None, str | None]:
    """The finite deltas, or None when too many resamples left the metric undefined."""
    defined = deltas[np.isfinite(deltas)]
    dropped = deltas.size - defined.size
    if deltas.size == 0 or defined.size < max(2.0, MIN_DEFINED_SHARE * deltas.size):
        return None, f"undefined in {dropped} of {deltas.size} resamples"
    return defined, f"{dropped} of {deltas.size} resamples undefined, left out" if dropped else None


@dataclass(frozen=True)
class Estimate:
    """What resampling says about a delta: its CI, a two-sided p-value, and any caveat."""

    ci: Interval | None
    p: float | None
    note: str | None = None


def normal_p(delta: float, se: float) -> float:
    """Two-sided p of `delta` against zero for a normal sampling distribution with SD `se`; a
    delta that no resample moves is certain (p 0), or nothing (p 1) when it is zero."""
    if se <= 0:
        return 1.0 if delta == 0 else 0.0
    return float(2 * stats.norm.sf(abs(delta) / se))


def bootstrap_estimate(delta: float, deltas: FloatArray, alpha: float) -> Estimate:
    """Percentile CI of bootstrap deltas, and p from their SD (normal approximation: unlike a
    count of resamples beyond zero it is not floored at 1/n_boot, which a Holm correction over
    many metrics needs)."""
    defined, note = _defined(deltas)
    if defined is None:
        return Estimate(None, None, note)
    low, high = np.quantile(defined, [alpha / 2, 1 - alpha / 2])
    return Estimate((float(low), float(high)), normal_p(delta, float(defined.std())), note)


def half_sample_estimate(delta: float, deltas: FloatArray, n_units: int, alpha: float) -> Estimate:
    """delta +/- z(1 - alpha/2) * se, se^2 the delete-d jackknife variance of the half-sample
    deltas (module docstring), and the matching normal p."""
    defined, note = _defined(deltas)
    if defined is None:
        return Estimate(None, None, note)
    m = n_units // 2
    se = math.sqrt(m / (n_units - m) * float(np.mean((defined - defined.mean()) ** 2)))
    half_width = float(stats.norm.ppf(1 - alpha / 2)) * se
    return Estimate((delta - half_width, delta + half_width), normal_p(delta, se), note)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order: the i-th smallest of m is
    multiplied by m - i + 1, then made monotone (family-wise error at alpha, any dependence)."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted = [0.0] * len(pvalues)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted


# ---------------------------------------------------------------------------------------------
# Verdict


def verdict(
    direction: Direction,
    values: tuple[float | None, float | None],
    ci: Interval | None,
    p: float | None,
    *,
    tolerance: float,
    alpha: float,
) -> Verdict:
    """The verdict on a metric's (base, candidate) values.

    Regression: worse by more than `tolerance`, the CI excludes zero on the bad side and, when a
    p is given (McNemar's, or one adjusted for multiple testing), p < alpha. Improved: the same
    on the good side. Lost: defined in the base, undefined in the candidate on the same samples
    (e.g. no answer parsed, constant scores); it fails the gate like a regression. A change
    beyond the tolerance without a CI is `no_ci`: neither passed nor failed."""
    base, candidate = values
    if direction == "none":
        return "not_gated"
    if base is not None and candidate is None:
        return "lost"
    if base is None or candidate is None:
        return "undefined"
    delta = candidate - base
    gain = delta if direction == "higher" else -delta
    if abs(gain) <= tolerance:
        return "unchanged"
    if ci is None:
        return "no_ci"
    low, high = ci if direction == "higher" else (-ci[1], -ci[0])  # as gains
    excludes_zero = high < 0 if gain < 0 else low > 0
    if not excludes_zero or (p is not None and p >= alpha):
        return "unchanged"
    return "improved" if gain > 0 else "regression"
