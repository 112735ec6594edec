"""Correlation of predicted quality with mean opinion scores (protocols.md §3).

SROCC is Spearman (average ranks for ties), KRCC is Kendall's tau-b (tie-corrected), PLCC is
Pearson, reported raw and after the 4-parameter logistic mapping of the predictions onto the MOS
scale. Confidence intervals come from a paired percentile bootstrap (scipy.stats.bootstrap): whole
(prediction, MOS) pairs are resampled, and every resample recomputes every metric, the logistic
fit included (with the same fall-back-to-raw rule), so the interval reflects the fit's own
variability. The same seed draws the same resamples for every metric.
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel
from scipy import optimize, special, stats

from fiqabench.errors import UserError

PROTOCOL = "mos-correlation/1"
CI_LEVEL = 0.95
MIN_PAIRS = 3
LOGISTIC_PARAMS = 4
METRICS = ("srocc", "krcc", "plcc", "plcc_logistic", "vquala_score", "vquala_score_raw")

FloatArray = npt.NDArray[np.float64]


class Estimate(BaseModel):
    """One metric and its 95 % CI; `reason` says why the value or the CI is None."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    reason: str | None = None


class LogisticFit(BaseModel):
    """The 4-parameter logistic mapping, or why the raw predictions were used instead."""

    params: list[float] | None = None
    fallback: bool = False
    reason: str | None = None


class CorrelationResult(BaseModel):
    """Agreement of predictions with MOS; `model_dump()` is JSON-safe (no NaN or inf).

    `vquala_score` = (SROCC + PLCC after the logistic mapping) / 2. The VQualA 2025 FIQA challenge
    defines its score as (SROCC + PLCC) / 2 without saying whether PLCC follows a nonlinear
    mapping. We map first, the usual IQA convention (VQEG) and the reading under which PLCC is
    comparable across models with differently scaled outputs; `vquala_score_raw` uses raw Pearson,
    so both readings, and their components, are in every result.
    """

    protocol: str = PROTOCOL
    n: int
    srocc: Estimate
    krcc: Estimate
    plcc: Estimate
    plcc_logistic: Estimate
    vquala_score: Estimate
    vquala_score_raw: Estimate
    logistic_fallback: bool
    logistic_fallback_reason: str | None
    logistic_params: list[float] | None
    ci_level: float = CI_LEVEL
    bootstrap_resamples: int
    seed: int


def logistic4(x: npt.ArrayLike, b1: float, b2: float, b3: float, b4: float) -> FloatArray:
    """y = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2, via expit so large |x| cannot overflow."""
    z = (np.asarray(x, dtype=np.float64) - b3) / abs(b4)
    return np.asarray((b1 - b2) * special.expit(z) + b2, dtype=np.float64)


def undefined_correlation_reason(
    first: FloatArray, second: FloatArray, labels: tuple[str, str] = ("first", "second")
) -> str | None:
    """Why a correlation of two equal-length samples is undefined, or None when it is defined."""
    if first.size < 2:
        return f"needs at least 2 pairs, got {first.size}"
    for values, label in zip((first, second), labels, strict=True):
        if np.all(values == values[0]):
            return f"all {label} values are equal"
    return None


def fit_logistic(predicted_values: npt.ArrayLike, mos_values: npt.ArrayLike) -> LogisticFit:
    """Least-squares fit of `logistic4` from the protocol's initial guess; never raises."""
    predicted = np.asarray(predicted_values, dtype=np.float64)
    mos = np.asarray(mos_values, dtype=np.float64)
    if predicted.size < LOGISTIC_PARAMS:
        reason = f"logistic fit needs at least {LOGISTIC_PARAMS} pairs, got {predicted.size}"
        return LogisticFit(fallback=True, reason=reason)
    initial = [float(mos.max()), float(mos.min()), float(predicted.mean()), predicted.std() / 4]
    if initial[3] == 0:
        return LogisticFit(fallback=True, reason="all predicted values are equal")
    try:
        with warnings.catch_warnings():
            # We use only the parameters; an inestimable covariance or a transient overflow
            # inside the optimiser does not make the fitted curve wrong.
            warnings.simplefilter("ignore")
            params, _ = optimize.curve_fit(logistic4, predicted, mos, p0=initial)
    except (RuntimeError, ValueError, FloatingPointError) as exc:
        return LogisticFit(fallback=True, reason=f"logistic fit failed: {exc}")
    mapped = logistic4(predicted, *params)
    if not np.all(np.isfinite(params)) or not np.all(np.isfinite(mapped)):
        return LogisticFit(fallback=True, reason="logistic fit produced non-finite values")
    if np.ptp(mapped) == 0:
        return LogisticFit(fallback=True, reason="logistic mapping is constant on the data")
    return LogisticFit(params=[float(p) for p in params])


