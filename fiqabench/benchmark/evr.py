"""Biometric utility of a quality score: error-versus-reject curves under three protocols.

Every number is labelled with the protocol that produced it (docs/protocols.md §4):

* ``iso_edc`` — ISO/IEC 29794-1 FNM-EDC (Schlett et al., TBIOM 2023), the recommended primary:
  a fixed threshold, mated comparisons only, evaluated at quality-threshold steps (tied
  qualities are discarded together), stepwise (left-constant) partial areas.
* ``vlm4fiqa_evr`` — the VLM-for-FIQA study's EvR (github.com/ThEnded32/VLM4FIQA,
  ``analysis_evr.py``): mated and non-mated comparisons rejected together, the threshold
  recomputed on the kept non-mated scores at every reject rate, random tie-breaks averaged over
  seeds, trapezoid areas. A fixed-threshold variant is returned with it.
* ``crfiqa_erc`` — CR-FIQA's ERC (github.com/fdbtrs/CR-FIQA, ``ERC/erc.py`` and ``ERC/roc.py``):
  same rejection, rates 0..95 % in 5 % steps, CR-FIQA's own operating-point rule, trapezoid AUC.

Inputs are parallel arrays over N comparisons: ``similarity`` (higher = more alike),
``mated`` and the pair quality ``min(q_a, q_b)`` (higher = better), or both per-image qualities.
Everything is vectorised over comparisons; the only Python loops run over grid points, seeds,
tie groups at a cut and FR models.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Curve = list[list[float]]
PaucEnd = Literal["interpolate", "last_grid_point"]

DEFAULT_FMR = 1e-3
PAUC_LIMITS = (0.01, 0.05, 0.10, 0.20)
VLM4FIQA_SEEDS = tuple(range(10))
# Reject grids in per mille, so that the number rejected, floor(rate * N), is exact integer
# arithmetic (the published scripts' float grids give the same counts for every N <= 2e6).
VLM4FIQA_REJECT_PERMILLE = (*range(0, 101, 5), *range(110, 461, 50))
CRFIQA_REJECT_PERMILLE = tuple(range(0, 951, 50))
CRFIQA_FMRS = (1e-2, 1e-3, 1e-4)

ISO_EDC = "iso_edc"
VLM4FIQA_EVR = "vlm4fiqa_evr"
CRFIQA_ERC = "crfiqa_erc"
PROTOCOL_DESCRIPTIONS = {
    ISO_EDC: "ISO/IEC 29794-1 FNM-EDC (Schlett et al., TBIOM 2023): fixed threshold, "
    "mated comparisons only, ties discarded together, stepwise pAUC",
    VLM4FIQA_EVR: "VLM4FIQA EvR (seed paper, analysis_evr.py): mated and non-mated rejected, "
    "threshold recomputed per reject rate, random tie-breaks averaged over seeds, trapezoid AUC",
    CRFIQA_ERC: "CR-FIQA ERC (ERC/erc.py): mated and non-mated rejected, closest-FMR threshold "
    "recomputed per reject rate, rates 0..0.95, trapezoid AUC",
}


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class UtilityResult:
    """One protocol's error-versus-reject result: metrics, curves and the settings used."""

    protocol: str
    metrics: dict[str, float]
    curves: dict[str, Curve]
    settings: dict[str, object] = field(default_factory=dict)

    @property
    def description(self) -> str:
        return PROTOCOL_DESCRIPTIONS[self.protocol]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: NaN (an undefined point or area) becomes None."""
        return {
            "protocol": self.protocol,
            "description": self.description,
            "settings": self.settings,
            "metrics": _json_floats(self.metrics),
            "curves": {name: _json_curve(curve) for name, curve in self.curves.items()},
        }


@dataclass(frozen=True)
class AllProtocolsResult:
    """The three protocols on one set of comparisons, with their metrics merged."""

    results: dict[str, UtilityResult]

    @property
    def metrics(self) -> dict[str, float]:
        """Protocol-prefixed metrics of all three; the unprefixed shared keys (``threshold``,
        ``fnmr_at_fmr``, counts) come from the primary protocol, ISO EDC."""
        merged: dict[str, float] = {}
        for name in (CRFIQA_ERC, VLM4FIQA_EVR, ISO_EDC):
            if name in self.results:
                merged.update(self.results[name].metrics)
        return merged

    def to_dict(self) -> dict[str, object]:
        return {
            "metrics": _json_floats(self.metrics),
            "results": {name: result.to_dict() for name, result in self.results.items()},
        }


@dataclass(frozen=True)
class ModelAverageResult:
    """Metrics averaged over FR models that compared the same pairs, with per-model values."""

    models: list[str]
    metrics: dict[str, float]
    per_model: dict[str, dict[str, float]]
    curves: dict[str, dict[str, Curve]]

    def to_dict(self) -> dict[str, object]:
        return {
            "models": self.models,
            "metrics": _json_floats(self.metrics),
            "per_model": {model: _json_floats(values) for model, values in self.per_model.items()},
            "curves": {
                protocol: {name: _json_curve(curve) for name, curve in curves.items()}
                for protocol, curves in self.curves.items()
            },
        }


def _json_floats(values: Mapping[str, float]) -> dict[str, float | None]:
    return {key: None if math.isnan(value) else value for key, value in values.items()}


def _json_curve(curve: Curve) -> list[list[float | None]]:
    return [[None if math.isnan(value) else value for value in point] for point in curve]


# --------------------------------------------------------------------------- inputs


def pair_quality(quality_a: npt.ArrayLike, quality_b: npt.ArrayLike) -> FloatArray:
    """Pair quality of a comparison: the lower of its two images' qualities."""
    return np.minimum(_float_vector(quality_a, "quality_a"), _float_vector(quality_b, "quality_b"))


