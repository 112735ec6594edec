"""The static leaderboard site for 50 synthetic submissions over all mini tasks: seconds to build.

usage: python benchmarks/leaderboard.py [--models N] [--seed S] [--repeat R] [--keep DIR]

One real evaluation (the `random` baseline on every builtin mini task, full size) gives
results and records of the real shape; thumbnails are made once from the task images. Each
synthetic model is that run perturbed with a seeded RNG: metrics, intervals, breakdowns and
curves shifted, a share of closed answers flipped. Only `build_site` is timed (pages, plots,
per-sample browser, thumbnails written once per content, leaderboard.json), best of R runs.
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fiqabench.benchmark.results import ResultsFile, TaskResults
from fiqabench.benchmark.schema import Record
from fiqabench.leaderboard.bundle_thumbs import LocalTasks, LocalThumbnails
from fiqabench.leaderboard.site import build_site
from fiqabench.leaderboard.site_inputs import load_run_folder
from fiqabench.leaderboard.site_metrics import metric_info
from fiqabench.leaderboard.submission import Submission
from fiqabench.tasks.registry import TaskRegistry


def real_run(folder: Path) -> Path:
    tasks = ",".join(name for name in TaskRegistry().names if name.startswith("mini-"))
    command = [sys.executable, "-m", "fiqabench", "eval", "--model", "random", "--task", tasks]
    subprocess.run(
        [*command, "--output-dir", str(folder), "--no-progress"], check=True, capture_output=True
    )
    return folder


def _shift(value: float | None, rng: np.random.Generator, share: bool) -> float | None:
    """Shares move by a few points (kept in [0, 1]); other metrics by about 10%."""
    if value is None or not math.isfinite(value):
        return value
    if share:
        return float(np.clip(value + rng.normal(0, 0.05), 0.0, 1.0))
    return float(value * (1 + rng.normal(0, 0.1)))


def perturbed_entry(entry: TaskResults, rng: np.random.Generator) -> TaskResults:
    metrics = {
        name: _shift(value, rng, metric_info(name).percent) for name, value in entry.metrics.items()
    }
    ci95: dict[str, tuple[float, float] | None] = {}
    for name, ci in entry.ci95.items():
        old, new = entry.metrics.get(name), metrics.get(name)
        delta = (new - old) if ci and old is not None and new is not None else 0.0
        ci95[name] = (ci[0] + delta, ci[1] + delta) if ci else None
    breakdowns = {
        key: {
            value: {
                field: _shift(number, rng, True) if field == "accuracy" else number
                for field, number in cells.items()
            }
            for value, cells in groups.items()
        }
        for key, groups in entry.breakdowns.items()
    }
    curves = {}
    for name, points in entry.curves.items():
        scale = 1 + rng.normal(0, 0.1)
        curves[name] = [(x, None if y is None else y * scale) for x, y in points]
    return entry.model_copy(
        update={"metrics": metrics, "ci95": ci95, "breakdowns": breakdowns, "curves": curves}
    )


def synthetic_submission(base: Submission, index: int, seed: int) -> Submission:
    rng = np.random.default_rng([seed, index])
    name = f"synthetic-{index:02d}"
    manifest = base.results.manifest.model_copy(
        update={
            "model": base.results.manifest.model.model_copy(
                update={"alias": name, "model_id": f"synthetic/model-{index:02d}"}
            )
        }
    )
    results = ResultsFile(
        manifest=manifest,
        results={key: perturbed_entry(entry, rng) for key, entry in base.results.results.items()},
    )
    flips = rng.random(len(base.records)) < 0.2
    records: list[Record] = [
        r.model_copy(update={"correct": not r.correct}) if flip and r.correct is not None else r
        for r, flip in zip(base.records, flips, strict=True)
    ]
    # The thumbnails dict is shared: the same images, as submissions of one suite carry.
    return Submission(name=name, results=results, records=records, thumbnails=base.thumbnails)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="Also leave the last site here.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fiqabench-leaderboard-") as scratch:
        root = Path(scratch)
        start = time.perf_counter()
        tasks = LocalTasks(TaskRegistry())
        base = load_run_folder(real_run(root / "run"), LocalThumbnails(tasks))
        submissions = [synthetic_submission(base, i, args.seed) for i in range(args.models)]
        records = sum(len(s.records) for s in submissions)
        print(
            f"{args.models} synthetic submissions over {len(base.results.results)} result entries, "
            f"{records:,} records, {len(base.thumbnails)} thumbnails each "
            f"(prepared in {time.perf_counter() - start:.1f} s, not timed)"
        )
        times = []
        for _ in range(args.repeat):
            out = root / "site"
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            report = build_site(submissions, out, tasks=tasks)
            times.append(time.perf_counter() - start)
        best = min(times)
        print(
            f"build_site: {best:.2f} s (best of {args.repeat}; the first, compiling templates "
            f"and reading task data: {times[0]:.2f} s), {best / args.models * 1000:.0f} ms "
            f"per model; {report.pages} pages, {report.files} files, {report.thumbnails} "
            f"thumbnails, {report.bytes / 1e6:.1f} MB"
        )
        if args.keep:
            shutil.rmtree(args.keep, ignore_errors=True)
            shutil.copytree(out, args.keep)


if __name__ == "__main__":
    main()
