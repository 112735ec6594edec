"""Error-versus-reject protocols: the ISO worked example, and each fast implementation against a
slow, loop-based reference written here from the protocol text (docs/protocols.md §4)."""

from __future__ import annotations

import itertools
import json
import math
import operator

import numpy as np
import numpy.typing as npt
import pytest

from fiqabench.benchmark import evr

Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
SEEDS = [0, 1, 2, 3]

# --------------------------------------------------------------------------- data


def synthetic(
    seed: int, *, quantise_similarity: bool = False
) -> tuple[Array, BoolArray, Array, Array]:
    """500-2000 comparisons, qualities in multiples of 5 (many ties), similarity falling with
    quality so that rejection helps; optionally similarities on a 0.01 grid (more ties)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(500, 2001))
    mated = rng.random(n) < rng.uniform(0.2, 0.6)
    quality_a = np.round(rng.uniform(0, 100, n) / 5) * 5
    quality_b = np.round(rng.uniform(0, 100, n) / 5) * 5
    quality = np.minimum(quality_a, quality_b)
    similarity = np.where(
        mated,
        rng.normal(0.35 + 0.004 * quality, 0.15),
        rng.normal(0.05 + 0.001 * quality, 0.1),
    )
    if quantise_similarity:
        similarity = np.round(similarity, 2)
    return similarity, mated, quality_a, quality_b


DATASETS = [(seed, quantise) for seed in SEEDS for quantise in (False, True)]

# --------------------------------------------------------------------------- slow references


def slow_fmr(nonmated: Array, threshold: float) -> float:
    return sum(1 for score in nonmated if score >= threshold) / len(nonmated)


def slow_iso_threshold(nonmated: Array, fmr: float) -> float:
    """Smallest float t with FMR(t) <= fmr: FMR only changes at observed scores, so the answer
    is the next float above one of them; try them all."""
    candidates = np.nextafter(np.unique(nonmated), np.inf)
    counts = (nonmated[None, :] >= candidates[:, None]).sum(axis=1)
    return float(
        min(t for t, c in zip(candidates, counts, strict=True) if c / nonmated.size <= fmr)
    )


def slow_iso_edc(
    similarity: Array, mated: BoolArray, quality: Array, threshold: float
) -> list[tuple[float, float]]:
    mated_quality = quality[mated]
    errors = similarity[mated] < threshold
    total = len(mated_quality)
    points = []
    for level in sorted(set(mated_quality.tolist())):
        kept = [error for q, error in zip(mated_quality, errors, strict=True) if q >= level]
        points.append(((total - len(kept)) / total, sum(kept) / len(kept)))
    points.append((1.0, 0.0))
    return points


def slow_stepwise_area(points: list[tuple[float, float]], limit: float) -> float:
    area = 0.0
    for (discard, error), (next_discard, _) in itertools.pairwise(points):
        if discard < limit:
            area += error * (min(next_discard, limit) - discard)
    return area


def slow_trapezoid(xs: list[float], ys: list[float]) -> float:
    return sum(
        (x1 - x0) * (y0 + y1) / 2 for x0, x1, y0, y1 in zip(xs, xs[1:], ys, ys[1:], strict=False)
    )


def slow_trapezoid_pauc(xs: list[float], ys: list[float], limit: float) -> float:
    inside = [(x, y) for x, y in zip(xs, ys, strict=True) if x <= limit + 1e-12]
    px, py = [x for x, _ in inside], [y for _, y in inside]
    if px[-1] < limit - 1e-12:
        right = len(px)
        x0, x1, y0, y1 = xs[right - 1], xs[right], ys[right - 1], ys[right]
        px.append(limit)
        py.append(y0 + (y1 - y0) * (limit - x0) / (x1 - x0))
    return slow_trapezoid(px, py)


VLM_GRID = [i * 0.005 for i in range(21)] + [0.11 + 0.05 * i for i in range(8)]


def slow_vlm4fiqa(
    similarity: Array, mated: BoolArray, quality: Array, fmr: float, seeds: list[int]
) -> tuple[list[float], list[float]]:
    n = len(similarity)
    fixed_threshold = np.quantile(similarity[~mated], 1 - fmr)
    recomputed = np.zeros(len(VLM_GRID))
    fixed = np.zeros(len(VLM_GRID))
    for seed in seeds:
        order = np.lexsort((np.random.default_rng(seed).random(n), quality))
        for index, rate in enumerate(VLM_GRID):
            kept = order[math.floor(round(rate * 1000) * n / 1000) :]
            genuine = similarity[kept][mated[kept]]
            threshold = np.quantile(similarity[kept][~mated[kept]], 1 - fmr)
            recomputed[index] += np.mean(genuine < threshold) / len(seeds)
            fixed[index] += np.mean(genuine < fixed_threshold) / len(seeds)
    return recomputed.tolist(), fixed.tolist()


def slow_crfiqa_roc(genuine: Array, impostor: Array) -> tuple[Array, Array]:
    """CR-FIQA's ERC/roc.py calculate_roc on similarity scores: thresholds and FMR."""
    scores = sorted(
        [(s, 1) for s in genuine] + [(s, 0) for s in impostor], key=operator.itemgetter(0)
    )
    thresholds, fmrs = [], []
    genuine_below = 0
    for index, (score, label) in enumerate(scores):
        if index == 0 or score != scores[index - 1][0]:
            thresholds.append(score)
            fmrs.append((len(impostor) - (index - genuine_below)) / len(impostor))
        genuine_below += label
    return np.asarray(thresholds), np.asarray(fmrs)