def _point_metrics(predicted: FloatArray, mos: FloatArray, fit: LogisticFit) -> FloatArray:
    """All of METRICS, in order, for defined (non-constant) inputs."""
    srocc = stats.spearmanr(predicted, mos).statistic
    krcc = stats.kendalltau(predicted, mos).statistic
    plcc = stats.pearsonr(predicted, mos).statistic
    plcc_logistic = plcc
    if fit.params is not None:
        plcc_logistic = stats.pearsonr(logistic4(predicted, *fit.params), mos).statistic
    return np.array(
        [srocc, krcc, plcc, plcc_logistic, (srocc + plcc_logistic) / 2, (srocc + plcc) / 2],
        dtype=np.float64,
    )


def _resample_metrics(predicted: FloatArray, mos: FloatArray) -> FloatArray:
    """METRICS on one bootstrap resample; NaN where the resample makes a metric undefined."""
    if undefined_correlation_reason(predicted, mos) is not None:
        return np.full(len(METRICS), np.nan)
    return _point_metrics(predicted, mos, fit_logistic(predicted, mos))


def _bootstrap_cis(
    predicted: FloatArray, mos: FloatArray, *, seed: int, resamples: int
) -> tuple[FloatArray, FloatArray, str | None]:
    """Percentile CIs of METRICS, or NaN bounds and a reason when some resample is degenerate."""
    with warnings.catch_warnings():
        # scipy warns about degenerate resamples; we detect them as NaN and report them.
        warnings.simplefilter("ignore")
        result = stats.bootstrap(
            (predicted, mos),
            _resample_metrics,
            paired=True,
            vectorized=False,
            n_resamples=resamples,
            confidence_level=CI_LEVEL,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    degenerate = int(np.isnan(result.bootstrap_distribution).any(axis=0).sum())
    if degenerate:
        # Dropping the undefined resamples would bias the interval; report none instead.
        undefined = np.full(len(METRICS), np.nan)
        reason = (
            f"CI undefined: {degenerate} of {resamples} bootstrap resamples had constant "
            "predictions or MOS"
        )
        return undefined, undefined, reason
    low, high = result.confidence_interval
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64), None


def _as_pairs(predicted: npt.ArrayLike, mos: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    pred = np.asarray(predicted, dtype=np.float64).ravel()
    target = np.asarray(mos, dtype=np.float64).ravel()
    if pred.size != target.size:
        raise ValueError(f"predicted has {pred.size} values but mos has {target.size}")
    if pred.size < MIN_PAIRS:
        raise ValueError(
            f"correlation needs at least {MIN_PAIRS} (prediction, MOS) pairs, got {pred.size}"
        )
    if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(target))):
        raise ValueError("predicted and mos must be finite numbers (no NaN or inf)")
    return pred, target


def _result(
    n: int, estimates: dict[str, Estimate], fit: LogisticFit, *, seed: int, bootstrap: int
) -> CorrelationResult:
    return CorrelationResult.model_validate(
        {
            **estimates,
            "n": n,
            "logistic_fallback": fit.fallback,
            "logistic_fallback_reason": fit.reason,
            "logistic_params": fit.params,
            "bootstrap_resamples": bootstrap,
            "seed": seed,
        }
    )


