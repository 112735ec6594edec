from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, stats

from fiqabench.benchmark import correlation
from fiqabench.benchmark.correlation import (
    METRICS,
    FloatArray,
    correlate,
    fit_logistic,
    logistic4,
    read_mos_csv,
)
from fiqabench.errors import UserError


def noisy_pairs(n: int = 60, seed: int = 3) -> tuple[FloatArray, FloatArray]:
    rng = np.random.default_rng(seed)
    predicted = rng.uniform(0, 100, n)
    mos = predicted / 20 + rng.normal(0, 1.0, n)
    return predicted, mos


def as_json(result: correlation.CorrelationResult) -> str:
    return json.dumps(result.model_dump(), allow_nan=False)


def test_matches_scipy_on_random_data() -> None:
    predicted, mos = noisy_pairs()
    result = correlate(predicted, mos, bootstrap=0)
    assert result.n == 60
    assert result.srocc.value == pytest.approx(stats.spearmanr(predicted, mos).statistic)
    assert result.krcc.value == pytest.approx(stats.kendalltau(predicted, mos).statistic)
    assert result.plcc.value == pytest.approx(stats.pearsonr(predicted, mos).statistic)
    assert result.vquala_score_raw.value == pytest.approx(
        (result.srocc.value + result.plcc.value) / 2  # type: ignore[operator]
    )
    assert result.vquala_score.value == pytest.approx(
        (result.srocc.value + result.plcc_logistic.value) / 2  # type: ignore[operator]
    )
    assert result.srocc.ci_low is None
    assert result.srocc.reason == "bootstrap disabled (bootstrap=0)"


def test_logistic_fit_recovers_known_parameters() -> None:
    beta = (5.0, 1.0, 50.0, 8.0)
    predicted = np.linspace(0, 100, 41)
    mos = logistic4(predicted, *beta)

    result = correlate(predicted, mos, bootstrap=0)

    assert not result.logistic_fallback
    assert result.logistic_params == pytest.approx(beta, rel=1e-4)
    assert result.plcc_logistic.value == pytest.approx(1.0, abs=1e-9)
    assert result.plcc.value is not None and result.plcc.value < 0.97
    assert result.srocc.value == pytest.approx(1.0)
    assert result.vquala_score.value == pytest.approx(1.0)
    assert result.vquala_score_raw.value == pytest.approx((1.0 + result.plcc.value) / 2)


def test_logistic_uses_absolute_slope_and_handles_decreasing_data() -> None:
    predicted = np.linspace(0, 10, 30)
    mos = logistic4(predicted, 1.0, 4.0, 5.0, 1.5)  # falls as predictions rise
    fit = fit_logistic(predicted, mos)
    assert fit.params is not None
    assert np.allclose(logistic4(predicted, *fit.params), mos, atol=1e-6)


def test_fallback_when_the_fit_does_not_converge() -> None:
    # Few distinct predictions and noisy MOS: curve_fit reaches maxfev.
    predicted = np.array([2, 2, 4, 0, 4, 0, 3, 2.0])
    mos = np.array([0.33, -0.26, 1.58, 1.32, 0.63, -2.2, 0.05, 0.68])

    result = correlate(predicted, mos, bootstrap=0)

    assert result.logistic_fallback
    assert result.logistic_fallback_reason is not None
    assert "logistic fit failed" in result.logistic_fallback_reason
    assert result.logistic_params is None
    assert result.plcc_logistic.value == result.plcc.value
    assert result.vquala_score.value == result.vquala_score_raw.value


