"""The evaluation engine: samples → requests → (store | runner) → scored records → results."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import fiqabench
from fiqabench.benchmark.calls import NoProgress, ProgressSink, collect, content_key
from fiqabench.benchmark.results import (
    ResultsFile,
    RunManifest,
    TaskManifest,
    TaskResults,
    Timing,
    git_commit,
    write_results,
    write_samples,
)
from fiqabench.benchmark.schema import Message, ModelIdentity, Record, Request, Response
from fiqabench.benchmark.sharding import Shard
from fiqabench.benchmark.store import RecordStore
from fiqabench.errors import UserError
from fiqabench.judges.judging import Judging
from fiqabench.runners.base import LevelScorer, Runner
from fiqabench.tasks.base import Sample, Task

MAX_ERROR_EXAMPLES = 5
DEFAULT_MAX_ERROR_RATE = 0.05  # a run with more failed samples than this is not a result
LOGITS_SUFFIX = "+level-logits"


def _messages_for_hash(messages: Sequence[Message]) -> list[object]:
    # Images enter the hash by content only: moving a file must not invalidate its record, and
    # replacing its bytes must.
    return [m.model_dump(exclude={"content": {"__all__": {"path"}}}) for m in messages]


def prompt_hash(messages: Sequence[Message]) -> str:
    return content_key(_messages_for_hash(messages))


def build_request(
    identity: ModelIdentity,
    task: Task,
    sample: Sample,
    messages: tuple[Message, ...],
    *,
    logits: bool = False,
) -> Request:
    generation = task.spec.generation
    answer_space = task.answer_space(sample)
    level_scoring = task.level_scoring(sample) if logits else None
    if logits and level_scoring is None:
        raise UserError(f"task '{task.name}' has no level prompt for sample {sample.id!r}")
    key = content_key(
        {
            "model": identity.fingerprint(),
            "messages": _messages_for_hash(messages),
            "generation": generation.model_dump(),
            "answer_space": answer_space.model_dump() if answer_space else None,
            "level_scoring": level_scoring.model_dump() if level_scoring else None,
            "harness": fiqabench.__version__,
        }
    )
    return Request(
        key=key,
        sample_id=sample.id,
        task=task.name,
        messages=messages,
        generation=generation,
        answer_space=answer_space,
        level_scoring=level_scoring,
    )


def score_response(
    task: Task,
    sample: Sample,
    response: Response,
    *,
    request: Request | None = None,
    cached: bool = False,
) -> Record:
    """Join a sample and its response into a record; a failed call stays an error, never wrong."""
    record = Record(
        sample_id=sample.id,
        task=task.name,
        request_key=request.key if request else None,
        prompt_hash=prompt_hash(request.messages) if request else None,
        response=response.text,
        status="error",
        error=response.error,
        latency_s=response.latency_s,
        cached=cached,
        meta=dict(sample.meta),
    )
    if not response.ok:
        record.error = response.error or "no response text"
        return record
    scored = task.score(sample, response)
    record.parsed = scored.parsed
    record.parse_stage = scored.parse_stage
    record.status = scored.status
    record.correct = scored.correct
    record.score = scored.score
    return record


def input_error_record(task: Task, sample: Sample, error: str) -> Record:
    return Record(
        sample_id=sample.id, task=task.name, status="error", error=error, meta=sample.meta
    )


@dataclass
class TaskRun:
    records: list[Record]
    timing: Timing


@dataclass
class Evaluation:
    runner: Runner
    store: RecordStore
    output_dir: Path
    seed: int = 0
    limit: int | None = None
    include_paths: list[str] = field(default_factory=list)
    progress: ProgressSink = field(default_factory=NoProgress)
    logits: bool = False  # score level prompts from next-token probabilities, not text
    judging: Judging | None = None  # LLM judge and answer extractor, when the run has them
    shard: Shard | None = None  # run only this slice of each task's samples (--shard I/N)

    def run(self, tasks: Sequence[Task]) -> ResultsFile:
        started = time.perf_counter()
        results = ResultsFile(
            manifest=RunManifest(
                git_commit=git_commit(),
                command=sys.argv,
                model=self.runner.identity,
                include_paths=self.include_paths,
                seed=self.seed,
                limit=self.limit,
                scoring="logits" if self.logits else "text",
                shard=str(self.shard) if self.shard is not None else None,
                started_at=utc_now(),
            )
        )
        records: list[Record] = []
        for task in tasks:
            task_run = self.run_task(task)
            if self.judging is not None:
                task_run.records = self.judging.apply(task, task_run.records)
            records.extend(task_run.records)
            results.manifest.tasks.append(task_manifest(task, len(task_run.records)))
            entries = summarise(
                task, task_run.records, self.runner.identity, self.seed, task_run.timing
            )
            for entry in entries.values():
                mark_scoring(entry, "logits" if self.logits else "text")
                if self.judging is not None:
                    self.judging.annotate(entry)
            results.results.update(entries)
            # Persist after every task so a later crash keeps the finished ones readable.
            write_samples(self.output_dir, records)
            write_results(self.output_dir, results)
        results.manifest.finished_at = utc_now()
        results.manifest.duration_s = round(time.perf_counter() - started, 3)
        write_results(self.output_dir, results)
        return results

    def run_task(self, task: Task) -> TaskRun:
        samples = task.samples()[: self.limit] if self.limit is not None else task.samples()
        if self.shard is not None:  # after --limit, so that shards of a limited run add up
            samples = self.shard.select(samples)
        self.progress.start(task.name, len(samples))
        requests: dict[str, Request] = {}
        input_errors: dict[str, str] = {}
        for sample in samples:
            if sample.error is not None:
                input_errors[sample.id] = sample.error
                continue
            try:
                messages = task.messages(sample)
            except UserError as exc:
                input_errors[sample.id] = str(exc)
                continue
            requests[sample.id] = build_request(
                self.runner.identity, task, sample, messages, logits=self.logits
            )

        cached = self.store.get_many(r.key for r in requests.values())
        unique_pending = {r.key: r for r in requests.values() if r.key not in cached}
        self.progress.advance(task.name, len(samples) - len(unique_pending))
        fresh, generation_s = self._generate(task.name, list(unique_pending.values()))

        records = []
        for sample in samples:
            if sample.id in input_errors:
                records.append(input_error_record(task, sample, input_errors[sample.id]))
                continue
            request = requests[sample.id]
            from_store = request.key in cached
            response = cached[request.key] if from_store else fresh[request.key]
            records.append(
                score_response(task, sample, response, request=request, cached=from_store)
            )
        timing = _timing(
            records,
            n_cached=len(requests) - len(unique_pending),
            pending=len(unique_pending),
            generation_s=generation_s,
            responses=[*cached.values(), *fresh.values()],
        )
        return TaskRun(records=records, timing=timing)

    def _generate(self, task: str, pending: list[Request]) -> tuple[dict[str, Response], float]:
        if any(r.level_scoring for r in pending) and not isinstance(self.runner, LevelScorer):
            raise UserError(
                f"model '{self.runner.identity.alias}' cannot read next-token probabilities: "
                "--scoring logits needs a local runner (hf, vllm)"
            )
        started = time.perf_counter()
        fresh = collect(
            pending,
            self._responses(pending),
            self.store,
            self.runner.identity.alias,
            lambda: self.progress.advance(task),
        )
        return fresh, time.perf_counter() - started

    def _responses(self, pending: list[Request]) -> Iterator[tuple[Request, Response]]:
        scoring = [r for r in pending if r.level_scoring is not None]
        if scoring:
            assert isinstance(self.runner, LevelScorer)
            for spec in dict.fromkeys(r.level_scoring for r in scoring):
                assert spec is not None
                batch = [r for r in scoring if r.level_scoring == spec]
                yield from self.runner.score_levels(batch, spec.levels, spec.weights)
        texts = [r for r in pending if r.level_scoring is None]
        if texts:
            yield from self.runner.generate(texts)


def _timing(
    records: list[Record],
    *,
    n_cached: int,
    pending: int,
    generation_s: float,
    responses: list[Response],
) -> Timing:
    latencies = [r.latency_s for r in responses if r.ok]
    usages = [r.usage for r in responses if r.usage is not None]
    return Timing(
        n_requests=n_cached + pending,
        n_cached=n_cached,
        n_generated=pending,
        generation_s=round(generation_s, 6),
        ms_per_sample=round(1000 * generation_s / pending, 4) if pending else None,
        mean_latency_ms=round(1000 * sum(latencies) / len(latencies), 4) if latencies else None,
        input_tokens=sum(u.input_tokens for u in usages),
        output_tokens=sum(u.output_tokens for u in usages),
    )


def task_manifest(task: Task, n_samples: int) -> TaskManifest:
    return TaskManifest(
        name=task.name,
        kind=task.spec.kind,
        protocol=task.spec.protocol,
        spec_path=str(task.loaded.path),
        spec_sha256=task.loaded.sha256,
        template_sha256=task.template_hashes(),
        builtin=task.loaded.builtin,
        n_samples=n_samples,
    )


def summarise(
    task: Task,
    records: list[Record],
    identity: ModelIdentity,
    seed: int,
    timing: Timing | None = None,
) -> dict[str, TaskResults]:
    """Result entries of one task, each naming its protocol, model, prompt hashes and judge."""
    errors = list(dict.fromkeys(r.error for r in records if r.error))
    return {
        name: TaskResults(
            task=task.name,
            protocol=entry.protocol or task.spec.protocol,
            model=identity.alias,
            model_id=identity.model_id,
            revision=identity.revision,
            judge=task.judge,
            prompt_template_sha256=entry.templates or task.template_hashes(),
            metrics=entry.metrics,
            ci95=entry.ci95,
            counts=entry.counts,
            breakdowns=entry.breakdowns,
            curves=entry.curves,
            details=entry.details,
            timing=timing or Timing(),
            error_examples=errors[:MAX_ERROR_EXAMPLES],
        )
        for name, entry in task.aggregate(records, seed).items()
    }


def mark_scoring(entry: TaskResults, scoring: str) -> None:
    """Scores read from next-token probabilities are a different protocol from parsed text."""
    if scoring == "logits" and not entry.protocol.endswith(LOGITS_SUFFIX):
        entry.protocol += LOGITS_SUFFIX


def error_rate(results: ResultsFile) -> float:
    total = sum(r.counts.get("total", 0) for r in results.results.values())
    errors = sum(r.counts.get("error", 0) for r in results.results.values())
    return errors / total if total else 0.0


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