def slow_crfiqa(
    similarity: Array, mated: BoolArray, quality: Array, targets: list[float]
) -> dict[float, list[float]]:
    """ERC/erc.py getFNMRFixedTH: reject int(rate * N) lowest, closest-FMR threshold, strict."""
    order = np.argsort(quality, kind="stable")
    curves: dict[float, list[float]] = {target: [] for target in targets}
    for rate in np.arange(0, 0.98, 0.05):
        kept = order[int(rate * len(order)) :]
        genuine, impostor = similarity[kept][mated[kept]], similarity[kept][~mated[kept]]
        thresholds, fmr = slow_crfiqa_roc(genuine, impostor)
        for target in targets:
            threshold = thresholds[np.argmin(abs(fmr - target))]
            accepted = [g for g in genuine if g > threshold]
            curves[target].append(1 - len(accepted) / len(genuine))
    return curves


# --------------------------------------------------------------------------- ISO EDC


def worked_example() -> evr.UtilityResult:
    quality = np.arange(1.0, 11.0)
    similarity = np.where(np.isin(quality, [1, 2, 5]), 0.2, 0.9)
    return evr.iso_edc(similarity, np.ones(10, bool), quality, threshold=0.5, subtract_best=True)


def test_iso_worked_example_points() -> None:
    expected = [(0, 0.3), (0.1, 2 / 9), (0.2, 0.125), (0.3, 1 / 7), (0.4, 1 / 6)]
    expected += [(d / 10, 0.0) for d in range(5, 11)]
    np.testing.assert_allclose(worked_example().curves["fnm_edc"], expected, atol=1e-6)


def test_iso_worked_example_pauc() -> None:
    metrics = worked_example().metrics
    assert metrics["iso_edc_pauc_05"] == pytest.approx(0.015, abs=1e-6)
    assert metrics["iso_edc_pauc_10"] == pytest.approx(0.030, abs=1e-6)
    assert metrics["iso_edc_pauc_20"] == pytest.approx(0.052222, abs=1e-6)
    assert metrics["iso_edc_auc"] == pytest.approx(0.095675, abs=1e-6)
    assert metrics["fnmr_at_fmr"] == pytest.approx(0.3)
    # Theoretical best with e0 = 0.3: 0.045 - max(0, 0.3 - L)^2 / 2.
    assert metrics["iso_edc_pauc_20_minus_best"] == pytest.approx(0.052222 - 0.04, abs=1e-6)
    assert metrics["iso_edc_auc_minus_best"] == pytest.approx(0.095675 - 0.045, abs=1e-6)