def _float_vector(values: npt.ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    nan_count = int(np.count_nonzero(np.isnan(array)))
    if nan_count:
        raise ValueError(f"{name} has {nan_count} NaN value(s) out of {array.size}")
    return array


def _mated_vector(values: npt.ArrayLike) -> BoolArray:
    array = np.asarray(values)
    if array.dtype != np.bool_:
        if not np.isin(array, (0, 1)).all():
            raise ValueError("mated must be boolean (or 0/1)")
        array = array.astype(np.bool_)
    if array.ndim != 1:
        raise ValueError(f"mated must be one-dimensional, got shape {array.shape}")
    return array


def _resolve_pair_quality(
    quality: npt.ArrayLike | None, quality_a: npt.ArrayLike | None, quality_b: npt.ArrayLike | None
) -> FloatArray:
    if quality is not None:
        if quality_a is not None or quality_b is not None:
            raise ValueError("give pair_quality or quality_a and quality_b, not both")
        return _float_vector(quality, "pair_quality")
    if quality_a is None or quality_b is None:
        raise ValueError("give pair_quality, or both quality_a and quality_b")
    return pair_quality(quality_a, quality_b)


def _check_fmr(fmr: float) -> None:
    if not 0.0 < fmr < 1.0:
        raise ValueError(f"FMR must lie strictly between 0 and 1, got {fmr}")


# --------------------------------------------------------------------------- prepared data


@dataclass(frozen=True)
class _QualityIndex:
    """Comparisons ordered by ascending pair quality (stable: ties keep input order)."""

    quality: FloatArray
    order: IntArray
    position: IntArray
    group_start: IntArray

    @classmethod
    def build(cls, quality: FloatArray) -> _QualityIndex:
        order = np.argsort(quality, kind="stable").astype(np.int64)
        position = np.empty_like(order)
        position[order] = np.arange(order.size, dtype=np.int64)
        ascending = quality[order]
        group_start = np.flatnonzero(np.r_[True, ascending[1:] != ascending[:-1]])
        return cls(quality, order, position, group_start.astype(np.int64))

    @property
    def size(self) -> int:
        return int(self.order.size)

    @property
    def distinct_values(self) -> int:
        return int(self.group_start.size)

    @property
    def largest_tie_group(self) -> int:
        return int(np.diff(np.r_[self.group_start, self.size]).max())

    def split_groups(self, cuts: Iterable[int]) -> list[tuple[int, int, IntArray]]:
        """Tie groups [start, end) in sorted order that cuts split into rejected and kept,
        each with the in-group offsets (cut - start) of its cuts, ascending."""
        offsets: dict[int, set[int]] = {}
        for cut in cuts:
            group = int(np.searchsorted(self.group_start, cut, side="right")) - 1
            if 0 < cut < self.size and self.group_start[group] != cut:
                offsets.setdefault(group, set()).add(cut - int(self.group_start[group]))
        ends = np.r_[self.group_start[1:], self.size]
        return [
            (int(self.group_start[group]), int(ends[group]), np.array(sorted(offsets[group])))
            for group in sorted(offsets)
        ]

    def seeded_rank(self, cuts: Sequence[int], seed: int) -> IntArray:
        """Rejection ranks for the order ``np.lexsort((default_rng(seed).random(N),
        quality))``: at every cut in ``cuts``, the comparisons with rank < cut are exactly the
        first ``cut`` of that order. Only tie groups that a cut splits depend on the random key;
        there a member's rank is the group start plus the largest in-group cut offset its key's
        rank reaches, which one partition finds without sorting the group."""
        key = np.random.default_rng(seed).random(self.size)
        rank = self.position.copy()
        for start, end, offsets in self.split_groups(cuts):
            members = self.order[start:end]
            rank[members] = start + np.r_[0, offsets][_levels_reached(key[members], offsets)]
        return rank


def _levels_reached(key: FloatArray, offsets: IntArray) -> IntArray:
    """For each key, how many of the ranks ``offsets`` its rank in (key, position) order
    reaches; members are in input order, as lexsort breaks equal keys."""
    bounds = np.partition(key, offsets)[offsets]
    levels = np.searchsorted(bounds, key, side="right")
    if np.count_nonzero(np.isin(key, bounds)) == np.unique(bounds).size:
        return levels
    # A key equal to a bound but not the bound itself (p ~ N²/2⁵³): rank the group exactly.
    ranks = np.empty(key.size, dtype=np.int64)
    ranks[np.argsort(key, kind="stable")] = np.arange(key.size)
    return np.searchsorted(offsets, ranks, side="right")


class _LargestScores:
    """Non-mated comparisons by descending similarity, sorted only as far as asked: FMR
    thresholds need the top 0.01-1 % of the scores, where a partition beats a full sort."""

    def __init__(self, index: IntArray, scores: FloatArray) -> None:
        self._index = index
        self._scores = scores
        self._top_index = index[:0]
        self._top_scores = scores[:0]

    @property
    def size(self) -> int:
        return int(self._index.size)

    def top(self, count: int) -> tuple[IntArray, FloatArray]:
        """Comparison indices and similarities of the ``count`` largest, descending."""
        count = min(count, self.size)
        if count > self._top_index.size:
            self._sort_top(max(count, 2 * self._top_index.size, 1024))
        return self._top_index[:count], self._top_scores[:count]

    def values(self, count: int) -> FloatArray:
        return self.top(count)[1]

    def _sort_top(self, count: int) -> None:
        count = min(count, self.size)
        chosen: npt.NDArray[np.intp] = np.arange(self.size)
        if 4 * count < self.size:
            chosen = np.argpartition(self._scores, self.size - count)[self.size - count :]
        chosen = chosen[np.argsort(self._scores[chosen], kind="stable")[::-1]]
        self._top_index, self._top_scores = self._index[chosen], self._scores[chosen]


@dataclass(frozen=True)
class _Scores:
    """Similarity scores: mated ones sorted ascending, non-mated ones largest first."""

    similarity: FloatArray
    mated: BoolArray
    genuine_index: IntArray
    genuine_sorted: FloatArray
    largest_impostors: _LargestScores

    @classmethod
    def build(cls, scores: FloatArray, mated: BoolArray) -> _Scores:
        infinite = int(np.count_nonzero(~np.isfinite(scores)))
        if infinite:
            raise ValueError(f"similarity has {infinite} infinite value(s)")
        genuine = np.flatnonzero(mated)
        genuine = genuine[np.argsort(scores[genuine], kind="stable")]
        impostor = np.flatnonzero(~mated)
        largest = _LargestScores(impostor, scores[impostor])
        return cls(scores, mated, genuine, scores[genuine], largest)

    @property
    def n_mated(self) -> int:
        return int(self.genuine_index.size)

    @property
    def n_nonmated(self) -> int:
        return self.largest_impostors.size

    def require_both(self) -> None:
        if self.n_mated == 0:
            raise ValueError("no mated comparisons: FNMR is undefined")
        if self.n_nonmated == 0:
            raise ValueError("no non-mated comparisons: no threshold can be set at an FMR")


@dataclass(frozen=True)
class _Prepared:
    quality: _QualityIndex
    scores: _Scores

    @classmethod
    def build(
        cls,
        similarity: npt.ArrayLike,
        mated: npt.ArrayLike,
        quality: npt.ArrayLike | None,
        quality_a: npt.ArrayLike | None,
        quality_b: npt.ArrayLike | None,
    ) -> _Prepared:
        resolved = _resolve_pair_quality(quality, quality_a, quality_b)
        return cls(_QualityIndex.build(resolved), _build_scores(similarity, mated, resolved.size))

    def common_metrics(self) -> dict[str, float]:
        return {
            "n_mated": float(self.scores.n_mated),
            "n_nonmated": float(self.scores.n_nonmated),
            "distinct_quality_values": float(self.quality.distinct_values),
            "largest_tie_group": float(self.quality.largest_tie_group),
        }


def _build_scores(similarity: npt.ArrayLike, mated: npt.ArrayLike, size: int) -> _Scores:
    scores = _float_vector(similarity, "similarity")
    mated_flags = _mated_vector(mated)
    if not scores.size == mated_flags.size == size:
        raise ValueError(
            f"similarity ({scores.size}), mated ({mated_flags.size}) and "
            f"quality ({size}) must have the same length"
        )
    if size == 0:
        raise ValueError("no comparisons")
    return _Scores.build(scores, mated_flags)


# --------------------------------------------------------------------------- thresholds


def fmr_threshold(nonmated_similarity: npt.ArrayLike, fmr: float = DEFAULT_FMR) -> float:
    """ISO EDC threshold: the smallest float64 t whose FMR, #{non-mated >= t} / n, is <= fmr.

    With k the largest count such that k / n <= fmr, that is the next float above the
    (k+1)-th largest non-mated score: exactly k' <= k non-mated scores reach it (fewer when
    the (k)-th and (k+1)-th tie), and no lower threshold keeps FMR <= fmr.
    """
    _check_fmr(fmr)
    scores = _float_vector(nonmated_similarity, "nonmated_similarity")
    return _iso_threshold(_LargestScores(np.arange(scores.size, dtype=np.int64), scores), fmr)


def _iso_threshold(largest: _LargestScores, fmr: float) -> float:
    if largest.size == 0:
        raise ValueError("no non-mated comparisons: no threshold can be set at an FMR")
    allowed = _largest_count_within_rate(largest.size, fmr)
    return float(np.nextafter(largest.values(allowed + 1)[allowed], np.inf))


def _largest_count_within_rate(total: int, rate: float) -> int:
    """Largest k with k / total <= rate, tested in float64 exactly as the rate is defined."""
    count = math.floor(rate * total)
    while count + 1 <= total and (count + 1) / total <= rate:
        count += 1
    while count > 0 and count / total > rate:
        count -= 1
    return count


def _numpy_linear_quantile(ascending_low: float, ascending_high: float, virtual: float) -> float:
    """np.quantile's 'linear' interpolation between two neighbouring order statistics,
    operation for operation, so the threshold matches np.quantile bit for bit."""
    gamma = virtual - math.floor(virtual)
    difference = ascending_high - ascending_low
    if gamma >= 0.5:
        return ascending_high - difference * (1.0 - gamma)
    return ascending_low + difference * gamma


# --------------------------------------------------------------------------- kept sets


@dataclass(frozen=True)
class _KeptView:
    """Comparisons kept after rejecting those whose rejection rank is < cut."""

    scores: _Scores
    rank: IntArray
    genuine_rank: IntArray

    @classmethod
    def of(cls, scores: _Scores, rank: IntArray) -> _KeptView:
        return cls(scores, rank, rank[scores.genuine_index])

    def kept_genuine(self, cut: int) -> int:
        return int(np.count_nonzero(self.genuine_rank >= cut))

    def kept_impostors(self, cut: int, kept_genuine: int) -> int:
        return self.rank.size - cut - kept_genuine

    def non_matches(self, cut: int, threshold: float, *, inclusive: bool) -> int:
        """Kept mated similarities below ``threshold`` (or equal to it, when ``inclusive``):
        only the mated scores up to the threshold are looked at."""
        side: Literal["left", "right"] = "right" if inclusive else "left"
        end = int(np.searchsorted(self.scores.genuine_sorted, threshold, side=side))
        return int(np.count_nonzero(self.genuine_rank[:end] >= cut))

    def lowest_genuine_above(self, cut: int, value: float) -> float:
        """The lowest kept mated similarity > ``value``; inf if none."""
        start = int(np.searchsorted(self.scores.genuine_sorted, value, side="right"))
        found = start + _first_at_least(self.genuine_rank[start:], cut)
        sorted_scores = self.scores.genuine_sorted
        return float(sorted_scores[found]) if found < sorted_scores.size else math.inf

    def highest_genuine(self, cut: int) -> float:
        """The highest kept mated similarity; -inf if none."""
        found = self.genuine_rank.size - 1 - _first_at_least(self.genuine_rank[::-1], cut)
        return float(self.scores.genuine_sorted[found]) if found >= 0 else -math.inf

    def largest_impostors(self, cut: int, count: int) -> FloatArray:
        """The ``count`` largest kept non-mated similarities, descending (fewer if fewer are
        kept). Scans a growing prefix of all non-mated scores, largest first: a cut rejects a
        minority, so a prefix of about twice ``count`` nearly always suffices."""
        largest = self.scores.largest_impostors
        prefix = 2 * count + 64
        while True:
            index, values = largest.top(prefix)
            kept = np.flatnonzero(self.rank[index] >= cut)
            if kept.size >= count or index.size == largest.size:
                return values[kept[:count]]
            prefix *= 2


def _first_at_least(values: IntArray, floor: int) -> int:
    """Index of the first value >= ``floor`` (``values.size`` if none), scanning windows that
    double in size: the first kept comparison is usually among the first few."""
    start, window = 0, 64
    while start < values.size:
        hits = np.flatnonzero(values[start : start + window] >= floor)
        if hits.size:
            return start + int(hits[0])
        start, window = start + window, 2 * window
    return int(values.size)


def _reject_counts(permille: Sequence[int], size: int) -> list[int]:
    return [rate * size // 1000 for rate in permille]


def _rates(permille: Sequence[int]) -> FloatArray:
    return np.asarray(permille, dtype=np.float64) / 1000.0


# --------------------------------------------------------------------------- areas


def _stepwise_pauc(discard: FloatArray, error: FloatArray, limit: float) -> float:
    """ISO EDC pAUC: Σ error(d_k)·(min(d_{k+1}, L) - d_k) over d_k < L (left-constant steps)."""
    widths = np.clip(np.minimum(discard[1:], limit) - discard[:-1], 0.0, None)
    return float(np.sum(error[:-1] * widths))


def _theoretical_best_area(initial_error: float, limit: float) -> float:
    """Area under the ideal EDC that discards exactly the errors first: e0²/2 - max(0, e0-L)²/2."""
    return initial_error**2 / 2 - max(0.0, initial_error - limit) ** 2 / 2


def _trapezoid(x: FloatArray, y: FloatArray) -> float:
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def _trapezoid_pauc(x: FloatArray, y: FloatArray, limit: float, end: PaucEnd) -> float:
    """Trapezoid area over rates <= L; with ``end="interpolate"`` an end point at L is added by
    linear interpolation when L is not on the grid (docs/protocols.md §4.2). VLM4FIQA's script
    in fact stops at the last grid point <= L (``"last_grid_point"``), e.g. 0.16 for L = 0.20."""
    tolerance = 1e-12
    inside = x <= limit + tolerance
    xs, ys = x[inside], y[inside]
    if end == "interpolate" and xs[-1] < limit - tolerance:
        xs = np.append(xs, limit)
        ys = np.append(ys, np.interp(limit, x, y))
    return _trapezoid(xs, ys)


def _limit_key(limit: float) -> str:
    return f"{round(limit * 100):02d}"


def _fmr_key(fmr: float) -> str:
    return "fmr" + np.format_float_scientific(fmr, trim="-", exp_digits=1)


def _curve(x: FloatArray, y: FloatArray) -> Curve:
    return [[float(a), float(b)] for a, b in zip(x, y, strict=True)]


# --------------------------------------------------------------------------- 1. ISO EDC


def iso_edc(
    similarity: npt.ArrayLike,
    mated: npt.ArrayLike,
    pair_quality: npt.ArrayLike | None = None,
    *,
    quality_a: npt.ArrayLike | None = None,
    quality_b: npt.ArrayLike | None = None,
    fmr: float = DEFAULT_FMR,
    threshold: float | None = None,
    subtract_best: bool = False,
) -> UtilityResult:
    """ISO/IEC 29794-1 FNM-EDC (Schlett et al., TBIOM 2023), docs/protocols.md §4.1.

    The threshold is ``threshold`` if given, else :func:`fmr_threshold` over the non-mated
    similarities. Mated comparisons only, sorted by pair quality; the curve has a point at
    every quality step (all comparisons of one quality are discarded together), with
    discard = #discarded / #mated and error = #false non-matches kept / #kept (a false
    non-match is similarity < threshold), plus the end point (1, 0). Areas are stepwise.
    """
    prepared = _Prepared.build(similarity, mated, pair_quality, quality_a, quality_b)
    return _iso_edc(prepared, fmr=fmr, threshold=threshold, subtract_best=subtract_best)


def _iso_edc(
    prepared: _Prepared, *, fmr: float, threshold: float | None, subtract_best: bool
) -> UtilityResult:
    scores = prepared.scores
    if scores.n_mated == 0:
        raise ValueError("no mated comparisons: FNMR is undefined")
    given = threshold is not None
    if threshold is None:
        _check_fmr(fmr)
        threshold = _iso_threshold(scores.largest_impostors, fmr)
    discard, error = _fnm_edc_points(prepared, threshold)
    metrics = _iso_metrics(discard, error, subtract_best)
    metrics |= {"iso_edc_threshold": threshold, "iso_edc_fnmr_at_fmr": float(error[0])}
    metrics |= {"threshold": threshold, "fnmr_at_fmr": float(error[0])}
    metrics |= prepared.common_metrics()
    settings: dict[str, object] = {
        "fmr": None if given else fmr,
        "threshold_source": "given" if given else "fmr over non-mated",
        "subtract_best": subtract_best,
    }
    return UtilityResult(ISO_EDC, metrics, {"fnm_edc": _curve(discard, error)}, settings)


def _fnm_edc_points(prepared: _Prepared, threshold: float) -> tuple[FloatArray, FloatArray]:
    order = prepared.quality.order
    mated_order = order[prepared.scores.mated[order]]
    quality = prepared.quality.quality[mated_order]
    is_error = prepared.scores.similarity[mated_order] < threshold
    total = mated_order.size
    errors_before = np.r_[0, np.cumsum(is_error)]
    # Evaluate only where the quality changes: a tie group is discarded in one step.
    discarded = np.flatnonzero(np.r_[True, quality[1:] != quality[:-1]])
    error = (errors_before[-1] - errors_before[discarded]) / (total - discarded)
    discard = discarded / total
    return np.r_[discard, 1.0], np.r_[error, 0.0]


def _iso_metrics(discard: FloatArray, error: FloatArray, subtract_best: bool) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for limit, key in [*((lim, f"pauc_{_limit_key(lim)}") for lim in PAUC_LIMITS), (1.0, "auc")]:
        area = _stepwise_pauc(discard, error, limit)
        metrics[f"iso_edc_{key}"] = area
        if subtract_best:
            best = _theoretical_best_area(float(error[0]), limit)
            metrics[f"iso_edc_{key}_minus_best"] = area - best
    return metrics


# --------------------------------------------------------------------------- 2. VLM4FIQA EvR


def vlm4fiqa_evr(
    similarity: npt.ArrayLike,
    mated: npt.ArrayLike,
    pair_quality: npt.ArrayLike | None = None,
    *,
    quality_a: npt.ArrayLike | None = None,
    quality_b: npt.ArrayLike | None = None,
    fmr: float = DEFAULT_FMR,
    seeds: Sequence[int] = VLM4FIQA_SEEDS,
    pauc_end: PaucEnd = "interpolate",
) -> UtilityResult:
    """The VLM-for-FIQA study's EvR (seed paper Table I; docs/protocols.md §4.2).

    At each reject rate r of 0, 0.005, …, 0.10, 0.11, 0.16, …, 0.46 the floor(r·N) comparisons
    of lowest pair quality are rejected, mated and non-mated alike. Ties at the cut are broken
    by a random key per seed — the order is ``np.lexsort((default_rng(seed).random(N),
    quality))`` — and FNMR is averaged over ``seeds``. Recomputed variant: the threshold is
    ``np.quantile(kept non-mated, 1 - fmr)`` (linear interpolation, bit-identical); fixed
    variant: the same quantile over all non-mated, kept. A match is similarity >= threshold.
    AUC is the trapezoid over the whole grid, pAUC over [0, L] (see ``pauc_end``). A point
    where no mated or no non-mated comparison is kept is NaN.

    Unlike the published script, the tie-break order is shared by all rates of a seed (it
    drew ``default_rng(42 + run)`` afresh per rate; each rate's kept set has the same
    distribution either way), and a threshold is taken from any number of kept non-mated
    scores (the script gives up below 10 and so reports FNMR 1).
    """
    prepared = _Prepared.build(similarity, mated, pair_quality, quality_a, quality_b)
    return _vlm4fiqa_evr(prepared, fmr=fmr, seeds=seeds, pauc_end=pauc_end)


def _vlm4fiqa_evr(
    prepared: _Prepared, *, fmr: float, seeds: Sequence[int], pauc_end: PaucEnd
) -> UtilityResult:
    _check_fmr(fmr)
    prepared.scores.require_both()
    if not seeds:
        raise ValueError("at least one seed is needed")
    cuts = _reject_counts(VLM4FIQA_REJECT_PERMILLE, prepared.quality.size)
    largest = prepared.scores.largest_impostors
    fixed = _upper_quantile(largest.values, largest.size, 1.0 - fmr)
    per_seed = [
        _vlm_seed_fnmr(
            _KeptView.of(prepared.scores, prepared.quality.seeded_rank(cuts, seed)),
            cuts,
            1.0 - fmr,
            fixed,
        )
        for seed in seeds
    ]
    recomputed = np.mean([curves[0] for curves in per_seed], axis=0)
    fixed_curve = np.mean([curves[1] for curves in per_seed], axis=0)
    rates = _rates(VLM4FIQA_REJECT_PERMILLE)
    metrics = _trapezoid_metrics("vlm4fiqa_evr", rates, recomputed, pauc_end)
    metrics |= _trapezoid_metrics("vlm4fiqa_evr_fixed", rates, fixed_curve, pauc_end)
    metrics |= {"vlm4fiqa_evr_threshold": fixed, "vlm4fiqa_evr_fnmr_at_fmr": float(recomputed[0])}
    metrics |= {"threshold": fixed, "fnmr_at_fmr": float(recomputed[0])}
    metrics |= prepared.common_metrics()
    curves = {
        "recomputed_threshold": _curve(rates, recomputed),
        "fixed_threshold": _curve(rates, fixed_curve),
    }
    settings: dict[str, object] = {
        "fmr": fmr,
        "seeds": list(seeds),
        "reject_rates": rates.tolist(),
        "pauc_end": pauc_end,
    }
    return UtilityResult(VLM4FIQA_EVR, metrics, curves, settings)


def _vlm_seed_fnmr(
    view: _KeptView, cuts: Sequence[int], quantile: float, fixed_threshold: float
) -> tuple[FloatArray, FloatArray]:
    """FNMR per reject rate for one tie-break order: recomputed and fixed threshold."""
    recomputed: list[float] = []
    fixed: list[float] = []
    for cut in cuts:
        kept_genuine = view.kept_genuine(cut)
        kept_impostors = view.kept_impostors(cut, kept_genuine)
        largest = functools.partial(view.largest_impostors, cut)
        threshold = _upper_quantile(largest, kept_impostors, quantile)
        # As in the published script, both variants are undefined without kept non-mated.
        undefined = kept_genuine == 0 or kept_impostors == 0
        for curve, value in ((recomputed, threshold), (fixed, fixed_threshold)):
            # A match is similarity >= threshold: non-matches are strictly below it.
            non_matches = view.non_matches(cut, value, inclusive=False)
            curve.append(math.nan if undefined else non_matches / kept_genuine)
    return np.asarray(recomputed), np.asarray(fixed)


def _upper_quantile(largest: Callable[[int], FloatArray], count: int, quantile: float) -> float:
    """``np.quantile(values, quantile)`` of ``count`` values, from only their largest ones
    (``largest(k)``: the k largest, descending); NaN for no values."""
    if count == 0:
        return math.nan
    virtual = (count - 1) * quantile
    if virtual >= count - 1:
        return float(largest(1)[0])
    low = math.floor(virtual)
    top = largest(count - low)
    # Ascending index `low` is the last of these, `low + 1` the one before it.
    return _numpy_linear_quantile(float(top[-1]), float(top[-2]), virtual)


def _trapezoid_metrics(
    prefix: str, rates: FloatArray, fnmr: FloatArray, pauc_end: PaucEnd
) -> dict[str, float]:
    metrics = {
        f"{prefix}_pauc_{_limit_key(limit)}": _trapezoid_pauc(rates, fnmr, limit, pauc_end)
        for limit in PAUC_LIMITS
    }
    metrics[f"{prefix}_auc"] = _trapezoid(rates, fnmr)
    return metrics


# --------------------------------------------------------------------------- 3. CR-FIQA ERC


def crfiqa_erc(
    similarity: npt.ArrayLike,
    mated: npt.ArrayLike,
    pair_quality: npt.ArrayLike | None = None,
    *,
    quality_a: npt.ArrayLike | None = None,
    quality_b: npt.ArrayLike | None = None,
    fmrs: Sequence[float] = CRFIQA_FMRS,
    fmr: float = DEFAULT_FMR,
) -> UtilityResult:
    """CR-FIQA's ERC (Boutros et al., CVPR 2023; ERC/erc.py, ERC/roc.py), docs/protocols.md §4.3.

    At each rate r = 0, 0.05, …, 0.95 the floor(r·N) comparisons of lowest pair quality are
    rejected, mated and non-mated alike, in stable order (ties by input order; CR-FIQA's
    unstable argsort leaves them arbitrary). On the kept comparisons, CR-FIQA's operating
    point: among the thresholds t drawn from all kept scores, the one whose FMR
    #{non-mated >= t} / n is closest to the target (on a tie, the lower t, as np.argmin over
    ascending thresholds picks); then FNMR = #{mated <= t} / #mated, because erc.py accepts
    only distances strictly below the threshold. AUC is the trapezoid over the 20 rates, per
    FMR in ``fmrs``; ``threshold``/``fnmr_at_fmr`` are the r = 0 operating point at ``fmr``.
    """
    prepared = _Prepared.build(similarity, mated, pair_quality, quality_a, quality_b)
    return _crfiqa_erc(prepared, fmrs=fmrs, fmr=fmr)


def _crfiqa_erc(prepared: _Prepared, *, fmrs: Sequence[float], fmr: float) -> UtilityResult:
    if not fmrs:
        raise ValueError("at least one FMR is needed")
    for value in (*fmrs, fmr):
        _check_fmr(value)
    prepared.scores.require_both()
    view = _KeptView.of(prepared.scores, prepared.quality.position)
    rates = _rates(CRFIQA_REJECT_PERMILLE)
    cuts = _reject_counts(CRFIQA_REJECT_PERMILLE, prepared.quality.size)
    fnmr = np.asarray([_crfiqa_points(view, cut, fmrs)[:, 1] for cut in cuts]).T
    threshold, fnmr_at_fmr = (float(value) for value in _crfiqa_points(view, 0, [fmr])[0])
    metrics = {
        f"crfiqa_erc_auc_{_fmr_key(target)}": _trapezoid(rates, curve)
        for target, curve in zip(fmrs, fnmr, strict=True)
    }
    metrics |= {"crfiqa_erc_threshold": threshold, "crfiqa_erc_fnmr_at_fmr": fnmr_at_fmr}
    metrics |= {"threshold": threshold, "fnmr_at_fmr": fnmr_at_fmr}
    metrics |= prepared.common_metrics()
    curves = {
        _fmr_key(target): _curve(rates, curve) for target, curve in zip(fmrs, fnmr, strict=True)
    }
    settings: dict[str, object] = {
        "fmrs": list(fmrs),
        "fmr": fmr,
        "reject_rates": rates.tolist(),
    }
    return UtilityResult(CRFIQA_ERC, metrics, curves, settings)


def _crfiqa_points(view: _KeptView, cut: int, targets: Sequence[float]) -> FloatArray:
    """(threshold, FNMR) per target FMR at CR-FIQA's closest-FMR operating point on the
    comparisons kept after ``cut``; NaN when no mated or no non-mated comparison is kept."""
    kept_genuine = view.kept_genuine(cut)
    kept_impostors = view.kept_impostors(cut, kept_genuine)
    points = np.full((len(targets), 2), math.nan)
    if kept_genuine == 0 or kept_impostors == 0:
        return points
    for row, target in enumerate(targets):
        largest = _largest_with_whole_tie_group(
            functools.partial(view.largest_impostors, cut),
            kept_impostors,
            math.floor(target * kept_impostors) + 2,
        )
        threshold = _crfiqa_threshold(view, cut, largest, kept_impostors, target)
        # erc.py accepts only distances strictly below the threshold: ties are non-matches.
        non_matches = view.non_matches(cut, threshold, inclusive=True)
        points[row] = threshold, non_matches / kept_genuine
    return points


def _largest_with_whole_tie_group(
    largest: Callable[[int], FloatArray], available: int, count: int
) -> FloatArray:
    """At least ``count`` largest scores and the next one, growing until the ``count``-th
    score's tie group is complete (or all scores are taken)."""
    count = min(count, available)
    while True:
        values = largest(min(available, count + 1))
        if values.size <= count or values[count - 1] != values[count]:
            return values
        count = min(available, 2 * count)


def _crfiqa_threshold(
    view: _KeptView, cut: int, largest: FloatArray, kept_impostors: int, target: float
) -> float:
    """CR-FIQA's threshold: the lowest kept score whose FMR is closest to ``target``."""
    # Achievable match counts c = #{non-mated >= t}: the ends of tie groups among the largest
    # non-mated scores, and 0 when a mated score exceeds them all.
    complete = largest.size == kept_impostors
    ends = np.flatnonzero(largest[1:] != largest[:-1]) + 1
    if complete:
        ends = np.r_[ends, kept_impostors]
    if view.highest_genuine(cut) > largest[0]:
        ends = np.r_[0, ends]
    # Candidates in ascending threshold order are descending c; argmin keeps the first.
    candidates = ends[::-1]
    chosen = int(candidates[np.argmin(np.abs(candidates / kept_impostors - target))])
    below = float(largest[chosen]) if chosen < kept_impostors else -math.inf
    upper = float(largest[chosen - 1]) if chosen > 0 else math.inf
    return min(upper, view.lowest_genuine_above(cut, below))


# --------------------------------------------------------------------------- all, averages


def all_protocols(
    similarity: npt.ArrayLike,
    mated: npt.ArrayLike,
    pair_quality: npt.ArrayLike | None = None,
    *,
    quality_a: npt.ArrayLike | None = None,
    quality_b: npt.ArrayLike | None = None,
    fmr: float = DEFAULT_FMR,
    threshold: float | None = None,
    subtract_best: bool = False,
    seeds: Sequence[int] = VLM4FIQA_SEEDS,
    pauc_end: PaucEnd = "interpolate",
    crfiqa_fmrs: Sequence[float] = CRFIQA_FMRS,
) -> AllProtocolsResult:
    """ISO EDC, VLM4FIQA EvR and CR-FIQA ERC on the same comparisons, sorted once.

    ``threshold`` (if given) fixes the ISO EDC threshold only; the other two protocols
    always derive theirs from ``fmr``.
    """
    prepared = _Prepared.build(similarity, mated, pair_quality, quality_a, quality_b)
    return _all_protocols(
        prepared,
        fmr=fmr,
        threshold=threshold,
        subtract_best=subtract_best,
        seeds=seeds,
        pauc_end=pauc_end,
        crfiqa_fmrs=crfiqa_fmrs,
    )


def _all_protocols(
    prepared: _Prepared,
    *,
    fmr: float,
    threshold: float | None,
    subtract_best: bool,
    seeds: Sequence[int],
    pauc_end: PaucEnd,
    crfiqa_fmrs: Sequence[float],
) -> AllProtocolsResult:
    prepared.scores.require_both()
    results = {
        ISO_EDC: _iso_edc(prepared, fmr=fmr, threshold=threshold, subtract_best=subtract_best),
        VLM4FIQA_EVR: _vlm4fiqa_evr(prepared, fmr=fmr, seeds=seeds, pauc_end=pauc_end),
        CRFIQA_ERC: _crfiqa_erc(prepared, fmrs=crfiqa_fmrs, fmr=fmr),
    }
    return AllProtocolsResult(results)


def average_over_models(
    similarity_by_model: Mapping[str, npt.ArrayLike],
    mated: npt.ArrayLike,
    pair_quality: npt.ArrayLike | None = None,
    *,
    quality_a: npt.ArrayLike | None = None,
    quality_b: npt.ArrayLike | None = None,
    fmr: float = DEFAULT_FMR,
    subtract_best: bool = False,
    seeds: Sequence[int] = VLM4FIQA_SEEDS,
    pauc_end: PaucEnd = "interpolate",
    crfiqa_fmrs: Sequence[float] = CRFIQA_FMRS,
) -> ModelAverageResult:
    """All three protocols per FR model on the same pairs and qualities, then the mean of
    every metric over models (as the seed paper's Table I averages over ArcFace, TransFace and
    LVFace) and the pointwise mean of every curve (all curves share their x values because
    the pairs and qualities are shared). Each model's threshold comes from its own FMR."""
    if not similarity_by_model:
        raise ValueError("no FR models given")
    quality = _QualityIndex.build(_resolve_pair_quality(pair_quality, quality_a, quality_b))
    per_model = {
        model: _all_protocols(
            _Prepared(quality, _build_scores(similarity, mated, quality.size)),
            fmr=fmr,
            threshold=None,
            subtract_best=subtract_best,
            seeds=seeds,
            pauc_end=pauc_end,
            crfiqa_fmrs=crfiqa_fmrs,
        )
        for model, similarity in similarity_by_model.items()
    }
    return ModelAverageResult(
        models=list(per_model),
        metrics=_mean_metrics([result.metrics for result in per_model.values()]),
        per_model={model: result.metrics for model, result in per_model.items()},
        curves=_mean_curves(list(per_model.values())),
    )


def _mean_metrics(metrics: Sequence[Mapping[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([values[key] for values in metrics])) for key in metrics[0]}


def _mean_curves(results: Sequence[AllProtocolsResult]) -> dict[str, dict[str, Curve]]:
    averaged: dict[str, dict[str, Curve]] = {}
    for protocol, first in results[0].results.items():
        averaged[protocol] = {}
        for name in first.curves:
            stacked = np.asarray([result.results[protocol].curves[name] for result in results])
            averaged[protocol][name] = _curve(stacked[0, :, 0], stacked[:, :, 1].mean(axis=0))
    return averaged
