"""`fiqabench merge`: the shards of `eval --shard I/N` combined into the run an unsharded eval
would have written, with the same records in the same order and metrics recomputed over them.

Shards belong together when they ran the same model (fingerprint), fiqabench version, tasks
(names and spec hashes), seed, limit, scoring and include paths, with the same N, and each
shard 1..N is present once. Every check names the folder at fault.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fiqabench.benchmark.pipeline import mark_scoring, summarise
from fiqabench.benchmark.rescore import task_as_run
from fiqabench.benchmark.results import (
    SAMPLES_FILE,
    JudgeInfo,
    ResultsFile,
    RunManifest,
    TaskManifest,
    TaskResults,
    Timing,
    read_results,
    read_samples,
)
from fiqabench.benchmark.schema import Record
from fiqabench.benchmark.sharding import Shard
from fiqabench.errors import UserError
from fiqabench.judges.judging import judged_name, needs_role
from fiqabench.tasks.base import Task
from fiqabench.tasks.registry import TaskRegistry

# What summarise computes from the records; every other field of an entry (protocol, judge and
# judge details, prompt hashes...) is kept as the shards wrote it.
RECOMPUTED_FIELDS = (
    "metrics",
    "ci95",
    "counts",
    "breakdowns",
    "curves",
    "details",
    "timing",
    "error_examples",
)
JUDGE_COUNTERS = (
    "n_calls",
    "n_cached",
    "n_errors",
    "n_unparseable",
    "input_tokens",
    "output_tokens",
)


@dataclass(frozen=True)
class ShardRun:
    folder: Path
    shard: Shard
    results: ResultsFile
    records: list[Record]

    @property
    def manifest(self) -> RunManifest:
        return self.results.manifest

    def task_records(self, task: str) -> list[Record]:
        return [record for record in self.records if record.task == task]


def read_shards(folders: Sequence[Path]) -> list[ShardRun]:
    """The shard runs in `folders`, ordered 1..N, once they are checked to belong together."""
    if not folders:
        raise UserError("give the run folders of the shards to merge")
    runs = sorted((_read_shard(folder) for folder in folders), key=lambda run: run.shard.index)
    _check_complete(runs)
    for run in runs[1:]:
        _check_same_run(runs[0], run)
    return runs


def registry_for(runs: Sequence[ShardRun], extra_paths: Sequence[Path] = ()) -> TaskRegistry:
    """The tasks the shards ran: built-in, from their include paths, and from `extra_paths`."""
    recorded = [Path(path) for path in runs[0].manifest.include_paths]
    return TaskRegistry(list(dict.fromkeys([*recorded, *extra_paths])))


def merge_shards(
    runs: Sequence[ShardRun], registry: TaskRegistry, *, command: Sequence[str] = ()
) -> tuple[ResultsFile, list[Record]]:
    """The merged results and records (records of each task in the task's sample order)."""
    reference = runs[0].manifest
    results = ResultsFile(manifest=_merged_manifest(runs, command))
    all_records: list[Record] = []
    for entry in reference.tasks:
        task = _task_as_run(registry, entry)
        records = _merged_records(task, runs, reference.limit)
        all_records.extend(records)
        results.manifest.tasks.append(entry.model_copy(update={"n_samples": len(records)}))
        timing = _summed_timing(task.name, runs, records)
        fresh = summarise(task, records, reference.model, reference.seed, timing)
        for name, computed in fresh.items():
            merged = _with_run_fields(name, computed, runs, reference.scoring)
            _check_judged_alike(task.name, records, merged.judges)
            results.results[name] = merged
    return results, all_records


def _read_shard(folder: Path) -> ShardRun:
    results = read_results(folder)
    manifest = results.manifest
    if manifest.shard is None:
        raise UserError("is not a shard (it ran without --shard): nothing to merge", path=folder)
    try:
        shard = Shard.parse(manifest.shard)
    except UserError:
        raise UserError(
            f"results.json names an invalid shard '{manifest.shard}'", path=folder
        ) from None
    if manifest.finished_at is None:
        raise UserError(
            f"shard {shard} did not finish (results.json has no finished_at): run its eval "
            "command again to complete it",
            path=folder,
        )
    records = read_samples(folder)
    known = {task.name for task in manifest.tasks}
    strays = sorted({record.task for record in records} - known)
    if strays:
        raise UserError(
            f"holds records of task(s) {strays}, which results.json does not list",
            path=folder / SAMPLES_FILE,
        )
    return ShardRun(folder=folder, shard=shard, results=results, records=records)


def _check_complete(runs: Sequence[ShardRun]) -> None:
    first = runs[0]
    seen: dict[int, Path] = {}
    for run in runs:
        if run.shard.count != first.shard.count:
            raise UserError(
                f"is shard {run.shard}, but {first.folder} is shard {first.shard}: "
                "shards of one run share N",
                path=run.folder,
            )
        if run.shard.index in seen:
            raise UserError(
                f"is shard {run.shard}, and so is {seen[run.shard.index]}: give each shard once",
                path=run.folder,
            )
        seen[run.shard.index] = run.folder
    count = first.shard.count
    missing = [f"{index}/{count}" for index in range(1, count + 1) if index not in seen]
    if missing:
        raise UserError(
            f"shard(s) {', '.join(missing)} missing: merge needs all {count} shards of the run"
        )


def _check_same_run(reference: ShardRun, run: ShardRun) -> None:
    expected, found = reference.manifest, run.manifest
    checks: list[tuple[str, object, object]] = [
        ("fiqabench version", expected.fiqabench_version, found.fiqabench_version),
        ("seed", expected.seed, found.seed),  # before the model, whose identity may hold it
        ("--limit", expected.limit, found.limit),
        ("scoring", expected.scoring, found.scoring),
        ("include paths", expected.include_paths, found.include_paths),
        ("tasks", [t.name for t in expected.tasks], [t.name for t in found.tasks]),
        ("model", expected.model.fingerprint(), found.model.fingerprint()),
    ]
    for what, wanted, actual in checks:
        if actual != wanted:
            raise UserError(
                f"does not belong with {reference.folder}: {what} {actual} instead of {wanted}",
                path=run.folder,
            )
    for mine, theirs in zip(expected.tasks, found.tasks, strict=True):
        if (mine.spec_sha256, mine.template_sha256) != (theirs.spec_sha256, theirs.template_sha256):
            raise UserError(
                f"does not belong with {reference.folder}: task '{mine.name}' ran from another "
                "spec or other prompt templates",
                path=run.folder,
            )


def _task_as_run(registry: TaskRegistry, entry: TaskManifest) -> Task:
    """The task, checked to be the one the shards ran, with the prompt variants they asked."""
    task = task_as_run(registry, entry)
    if task.loaded.sha256 != entry.spec_sha256:
        raise UserError(
            f"task '{entry.name}' has changed since the shards ran (its spec's sha256 differs): "
            "its metrics would be recomputed with other settings",
            path=task.loaded.path,
        )
    return task


def _merged_records(task: Task, runs: Sequence[ShardRun], limit: int | None) -> list[Record]:
    samples = task.samples()[:limit] if limit is not None else task.samples()
    ids = [sample.id for sample in samples]
    merged: dict[int, Record] = {}
    for run in runs:
        positions = run.shard.positions(ids)
        records = run.task_records(task.name)
        if [record.sample_id for record in records] != [ids[p] for p in positions]:
            raise UserError(
                f"its {len(records)} records of task '{task.name}' are not the "
                f"{len(positions)} samples shard {run.shard} takes from the task's data: has the "
                "data changed since the run?",
                path=run.folder / SAMPLES_FILE,
            )
        merged.update(zip(positions, records, strict=True))
    return [merged[position] for position in range(len(ids))]


def _summed_timing(task: str, runs: Sequence[ShardRun], records: Sequence[Record]) -> Timing:
    parts = [_task_timing(run.results, task) for run in runs]
    generated = sum(part.n_generated for part in parts)
    generation_s = sum(part.generation_s for part in parts)
    # Like the pipeline: the mean over the distinct requests that were answered.
    latencies = {
        r.request_key: r.latency_s
        for r in records
        if r.request_key is not None and r.error is None and r.latency_s is not None
    }
    return Timing(
        n_requests=sum(part.n_requests for part in parts),
        n_cached=sum(part.n_cached for part in parts),
        n_generated=generated,
        generation_s=round(generation_s, 6),
        ms_per_sample=round(1000 * generation_s / generated, 4) if generated else None,
        mean_latency_ms=(
            round(1000 * sum(latencies.values()) / len(latencies), 4) if latencies else None
        ),
        input_tokens=sum(part.input_tokens for part in parts),
        output_tokens=sum(part.output_tokens for part in parts),
    )


def _task_timing(results: ResultsFile, task: str) -> Timing:
    # Every entry of a task carries the task's timing; a shard with no sample may have none.
    return next((e.timing for e in results.results.values() if e.task == task), Timing())


def _with_run_fields(
    name: str, computed: TaskResults, runs: Sequence[ShardRun], scoring: str
) -> TaskResults:
    """The recomputed numbers, in the entry a shard wrote (which keeps what the run added)."""
    written = next((run.results.results[name] for run in runs if name in run.results.results), None)
    if written is None:  # no shard had enough samples for this entry
        mark_scoring(computed, scoring)
        return computed
    update: dict[str, object] = {field: getattr(computed, field) for field in RECOMPUTED_FIELDS}
    update["judges"] = judges = _summed_judges(name, runs)
    update["judge"] = judged_name(computed.judge, judges)
    return written.model_copy(update=update, deep=True)


def _summed_judges(name: str, runs: Sequence[ShardRun]) -> list[JudgeInfo]:
    """Each judge's calls, tokens and cost over all shards; the judge must be the same model."""
    by_role: dict[str, JudgeInfo] = {}
    for run in runs:
        entry = run.results.results.get(name)
        for info in entry.judges if entry is not None else []:
            total = by_role.get(info.role)
            if total is None:
                by_role[info.role] = info.model_copy(deep=True)
                continue
            _check_same_judge(name, total, info, run.folder)
            for counter in JUDGE_COUNTERS:
                setattr(total, counter, getattr(total, counter) + getattr(info, counter))
            total.template_sha256 = {**total.template_sha256, **info.template_sha256}
            costs = (total.cost_usd, info.cost_usd)
            total.cost_usd = None if None in costs else round(sum(c or 0.0 for c in costs), 6)
    return list(by_role.values())


def _check_same_judge(name: str, first: JudgeInfo, other: JudgeInfo, folder: Path) -> None:
    same_templates = all(
        first.template_sha256.get(template, sha) == sha
        for template, sha in other.template_sha256.items()
    )
    asked = (first.model.fingerprint(), first.rounds, first.temperature)
    if asked != (other.model.fingerprint(), other.rounds, other.temperature) or not same_templates:
        raise UserError(
            f"entry '{name}' was scored by {other.role} {other.model.alias} ({other.rounds} "
            f"rounds, temperature {other.temperature:g}) here and by {first.model.alias} "
            f"({first.rounds} rounds, temperature {first.temperature:g}) or other rubric "
            "templates in another shard: judge all shards alike",
            path=folder,
        )


def _check_judged_alike(task: str, records: list[Record], judges: list[JudgeInfo]) -> None:
    """A shard run without the judge (or extractor) the others had would mix two protocols."""
    for info in judges:
        left = next((r for r in records if needs_role(r, info.role)), None)
        if left is not None:
            raise UserError(
                f"sample '{left.sample_id}' of task '{task}' was not read by the {info.role} "
                f"{info.model.alias}, which scored other shards: run `fiqabench score --run "
                f"SHARD_DIR --{info.role} {info.model.alias}` on its shard first"
            )


def _merged_manifest(runs: Sequence[ShardRun], command: Sequence[str]) -> RunManifest:
    manifests = [run.manifest for run in runs]
    durations = [m.duration_s for m in manifests]
    return manifests[0].model_copy(
        update={
            "shard": None,
            "command": list(command),
            "tasks": [],
            # ISO 8601 times in UTC, all written alike: their text order is their time order.
            "started_at": min(m.started_at for m in manifests),
            "finished_at": max(m.finished_at or "" for m in manifests),
            # Machine time over all shards, not the wall time from first start to last finish.
            "duration_s": (
                None if None in durations else round(sum(d or 0.0 for d in durations), 3)
            ),
        },
        deep=True,
    )