@pytest.mark.parametrize(("seed", "quantise"), DATASETS)
def test_iso_matches_slow_reference(seed: int, quantise: bool) -> None:
    similarity, mated, quality_a, quality_b = synthetic(seed, quantise_similarity=quantise)
    quality = np.minimum(quality_a, quality_b)
    result = evr.iso_edc(similarity, mated, quality_a=quality_a, quality_b=quality_b)
    threshold = slow_iso_threshold(similarity[~mated], 1e-3)
    assert result.metrics["threshold"] == threshold
    points = slow_iso_edc(similarity, mated, quality, threshold)
    np.testing.assert_allclose(result.curves["fnm_edc"], points, rtol=0, atol=1e-12)
    for limit in evr.PAUC_LIMITS:
        key = f"iso_edc_pauc_{round(limit * 100):02d}"
        assert result.metrics[key] == pytest.approx(slow_stepwise_area(points, limit), abs=1e-12)
    assert result.metrics["iso_edc_auc"] == pytest.approx(slow_stepwise_area(points, 1), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fmr", [1e-3, 1e-2, 0.05, 0.1, 1 / 3])
def test_fmr_threshold_is_the_smallest_meeting_the_target(seed: int, fmr: float) -> None:
    nonmated = np.round(np.random.default_rng(seed).normal(0, 0.1, 1500 + seed), 3)
    threshold = evr.fmr_threshold(nonmated, fmr)
    assert slow_fmr(nonmated, threshold) <= fmr
    assert slow_fmr(nonmated, float(np.nextafter(threshold, -np.inf))) > fmr
    assert threshold == slow_iso_threshold(nonmated, fmr)


def test_fmr_threshold_convention_examples() -> None:
    scores = np.arange(1, 11) / 10
    # FMR 0.1 of 10 scores allows one at or above t: t is just above the second largest.
    assert evr.fmr_threshold(scores, 0.1) == np.nextafter(0.9, np.inf)
    assert evr.fmr_threshold(scores, 0.05) == np.nextafter(1.0, np.inf)
    # A tie at the cut cannot be split: all three 0.5s stay below the threshold.
    assert evr.fmr_threshold(np.array([0.5, 0.5, 0.5, 0.2]), 0.5) == np.nextafter(0.5, np.inf)
    with pytest.raises(ValueError, match="strictly between"):
        evr.fmr_threshold(scores, 0.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_iso_ties_are_discarded_together(seed: int) -> None:
    similarity, mated, quality_a, quality_b = synthetic(seed)
    quality = np.minimum(quality_a, quality_b)
    reference = evr.iso_edc(similarity, mated, quality)
    shuffle = np.random.default_rng(seed + 100).permutation(len(quality))
    shuffled = evr.iso_edc(similarity[shuffle], mated[shuffle], quality[shuffle])
    assert shuffled.metrics == reference.metrics
    assert shuffled.curves == reference.curves
    mated_levels = len(np.unique(quality[mated]))
    assert len(reference.curves["fnm_edc"]) == mated_levels + 1


# --------------------------------------------------------------------------- VLM4FIQA EvR


@pytest.mark.parametrize(("seed", "quantise"), DATASETS)
def test_vlm4fiqa_matches_slow_reference(seed: int, quantise: bool) -> None:
    similarity, mated, quality_a, quality_b = synthetic(seed, quantise_similarity=quantise)
    quality = np.minimum(quality_a, quality_b)
    fmr = 1e-2 if seed % 2 else 1e-3
    result = evr.vlm4fiqa_evr(similarity, mated, quality, fmr=fmr)
    recomputed, fixed = slow_vlm4fiqa(similarity, mated, quality, fmr, list(range(10)))
    curves = result.curves
    np.testing.assert_allclose(
        curves["recomputed_threshold"], np.c_[VLM_GRID, recomputed], atol=1e-12
    )
    np.testing.assert_allclose(curves["fixed_threshold"], np.c_[VLM_GRID, fixed], atol=1e-12)
    for prefix, fnmr in (("vlm4fiqa_evr", recomputed), ("vlm4fiqa_evr_fixed", fixed)):
        for limit in evr.PAUC_LIMITS:
            expected = slow_trapezoid_pauc(VLM_GRID, fnmr, limit)
            key = f"{prefix}_pauc_{round(limit * 100):02d}"
            assert result.metrics[key] == pytest.approx(expected, abs=1e-12)
        assert result.metrics[f"{prefix}_auc"] == pytest.approx(
            slow_trapezoid(VLM_GRID, fnmr), abs=1e-12
        )
    assert result.metrics["threshold"] == np.quantile(similarity[~mated], 1 - fmr)


def test_rejecting_the_highest_non_mated_scores_first_matches_the_references() -> None:
    # Non-mated similarity falls with quality: the cut removes the top non-mated scores, so
    # the search for the largest kept ones must look far down the sorted list.
    rng = np.random.default_rng(11)
    n = 1200
    mated = rng.random(n) < 0.3
    quality = np.round(rng.uniform(0, 100, n) / 10) * 10
    similarity = np.where(
        mated, rng.normal(0.6, 0.2, n), np.round(rng.normal(0.5 - 0.006 * quality, 0.05), 2)
    )
    result = evr.vlm4fiqa_evr(similarity, mated, quality, fmr=1e-2)
    recomputed, _ = slow_vlm4fiqa(similarity, mated, quality, 1e-2, list(range(10)))
    np.testing.assert_allclose(
        np.asarray(result.curves["recomputed_threshold"])[:, 1], recomputed, atol=1e-12
    )
    erc = evr.crfiqa_erc(similarity, mated, quality)
    reference = slow_crfiqa(similarity, mated, quality, list(evr.CRFIQA_FMRS))
    for target, label in ((1e-2, "fmr1e-2"), (1e-3, "fmr1e-3"), (1e-4, "fmr1e-4")):
        np.testing.assert_allclose(
            np.asarray(erc.curves[label])[:, 1], reference[target], rtol=0, atol=1e-12
        )


def test_vlm4fiqa_grid_has_29_points_as_published() -> None:
    published = np.unique(np.r_[np.arange(0.0, 0.101, 0.005), np.arange(0.11, 0.501, 0.05)])
    similarity, mated, quality_a, quality_b = synthetic(0)
    result = evr.vlm4fiqa_evr(similarity, mated, quality_a=quality_a, quality_b=quality_b)
    rates = [x for x, _ in result.curves["recomputed_threshold"]]
    assert len(rates) == 29
    np.testing.assert_allclose(rates, published, atol=1e-12)
    # Same rejected counts as the published float grid's floor(rate * N).
    for n in (6000, 1234, 777):
        assert evr._reject_counts(evr.VLM4FIQA_REJECT_PERMILLE, n) == [
            int(np.floor(rate * n)) for rate in published
        ]


@pytest.mark.parametrize("count", [1, 2, 3, 10, 999, 1000, 1001, 2500, 6000])
@pytest.mark.parametrize("fmr", [1e-3, 1e-2, 0.37])
def test_kept_quantile_is_bit_identical_to_numpy(count: int, fmr: float) -> None:
    scores = np.random.default_rng(count).normal(size=count)
    descending = np.sort(scores)[::-1]
    quantile = evr._upper_quantile(lambda k: descending[:k], count, 1.0 - fmr)
    assert quantile == np.quantile(scores, 1.0 - fmr)


@pytest.mark.parametrize("seed", SEEDS)
def test_seeded_rank_rejects_the_lexsort_prefix(seed: int) -> None:
    _, _, quality_a, quality_b = synthetic(seed)
    quality = np.minimum(quality_a, quality_b)
    index = evr._QualityIndex.build(quality)
    cuts = evr._reject_counts(evr.VLM4FIQA_REJECT_PERMILLE, len(quality))
    rank = index.seeded_rank(cuts, seed)
    order = np.lexsort((np.random.default_rng(seed).random(len(quality)), quality))
    assert index.split_groups(cuts)  # the cuts do split tie groups here
    for cut in cuts:
        assert set(np.flatnonzero(rank < cut)) == set(order[:cut])


def test_equal_random_keys_are_broken_by_input_order_as_lexsort_does() -> None:
    key = np.array([0.5, 0.2, 0.5, 0.9, 0.5, 0.1])
    offsets = np.array([1, 3, 5])
    ranks = np.argsort(np.argsort(key, kind="stable"), kind="stable")
    expected = np.searchsorted(offsets, ranks, side="right")
    np.testing.assert_array_equal(evr._levels_reached(key, offsets), expected)


def test_vlm4fiqa_seed_averaging_is_deterministic() -> None:
    similarity, mated, quality_a, quality_b = synthetic(1)
    quality = np.minimum(quality_a, quality_b)
    first = evr.vlm4fiqa_evr(similarity, mated, quality)
    again = evr.vlm4fiqa_evr(similarity, mated, quality)
    assert first.metrics == again.metrics
    assert first.curves == again.curves
    assert evr.vlm4fiqa_evr(similarity, mated, quality, seeds=[3]).metrics != first.metrics


def test_vlm4fiqa_seeds_do_not_matter_without_ties() -> None:
    similarity, mated, _, _ = synthetic(2)
    quality = np.random.default_rng(5).permutation(len(similarity)).astype(float)
    one = evr.vlm4fiqa_evr(similarity, mated, quality, seeds=[0])
    ten = evr.vlm4fiqa_evr(similarity, mated, quality)
    for name, curve in one.curves.items():  # equal up to the rounding of a mean of 10
        np.testing.assert_allclose(ten.curves[name], curve, rtol=1e-14)


def test_vlm4fiqa_last_grid_point_pauc_stops_on_the_grid() -> None:
    similarity, mated, quality_a, quality_b = synthetic(3)
    quality = np.minimum(quality_a, quality_b)
    result = evr.vlm4fiqa_evr(similarity, mated, quality, pauc_end="last_grid_point")
    curve = result.curves["recomputed_threshold"]
    upto_016 = [point for point in curve if point[0] <= 0.16 + 1e-12]
    expected = slow_trapezoid([x for x, _ in upto_016], [y for _, y in upto_016])
    assert result.metrics["vlm4fiqa_evr_pauc_20"] == pytest.approx(expected, abs=1e-12)


# --------------------------------------------------------------------------- CR-FIQA ERC


@pytest.mark.parametrize(("seed", "quantise"), DATASETS)
def test_crfiqa_matches_port_of_its_erc_code(seed: int, quantise: bool) -> None:
    similarity, mated, quality_a, quality_b = synthetic(seed, quantise_similarity=quantise)
    quality = np.minimum(quality_a, quality_b)
    result = evr.crfiqa_erc(similarity, mated, quality)
    reference = slow_crfiqa(similarity, mated, quality, list(evr.CRFIQA_FMRS))
    rates = np.arange(0, 0.98, 0.05)
    for target, label in ((1e-2, "fmr1e-2"), (1e-3, "fmr1e-3"), (1e-4, "fmr1e-4")):
        np.testing.assert_allclose(
            result.curves[label], np.c_[rates, reference[target]], rtol=0, atol=1e-12
        )
        auc = slow_trapezoid(rates.tolist(), reference[target])
        assert result.metrics[f"crfiqa_erc_auc_{label}"] == pytest.approx(auc, abs=1e-12)
    assert result.metrics["fnmr_at_fmr"] == pytest.approx(reference[1e-3][0], abs=1e-12)


def test_crfiqa_threshold_prefers_the_lower_threshold_on_equal_distance() -> None:
    # 2000 non-mated with the 2nd and 3rd largest tied: 2 false matches (exactly FMR 1e-3) is
    # not achievable, and 1 or 3 are equally far in float64. CR-FIQA's argmin over ascending
    # thresholds takes the lower threshold, 3 false matches: the threshold is then the lowest
    # kept score above the 4th largest non-mated, here the mated score placed there.
    impostor = np.sort(np.random.default_rng(0).normal(0, 0.1, 2000))[::-1]
    impostor[2] = impostor[1]
    genuine = np.array([(impostor[3] + impostor[2]) / 2, (impostor[1] + impostor[0]) / 2, 0.9])
    similarity = np.r_[genuine, impostor]
    mated = np.r_[np.ones(3, bool), np.zeros(2000, bool)]
    assert abs(1 / 2000 - 1e-3) == abs(3 / 2000 - 1e-3)
    thresholds, fmr = slow_crfiqa_roc(genuine, impostor)
    threshold = thresholds[np.argmin(abs(fmr - 1e-3))]
    assert threshold == genuine[0]
    result = evr.crfiqa_erc(similarity, mated, np.ones(similarity.size))
    assert result.metrics["threshold"] == threshold
    assert result.metrics["fnmr_at_fmr"] == pytest.approx(1 / 3)


# --------------------------------------------------------------------------- all protocols


def test_a_perfect_quality_beats_a_random_one() -> None:
    rng = np.random.default_rng(7)
    n = 4000
    mated = rng.random(n) < 0.5
    similarity = np.where(mated, rng.normal(0.5, 0.2, n), rng.normal(0.0, 0.1, n))
    # Perfect: the mated comparisons below the FMR 1e-3 threshold (the false non-matches) have
    # the lowest qualities; every other comparison a random one above them.
    error = mated & (similarity < np.quantile(similarity[~mated], 0.999))
    perfect = np.where(error, similarity - 10, rng.uniform(-1, 1, n))
    random = rng.uniform(-1, 1, n)
    good = evr.all_protocols(similarity, mated, perfect).metrics
    bad = evr.all_protocols(similarity, mated, random).metrics
    for key in ("iso_edc_pauc_20", "vlm4fiqa_evr_pauc_20", "vlm4fiqa_evr_fixed_pauc_20"):
        assert good[key] < bad[key]
    assert good["crfiqa_erc_auc_fmr1e-3"] < bad["crfiqa_erc_auc_fmr1e-3"]


def test_all_protocols_metric_keys() -> None:
    similarity, mated, quality_a, quality_b = synthetic(0)
    result = evr.all_protocols(
        similarity, mated, quality_a=quality_a, quality_b=quality_b, subtract_best=True
    )
    metrics = result.metrics
    expected = {"fnmr_at_fmr", "threshold", "n_mated", "n_nonmated"}
    expected |= {"distinct_quality_values", "largest_tie_group"}
    for prefix in ("iso_edc", "vlm4fiqa_evr", "vlm4fiqa_evr_fixed"):
        expected |= {f"{prefix}_pauc_{suffix}" for suffix in ("01", "05", "10", "20")}
        expected.add(f"{prefix}_auc")
    expected |= {"iso_edc_pauc_20_minus_best", "iso_edc_auc_minus_best"}
    expected |= {f"crfiqa_erc_auc_fmr1e-{e}" for e in (2, 3, 4)}
    assert expected <= set(metrics)
    # The unprefixed threshold is the primary (ISO) one; the others keep prefixed copies.
    assert metrics["threshold"] == result.results["iso_edc"].metrics["threshold"]
    assert metrics["vlm4fiqa_evr_threshold"] == np.quantile(similarity[~mated], 0.999)
    quality = np.minimum(quality_a, quality_b)
    _, counts = np.unique(quality, return_counts=True)
    assert metrics["distinct_quality_values"] == len(counts)
    assert metrics["largest_tie_group"] == counts.max()
    assert metrics["n_mated"] == mated.sum()
    text = json.dumps(result.to_dict(), allow_nan=False)
    assert json.loads(text)["results"]["iso_edc"]["protocol"] == "iso_edc"


def test_average_over_models_means_metrics_and_curves() -> None:
    similarity, mated, quality_a, quality_b = synthetic(4)
    quality = np.minimum(quality_a, quality_b)
    other = similarity + np.random.default_rng(9).normal(0, 0.05, len(similarity))
    models = {"arcface": similarity, "transface": other}
    average = evr.average_over_models(models, mated, quality)
    singles = {name: evr.all_protocols(sims, mated, quality) for name, sims in models.items()}
    for name, single in singles.items():
        assert average.per_model[name] == single.metrics
    for key, value in average.metrics.items():
        assert value == pytest.approx(np.mean([s.metrics[key] for s in singles.values()]))
    curve = np.asarray(average.curves["vlm4fiqa_evr"]["recomputed_threshold"])
    parts = [
        np.asarray(s.results["vlm4fiqa_evr"].curves["recomputed_threshold"])
        for s in singles.values()
    ]
    np.testing.assert_allclose(curve[:, 1], (parts[0][:, 1] + parts[1][:, 1]) / 2)
    # Areas are linear in the curve: the mean pAUC is the pAUC of the mean curve.
    assert average.metrics["vlm4fiqa_evr_pauc_20"] == pytest.approx(
        slow_trapezoid_pauc(curve[:, 0].tolist(), curve[:, 1].tolist(), 0.2)
    )
    json.dumps(average.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------- edge cases


def test_no_mated_or_no_nonmated_is_a_clear_error() -> None:
    similarity, quality = np.linspace(0, 1, 20), np.arange(20.0)
    for function in (evr.iso_edc, evr.vlm4fiqa_evr, evr.crfiqa_erc, evr.all_protocols):
        with pytest.raises(ValueError, match="no mated"):
            function(similarity, np.zeros(20, bool), quality)
    for function in (evr.iso_edc, evr.vlm4fiqa_evr, evr.crfiqa_erc, evr.all_protocols):
        with pytest.raises(ValueError, match="no non-mated"):
            function(similarity, np.ones(20, bool), quality)


def test_nan_quality_is_reported_with_its_count() -> None:
    similarity, mated, quality_a, quality_b = synthetic(0)
    quality_a[[3, 5, 8]] = np.nan
    with pytest.raises(ValueError, match=r"quality_a has 3 NaN value\(s\)"):
        evr.iso_edc(similarity, mated, quality_a=quality_a, quality_b=quality_b)
    with pytest.raises(ValueError, match=r"pair_quality has 3 NaN value\(s\)"):
        evr.vlm4fiqa_evr(similarity, mated, np.minimum(quality_a, quality_b))


def test_bad_shapes_and_ambiguous_quality_are_rejected() -> None:
    similarity, mated, quality_a, quality_b = synthetic(0)
    with pytest.raises(ValueError, match="same length"):
        evr.iso_edc(similarity[:-1], mated, quality_a)
    with pytest.raises(ValueError, match="not both"):
        evr.iso_edc(similarity, mated, quality_a, quality_a=quality_a, quality_b=quality_b)
    with pytest.raises(ValueError, match="give pair_quality"):
        evr.iso_edc(similarity, mated)
    with pytest.raises(ValueError, match="boolean"):
        evr.iso_edc(similarity, np.full(len(similarity), 2), quality_a)


def test_pair_quality_is_the_minimum() -> None:
    np.testing.assert_array_equal(evr.pair_quality([1, 5, 3], [2, 4, 3]), [1, 4, 3])


def test_small_inputs_give_nan_where_undefined() -> None:
    similarity = np.array([0.9, 0.1, 0.8, 0.2, 0.3])
    mated = np.array([True, False, True, False, True])
    quality = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    result = evr.all_protocols(similarity, mated, quality)
    assert not math.isnan(result.metrics["iso_edc_auc"])
    erc = result.results["crfiqa_erc"].curves["fmr1e-3"]
    assert math.isnan(erc[-1][1])  # 95 % rejected: 1 comparison left, no non-mated
    assert math.isnan(result.metrics["crfiqa_erc_auc_fmr1e-3"])
    json.dumps(result.to_dict(), allow_nan=False)
