"""Error-versus-reject protocols on a million comparisons: seconds per protocol and in total.

usage: python benchmarks/edc.py [--comparisons N] [--mated-share S] [--levels L] [--repeat R]

Synthetic comparisons: S of them mated, similarity rising with pair quality, pair quality
rounded to L levels (ties like a VLM's 0-100 score; 0 = continuous). Each protocol is timed as
a standalone call (validation and sorting included), then all three through all_protocols,
which sorts once. Best of R runs.

The reference, measured in the same run, is one ``np.argsort`` (default kind) of the N pair
qualities: every protocol needs at least that sort, so ratios say how many sorts each costs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from fiqabench.benchmark import evr

Arrays = tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.float64]]


def synthetic(comparisons: int, mated_share: float, levels: int) -> Arrays:
    rng = np.random.default_rng(0)
    quality = rng.uniform(0, 1, comparisons)
    if levels:
        quality = np.round(quality * (levels - 1)) / (levels - 1)
    mated = rng.random(comparisons) < mated_share
    similarity = np.where(
        mated,
        rng.normal(0.3 + 0.4 * quality, 0.15),
        rng.normal(0.0 + 0.05 * quality, 0.1),
    )
    return similarity, mated, quality


def best_seconds(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--comparisons", type=int, default=1_000_000)
    parser.add_argument("--mated-share", type=float, default=0.01)
    parser.add_argument("--levels", type=int, default=101)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    similarity, mated, quality = synthetic(args.comparisons, args.mated_share, args.levels)
    print(
        f"{args.comparisons:,} comparisons, {int(mated.sum()):,} mated, "
        f"{len(np.unique(quality)):,} distinct pair qualities, best of {args.repeat}"
    )
    reference = best_seconds(lambda: np.argsort(quality), args.repeat)
    runs: dict[str, Callable[[], object]] = {
        "iso_edc": lambda: evr.iso_edc(similarity, mated, quality),
        "vlm4fiqa_evr (10 seeds)": lambda: evr.vlm4fiqa_evr(similarity, mated, quality),
        "crfiqa_erc (3 FMRs)": lambda: evr.crfiqa_erc(similarity, mated, quality),
        "all_protocols (total)": lambda: evr.all_protocols(similarity, mated, quality),
    }
    print(f"{'reference: np.argsort(quality)':32s} {reference:8.3f} s   1.0x")
    separate = 0.0
    for name, work in runs.items():
        seconds = best_seconds(work, args.repeat)
        if "total" not in name:
            separate += seconds
        print(f"{name:32s} {seconds:8.3f} s {seconds / reference:6.1f}x")
    print(f"{'sum of the three calls':32s} {separate:8.3f} s {separate / reference:6.1f}x")


if __name__ == "__main__":
    main()
