"""Scoring without a model: imported predictions, or the saved responses of an earlier run."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from fiqabench.benchmark.pipeline import (
    input_error_record,
    mark_scoring,
    score_response,
    summarise,
    task_manifest,
    utc_now,
)
from fiqabench.benchmark.results import (
    ResultsFile,
    RunManifest,
    TaskManifest,
    read_jsonl,
    read_results,
    read_samples,
)
from fiqabench.benchmark.schema import ModelIdentity, QAItem, Record, Response
from fiqabench.errors import UserError, describe_validation_error
from fiqabench.judges.judging import JUDGE_STAGES, Judging, replay_verdict
from fiqabench.tasks.base import Sample, Task
from fiqabench.tasks.registry import TaskRegistry
from fiqabench.tasks.scalar import VARIANTS, ScalarTask


class Prediction(BaseModel):
    model_config = ConfigDict(extra="ignore")
    sample_id: str
    response: str


def read_predictions(path: Path, known_ids: set[str]) -> dict[str, str]:
    predictions: dict[str, str] = {}
    for number, document in read_jsonl(path):
        try:
            prediction = Prediction.model_validate(document)
        except ValidationError as exc:
            raise UserError(describe_validation_error(exc), path=path, line=number) from exc
        if prediction.sample_id not in known_ids:
            raise UserError(f"unknown sample_id '{prediction.sample_id}'", path=path, line=number)
        if prediction.sample_id in predictions:
            raise UserError(f"duplicate sample_id '{prediction.sample_id}'", path=path, line=number)
        predictions[prediction.sample_id] = prediction.response
    return predictions


def score_predictions(
    task: Task, path: Path, *, seed: int = 0, judging: Judging | None = None
) -> tuple[ResultsFile, list[Record]]:
    """Score `{"sample_id", "response"}` lines; samples with no prediction count as errors."""
    samples = task.samples()
    predictions = read_predictions(path, {sample.id for sample in samples})
    records = []
    for sample in samples:
        if sample.error is not None:
            records.append(input_error_record(task, sample, sample.error))
        elif sample.id not in predictions:
            records.append(input_error_record(task, sample, "no prediction for this sample"))
        else:
            records.append(score_response(task, sample, Response(text=predictions[sample.id])))
    identity = ModelIdentity(
        alias=f"predictions:{path.name}", runner="predictions", model_id=str(path.resolve())
    )
    manifest = RunManifest(model=identity, seed=seed, started_at=utc_now())
    manifest.tasks.append(task_manifest(task, len(records)))
    if judging is not None:
        records = judging.apply(task, records)
    entries = summarise(task, records, identity, seed)
    for entry in entries.values():
        if judging is not None:
            judging.annotate(entry)
    return ResultsFile(manifest=manifest, results=entries), records


def rescore_run(
    run_dir: Path, registry: TaskRegistry, *, judging: Judging | None = None
) -> tuple[ResultsFile, list[Record]]:
    """Score a run's saved responses again with the current rules, and `judging` if given.

    Without `judging`, the verdicts an LLM judge or extractor gave earlier are recomputed from
    the replies the records stored (no model call), and the results keep their judge entries.
    """
    previous = read_results(run_dir)
    saved = read_samples(run_dir)
    identity = previous.manifest.model
    seed = previous.manifest.seed
    rescored_all: list[Record] = []
    results = previous.model_copy(deep=True)
    for entry in previous.manifest.tasks:
        task = task_as_run(registry, entry)
        by_id = {sample.id: sample for sample in task.samples()}
        old = [r for r in saved if r.task == entry.name]
        rescored = [_rescore(task, by_id, r, keep_judged=judging is None) for r in old]
        if judging is not None:
            rescored = judging.apply(task, rescored)
        rescored_all.extend(rescored)
        timing = next(r.timing for r in previous.results.values() if r.task == entry.name)
        for name, fresh in summarise(task, rescored, identity, seed, timing).items():
            earlier = previous.results.get(name)
            mark_scoring(fresh, previous.manifest.scoring)
            if judging is not None:
                judging.annotate(fresh)
            elif earlier is not None and earlier.judges:
                fresh.judge, fresh.judges = earlier.judge, earlier.judges
            results.results[name] = fresh
    return results, rescored_all


def task_as_run(registry: TaskRegistry, entry: TaskManifest) -> Task:
    """The run's task from the registry, with the prompt variants the run asked for."""
    task = registry.get(entry.name)
    if isinstance(task, ScalarTask):  # `eval --variants` may have chosen other variants
        task.use_variants([name for name in entry.template_sha256 if name in VARIANTS])
    return task


def _rescore(
    task: Task, samples: dict[str, Sample], record: Record, *, keep_judged: bool
) -> Record:
    sample = samples.get(record.sample_id)
    if sample is None:
        raise UserError(
            f"sample '{record.sample_id}' of task '{task.name}' is no longer in the task's data"
        )
    judged = record.parse_stage in JUDGE_STAGES
    if record.response is None or (record.status == "error" and not judged):
        return record  # the model gave no answer: nothing to score
    score = record.parsed.get("direct_score") if isinstance(record.parsed, dict) else None
    response = Response(text=record.response, score=score, latency_s=record.latency_s or 0.0)
    fresh = score_response(task, sample, response, cached=record.cached)
    fresh = fresh.model_copy(
        update={"request_key": record.request_key, "prompt_hash": record.prompt_hash}
    )
    still_open = fresh.status in ("unscored", "parse_fail")
    if keep_judged and judged and still_open and isinstance(sample.item, QAItem):
        # The rules still cannot score it: the verdict the stored judge replies give stands.
        return replay_verdict(fresh, record, sample.item)
    return fresh