def _estimate(value: float, low: float, high: float, ci_reason: str | None) -> Estimate:
    if not math.isfinite(value):
        # Guards the JSON contract against numerically degenerate input scipy reports as NaN.
        return Estimate(value=None, reason="correlation is undefined: numerically degenerate")
    if ci_reason is not None or not (math.isfinite(low) and math.isfinite(high)):
        return Estimate(value=value, reason=ci_reason or "CI undefined: non-finite bounds")
    return Estimate(value=value, ci_low=low, ci_high=high)


def _estimates(
    values: FloatArray, low: FloatArray, high: FloatArray, ci_reason: str | None
) -> dict[str, Estimate]:
    return {
        name: _estimate(float(values[i]), float(low[i]), float(high[i]), ci_reason)
        for i, name in enumerate(METRICS)
    }


def correlate(
    predicted: npt.ArrayLike, mos: npt.ArrayLike, *, seed: int = 0, bootstrap: int = 1000
) -> CorrelationResult:
    """SROCC, KRCC, PLCC (raw and logistic) and the VQualA score, each with a 95 % bootstrap CI.

    Raises ValueError for mismatched lengths, fewer than 3 pairs or non-finite values. Constant
    predictions or MOS give None values with a reason. `bootstrap=0` skips the CIs. The same seed
    gives the same result.
    """
    if bootstrap < 0:
        raise ValueError(f"bootstrap must be >= 0, got {bootstrap}")
    pred, target = _as_pairs(predicted, mos)
    reason = undefined_correlation_reason(pred, target, ("predicted", "MOS"))
    if reason is not None:
        missing = Estimate(value=None, reason=f"correlation is undefined: {reason}")
        fit = LogisticFit(fallback=True, reason=reason)
        return _result(
            pred.size, dict.fromkeys(METRICS, missing), fit, seed=seed, bootstrap=bootstrap
        )
    fit = fit_logistic(pred, target)
    values = _point_metrics(pred, target, fit)
    if bootstrap:
        low, high, ci_reason = _bootstrap_cis(pred, target, seed=seed, resamples=bootstrap)
    else:
        low = high = np.full(len(METRICS), np.nan)
        ci_reason = "bootstrap disabled (bootstrap=0)"
    estimates = _estimates(values, low, high, ci_reason)
    return _result(pred.size, estimates, fit, seed=seed, bootstrap=bootstrap)


def _parse_mos_row(row: dict[str, Any], path: Path, line: int) -> tuple[str, float]:
    image = (row.get("image") or "").strip()
    if not image:
        raise UserError("empty 'image' value", path=path, line=line)
    text = (row.get("mos") or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"'mos' must be a number, got {text!r}", path=path, line=line) from None
    if not math.isfinite(value):
        raise UserError(f"'mos' must be finite, got {text!r}", path=path, line=line)
    return image, value


def _read_mos_rows(reader: csv.DictReader[str], path: Path) -> dict[str, float]:
    header = [name.strip() for name in reader.fieldnames or []]
    if not {"image", "mos"} <= set(header):
        raise UserError(
            f"header must name columns 'image' and 'mos', got {header}", path=path, line=1
        )
    reader.fieldnames = header
    scores: dict[str, float] = {}
    first_line: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if not any(value.strip() for value in row.values() if isinstance(value, str)):
            continue
        image, value = _parse_mos_row(row, path, line)
        if image in scores:
            message = f"duplicate image {image!r} (first on line {first_line[image]})"
            raise UserError(message, path=path, line=line)
        scores[image] = value
        first_line[image] = line
    return scores


def read_mos_csv(path: str | Path) -> dict[str, float]:
    """Read a CSV with the header `image,mos` (extra columns ignored) into {image: mos}.

    Raises UserError naming the file and line for a missing header, a bad row or a duplicate image.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            scores = _read_mos_rows(csv.DictReader(handle, skipinitialspace=True), path)
    except OSError as exc:
        raise UserError(f"cannot read MOS file: {exc.strerror}", path=path) from None
    except UnicodeDecodeError:
        raise UserError("MOS file is not UTF-8 text", path=path) from None
    except csv.Error as exc:
        raise UserError(f"malformed CSV: {exc}", path=path) from None
    if not scores:
        raise UserError("no MOS rows after the header", path=path)
    return scores