def test_fallback_when_curve_fit_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_fit(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Optimal parameters not found")

    monkeypatch.setattr(optimize, "curve_fit", failing_fit)
    predicted, mos = noisy_pairs(20)
    result = correlate(predicted, mos, bootstrap=50)
    assert result.logistic_fallback
    assert result.logistic_fallback_reason == "logistic fit failed: Optimal parameters not found"
    assert result.plcc_logistic.value == result.plcc.value
    # Every resample falls back too, so both intervals coincide.
    assert result.plcc_logistic.ci_low == result.plcc.ci_low
    assert result.plcc_logistic.ci_high == result.plcc.ci_high


def test_fallback_with_fewer_pairs_than_logistic_parameters() -> None:
    result = correlate([1.0, 2.0, 3.0], [1.0, 3.0, 2.0], bootstrap=0)
    assert result.logistic_fallback
    assert result.logistic_fallback_reason == "logistic fit needs at least 4 pairs, got 3"
    assert result.plcc_logistic.value == pytest.approx(0.5)


def test_confidence_intervals_contain_the_point_estimates() -> None:
    predicted, mos = noisy_pairs()
    result = correlate(predicted, mos, seed=7, bootstrap=300)
    for name in METRICS:
        estimate = getattr(result, name)
        assert estimate.reason is None, name
        assert estimate.ci_low <= estimate.value <= estimate.ci_high, name
        assert estimate.ci_low < estimate.ci_high, name
    assert result.bootstrap_resamples == 300
    assert result.seed == 7


def test_deterministic_for_a_seed() -> None:
    predicted, mos = noisy_pairs(30)
    first = correlate(predicted, mos, seed=5, bootstrap=200)
    again = correlate(predicted, mos, seed=5, bootstrap=200)
    other = correlate(predicted, mos, seed=6, bootstrap=200)
    assert first.model_dump() == again.model_dump()
    assert first.srocc.ci_low != other.srocc.ci_low


def test_constant_predictions_give_none_with_reason_and_valid_json() -> None:
    result = correlate([50, 50, 50, 50], [1.0, 2.0, 3.0, 4.0])
    for name in METRICS:
        estimate = getattr(result, name)
        assert estimate.value is None
        assert estimate.reason == "correlation is undefined: all predicted values are equal"
    assert result.logistic_fallback
    json.loads(as_json(result))


def test_constant_mos_is_undefined() -> None:
    result = correlate([1, 2, 3, 4], [3.0, 3.0, 3.0, 3.0])
    assert result.srocc.value is None
    assert result.srocc.reason == "correlation is undefined: all MOS values are equal"


def test_degenerate_resamples_leave_the_ci_undefined() -> None:
    # With 4 pairs, some resamples draw one prediction only.
    result = correlate([1, 2, 3, 4], [1.0, 3.0, 2.0, 4.0], bootstrap=200)
    assert result.srocc.value == pytest.approx(0.8)
    assert result.srocc.ci_low is None and result.srocc.ci_high is None
    assert result.srocc.reason is not None
    assert "of 200 bootstrap resamples had constant" in result.srocc.reason
    json.loads(as_json(result))


@pytest.mark.parametrize(
    ("predicted", "mos", "message"),
    [
        ([1.0, 2.0], [1.0, 2.0], "at least 3"),
        ([1.0, 2.0, 3.0], [1.0, 2.0], "predicted has 3 values but mos has 2"),
        ([1.0, float("nan"), 3.0], [1.0, 2.0, 3.0], "finite"),
        ([1.0, 2.0, 3.0], [1.0, float("inf"), 3.0], "finite"),
    ],
)
def test_bad_inputs_raise(predicted: list[float], mos: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        correlate(predicted, mos)


def test_negative_bootstrap_raises() -> None:
    with pytest.raises(ValueError, match="bootstrap"):
        correlate([1, 2, 3], [1, 2, 3], bootstrap=-1)


def write(tmp_path: Path, text: str, name: str = "mos.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_mos_csv(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffimage, mos ,rater_count\na.jpg,3.5,12\n\nb.jpg, 4,9\n")
    assert read_mos_csv(path) == {"a.jpg": 3.5, "b.jpg": 4.0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,score\na.jpg,3\n", ":1: header must name columns 'image' and 'mos'"),
        ("image,mos\na.jpg,3\nb.jpg,good\n", ":3: 'mos' must be a number, got 'good'"),
        ("image,mos\na.jpg,3\nb.jpg\n", ":3: 'mos' must be a number, got ''"),
        ("image,mos\na.jpg,nan\n", ":2: 'mos' must be finite"),
        ("image,mos\n,3\n", ":2: empty 'image' value"),
        ("image,mos\na.jpg,3\nb.jpg,2\na.jpg,4\n", ":4: duplicate image 'a.jpg' (first on line 2)"),
        ("image,mos\n", "no MOS rows after the header"),
        ("", "header must name columns"),
    ],
)
def test_read_mos_csv_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UserError) as caught:
        read_mos_csv(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_read_mos_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read MOS file"):
        read_mos_csv(tmp_path / "absent.csv")


def test_read_mos_csv_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "mos.csv"
    path.write_bytes(b"image,mos\n\xff\xfe.jpg,3\n")
    with pytest.raises(UserError, match="not UTF-8"):
        read_mos_csv(path)
