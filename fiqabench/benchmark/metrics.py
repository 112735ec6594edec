"""Statistics shared by task kinds: accuracy with bootstrap confidence intervals, breakdowns."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import numpy.typing as npt
from scipy import stats

from fiqabench.benchmark.schema import STATUSES, Record

BOOTSTRAP_RESAMPLES = 2000
# Recomputing a number on another machine or library build may change its last bits.
REL_TOL = 1e-9
ABS_TOL = 1e-12  # near zero


def numbers_match(a: float, b: float) -> bool:
    """Whether two computations of a number agree: within 1e-9 relative (1e-12 absolute)."""
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def mean_or_none(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def bootstrap_mean_ci(
    values: Sequence[float] | npt.NDArray[np.float64], *, seed: int, level: float = 0.95
) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the mean; None when there are too few values to resample."""
    data = np.asarray(values, dtype=float)
    if data.size < 2:
        return None
    if np.all(data == data[0]):
        return (float(data[0]), float(data[0]))
    result = stats.bootstrap(
        (data,),
        np.mean,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
        vectorized=True,
    )
    low, high = result.confidence_interval
    return (float(low), float(high))


def status_counts(records: Iterable[Record]) -> dict[str, int]:
    counted = Counter(record.status for record in records)
    return {status: counted.get(status, 0) for status in STATUSES}


def grouped(records: Iterable[Record], key: Callable[[Record], str]) -> dict[str, list[Record]]:
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        groups[key(record) or "(unknown)"].append(record)
    return dict(sorted(groups.items()))
