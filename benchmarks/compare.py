"""Time `fiqabench compare` on real runs of the mini suite, per task, and say which method gave
each metric its interval.

usage: python benchmarks/compare.py [--base random] [--base-seed 0] [--candidate random]
                                    [--candidate-seed 1] [--n-boot 1000]
                                    [--n-boot-aggregate 100] [--correction holm|none]
                                    [--runs DIR]

Both runs are made first with `fiqabench eval` (reused when --runs already holds them). The
default pair, the chance baseline under two seeds, differs on every task, so every interval
method is exercised; it is also a null comparison (equal expected performance), so any
regression it reports is a false alarm (try `--correction none`). The reference cost of each
task is one `aggregate` call on its records, the work every half-sample repeats twice (base and
candidate): `seconds / (2 * draws * aggregate)` near 1 means compare adds little beyond the
task's own metric code.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from fiqabench.benchmark.compare import (
    CompareSettings,
    compare_runs,
    load_run,
    prepared_task,
    task_registry,
)

TASKS = "mini-qa,mini-fiqa,mini-degradation"


def ensure_run(model: str, seed: int, runs: Path) -> Path:
    folder = runs / f"{model}-seed{seed}"
    if not (folder / "results.json").is_file():
        command = [sys.executable, "-m", "fiqabench", "eval", "--model", model, "--task", TASKS]
        command += ["--seed", str(seed), "--output-dir", str(folder), "--no-progress"]
        subprocess.run(command, check=True, capture_output=True)
    return folder


def aggregate_seconds(base: Path, repeats: int = 3) -> dict[str, float]:
    """Seconds of one `aggregate` call per task on all of the base run's records."""
    run = load_run(base)
    registry = task_registry(run, run)
    seconds = {}
    for task_name in dict.fromkeys(r.task for r in run.results.results.values()):
        records = [r for r in run.records if r.task == task_name]
        task = prepared_task(registry, task_name, records)
        task.aggregate(records, 0)  # warm caches (data files, comparisons)
        started = time.perf_counter()
        for _ in range(repeats):
            task.aggregate(records, 0)
        seconds[task_name] = (time.perf_counter() - started) / repeats
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="random")
    parser.add_argument("--base-seed", type=int, default=0)
    parser.add_argument("--candidate", default="random")
    parser.add_argument("--candidate-seed", type=int, default=1)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--n-boot-aggregate", type=int, default=100)
    parser.add_argument("--correction", choices=["holm", "none"], default="holm")
    parser.add_argument("--runs", type=Path, help="Folder to keep the two runs in.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        runs = args.runs or Path(scratch)
        base = ensure_run(args.base, args.base_seed, runs)
        candidate = ensure_run(args.candidate, args.candidate_seed, runs)
        reference = aggregate_seconds(base)
        settings = CompareSettings(
            n_boot=args.n_boot,
            n_boot_aggregate=args.n_boot_aggregate,
            correction=args.correction,
        )
        base_run, candidate_run = load_run(base), load_run(candidate)
        registry = task_registry(base_run, candidate_run)
        started = time.perf_counter()
        report = compare_runs(base_run, candidate_run, registry, settings)
        total = time.perf_counter() - started

    print(
        f"compare {args.candidate} (seed {args.candidate_seed}) against {args.base} "
        f"(seed {args.base_seed}): {total:.2f} s in all"
    )
    print(f"bootstrap resamples {args.n_boot}, half-samples {args.n_boot_aggregate}")
    for task in report.tasks:
        methods = Counter(m.method for e in task.entries for m in e.metrics)
        gated = Counter(m.method for e in task.entries for m in e.metrics if m.direction != "none")
        one = reference[task.task]
        draws = 2 * args.n_boot_aggregate if methods["half-sample"] else 0
        ratio = f"{task.seconds / (draws * one):.2f}" if draws else "n/a"
        print(
            f"  {task.task}: {task.seconds:.2f} s, {task.samples.shared} shared samples "
            f"({task.samples.units} units); aggregate {1000 * one:.1f} ms; "
            f"seconds / (2 x draws x aggregate) = {ratio}"
        )
        print(
            f"    methods, all metrics: {dict(methods)}; gated metrics: {dict(gated)}",
        )
        for entry in task.entries:
            by_method: dict[str, list[str]] = {}
            for metric in entry.metrics:
                if metric.direction != "none":
                    by_method.setdefault(metric.method, []).append(metric.metric)
            listed = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(by_method.items()))
            print(f"    {entry.entry} (gated) {listed}")
    verdicts = Counter(
        m.verdict
        for t in report.tasks
        for e in t.entries
        for m in e.metrics
        if m.direction != "none"
    )
    verdict = "PASS" if report.passed else f"REGRESSION ({len(report.regressions())} metrics)"
    print(f"verdict ({args.correction} correction): {verdict}; gated metrics: {dict(verdicts)}")


if __name__ == "__main__":
    main()
