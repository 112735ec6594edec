"""Validate a submission bundle: safe to read, consistent, and every number re-scored.

The stages, each run only when the ones before it passed: the zip and its manifest
(`bundle.read_bundle`); results.json and samples.jsonl against their schemas; the text rules
(`validate_text`); the run's own consistency (tasks, entries, samples, thumbnails); the tasks
known to this machine's registry; then re-scoring the saved responses with this fiqabench
(`rescore_run`) and comparing every reported value, entry by entry and sample by sample.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

import fiqabench
from fiqabench.benchmark.pipeline import DEFAULT_MAX_ERROR_RATE
from fiqabench.benchmark.rescore import rescore_run, task_as_run
from fiqabench.benchmark.results import ResultsFile, write_results, write_samples
from fiqabench.benchmark.schema import Record
from fiqabench.errors import UserError, describe_validation_error
from fiqabench.judges.judging import JUDGE_ROLE_STAGES
from fiqabench.leaderboard.bundle_read import (
    DEFAULT_LIMITS,
    RESULTS_MEMBER,
    SAMPLES_MEMBER,
    BundleError,
    BundleLimits,
    Fail,
    parse_json,
    read_bundle,
)
from fiqabench.leaderboard.bundle_thumbs import thumbnail_key
from fiqabench.leaderboard.submission import Submission
from fiqabench.leaderboard.validate_diff import ABSENT, MetricDiff, differences, display
from fiqabench.leaderboard.validate_text import printable, shown, text_problems
from fiqabench.tasks.registry import TaskRegistry

BUNDLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
# Marks the private copy's entries: one that re-scoring leaves marked was not produced by it.
_NOT_RESCORED = "fiqabench.validate: not re-scored"


@dataclass(frozen=True)
class ValidationReport:
    """The verdict on one bundle: problems (malformed or unsafe) or diffs (tampered numbers)."""

    path: Path
    problems: tuple[str, ...] = ()
    diffs: tuple[MetricDiff, ...] = ()
    submission: Submission | None = None  # set exactly when the bundle is valid
    made_with: str | None = None  # the fiqabench version that packed it, once that is known

    @property
    def ok(self) -> bool:
        return self.submission is not None

    def summary(self) -> str:
        """One line: why the bundle is refused, or what it holds."""
        if self.problems:
            more = (
                f" (and {len(self.problems) - 1} more problems)" if len(self.problems) > 1 else ""
            )
            return f"{self.problems[0]}{more}"
        if self.diffs:
            first = self.diffs[0]
            return (
                f"{self.path}: {len(self.diffs)} reported values differ from re-scoring, first "
                f"{first.entry} {first.field}: reported {display(first.reported)}, recomputed "
                f"{display(first.recomputed)}{self.version_note()}; "
                "`fiqabench submit validate` lists them all"
            )
        assert self.submission is not None
        return (
            f"{self.path}: valid: {len(self.submission.results.results)} result entries, "
            f"{len(self.submission.records)} samples, {len(self.submission.thumbnails)} "
            "with thumbnails"
        )

    def version_note(self) -> str:
        """Says so when another fiqabench packed the bundle: its scoring rules may differ."""
        if self.made_with is None or self.made_with == fiqabench.__version__:
            return ""
        return f" (packed by fiqabench {self.made_with}, re-scored by {fiqabench.__version__})"


def validate_bundle(
    path: Path,
    *,
    include_paths: Sequence[Path] = (),
    registry: TaskRegistry | None = None,
    limits: BundleLimits = DEFAULT_LIMITS,
) -> ValidationReport:
    """Check a bundle completely; the tasks come from this machine (never from the bundle).

    `registry` defaults to the built-in tasks plus `include_paths`.
    """
    try:
        return _validate(path, registry or TaskRegistry(list(include_paths)), limits)
    except BundleError as exc:
        return ValidationReport(path=path, problems=(printable(str(exc)),))


def load_submission(
    path: Path,
    *,
    include_paths: Sequence[Path] = (),
    registry: TaskRegistry | None = None,
    limits: BundleLimits = DEFAULT_LIMITS,
) -> Submission:
    """The submission in a valid bundle; raises UserError saying why when it is not valid."""
    report = validate_bundle(path, include_paths=include_paths, registry=registry, limits=limits)
    if report.submission is None:
        raise UserError(report.summary())
    return report.submission


def load_submissions(
    folder: Path,
    *,
    include_paths: Sequence[Path] = (),
    limits: BundleLimits = DEFAULT_LIMITS,
) -> list[Submission]:
    """Every `*.zip` bundle in `folder`, sorted by name; any invalid one raises UserError."""
    if not folder.is_dir():
        raise UserError("not a folder of submission bundles", path=folder)
    registry = TaskRegistry(list(include_paths))
    submissions: list[Submission] = []
    seen: dict[str, Path] = {}
    for path in sorted(folder.glob("*.zip")):
        # Names become page names on the site: unique even where case does not count.
        other = seen.setdefault(path.stem.casefold(), path)
        if other != path:
            raise UserError(f"bundle name clashes with {other.name} (case aside)", path=path)
        submissions.append(load_submission(path, registry=registry, limits=limits))
    return submissions


def _validate(path: Path, registry: TaskRegistry, limits: BundleLimits) -> ValidationReport:
    def fail(problem: str) -> BundleError:
        return BundleError(problem, path=path)

    if not BUNDLE_NAME.fullmatch(path.stem):
        raise fail("bundle file names may use only letters, digits and . _ + - (128 at most)")
    contents = read_bundle(path, limits)
    results_document = parse_json(contents.results, RESULTS_MEMBER, fail)
    results = _results(results_document, fail)
    record_documents = _jsonl(contents.samples, SAMPLES_MEMBER, fail)
    records = _records(record_documents, fail)
    problems = text_problems(results, results_document, records, record_documents)
    del record_documents  # the raw lines were needed for the text rules only
    problems = problems or _consistency_problems(results, records, contents.manifest.thumbnails)
    problems = problems or _task_problems(results, registry)
    problems = problems or _coverage_problems(results, [r for _, r in records], registry)
    made_with = contents.manifest.fiqabench_version
    if problems:
        return ValidationReport(
            path=path,
            problems=tuple(printable(f"{path}: {p}") for p in problems),
            made_with=made_with,
        )
    plain_records = [record for _, record in records]
    recomputed, rescored = _rescore(results, plain_records, registry, fail)
    diffs = [*_entry_diffs(results, recomputed), *_record_diffs(plain_records, rescored)]
    if diffs:
        return ValidationReport(path=path, diffs=tuple(diffs), made_with=made_with)
    submission = Submission(
        name=path.stem,
        results=results,
        records=plain_records,
        thumbnails=contents.thumbnails,
    )
    return ValidationReport(path=path, submission=submission, made_with=made_with)


def _results(document: Any, fail: Fail) -> ResultsFile:
    try:
        return ResultsFile.model_validate(document)
    except ValidationError as exc:
        raise fail(f"{RESULTS_MEMBER}: {describe_validation_error(exc)}") from None


def _jsonl(data: bytes, member: str, fail: Fail) -> list[tuple[int, Any]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise fail(f"{member}: not UTF-8 text") from None
    documents = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            documents.append((number, parse_json(line, member, fail, number)))
    return documents


def _records(documents: list[tuple[int, Any]], fail: Fail) -> list[tuple[int, Record]]:
    records = []
    for number, document in documents:
        try:
            records.append((number, Record.model_validate(document)))
        except ValidationError as exc:
            raise fail(f"{SAMPLES_MEMBER}:{number}: {describe_validation_error(exc)}") from None
    return records


def _consistency_problems(
    results: ResultsFile, records: list[tuple[int, Record]], thumbnails: dict[str, str]
) -> list[str]:
    """What would make re-scoring skip or miscount something, so that it could go unchecked."""
    problems: list[str] = []
    if results.manifest.shard is not None:
        problems.append(
            f"{RESULTS_MEMBER}: partial results of shard {results.manifest.shard}: combine all "
            "shards with `fiqabench merge` and submit the merged run"
        )
    declared: dict[str, int] = {}
    for task in results.manifest.tasks:
        if task.name in declared:
            problems.append(f"{RESULTS_MEMBER}: task '{task.name}' is listed twice in the manifest")
        declared[task.name] = task.n_samples
    for name, entry in results.results.items():
        if entry.task not in declared:
            problems.append(
                f"{RESULTS_MEMBER}: entry '{name}' is of task '{entry.task}', which is not "
                "among the manifest's tasks"
            )
    with_entries = {entry.task for entry in results.results.values()}
    problems += [
        f"{RESULTS_MEMBER}: task '{name}' has no result entry"
        for name in declared
        if name not in with_entries
    ]
    first_line: dict[str, int] = {}
    counts: dict[str, int] = dict.fromkeys(declared, 0)
    for line, record in records:
        key = thumbnail_key(record.task, record.sample_id)
        if record.task not in declared:
            problems.append(f"{SAMPLES_MEMBER}:{line}: task '{record.task}' is not in the run")
        elif key in first_line:
            problems.append(
                f"{SAMPLES_MEMBER}:{line}: sample '{record.sample_id}' of task '{record.task}' "
                f"appears twice (first on line {first_line[key]})"
            )
        else:
            counts[record.task] += 1
        first_line.setdefault(key, line)
    problems += [
        f"{RESULTS_MEMBER}: the manifest gives task '{name}' {n} samples, "
        f"{SAMPLES_MEMBER} holds {counts[name]}"
        for name, n in declared.items()
        if counts[name] != n
    ]
    problems += [
        f"bundle.json: a thumbnail for {shown(key)}, which is no sample in {SAMPLES_MEMBER}"
        for key in thumbnails
        if key not in first_line
    ]
    return problems


def _task_problems(results: ResultsFile, registry: TaskRegistry) -> list[str]:
    """Tasks this machine cannot re-score: unknown here, or their data is missing."""
    problems = []
    for entry in results.manifest.tasks:
        try:
            task = registry.get(entry.name)
        except UserError as exc:  # names the task, with the registry's "did you mean"
            problems.append(f"{RESULTS_MEMBER}: {exc}")
            continue
        if not task.data_available():
            problems.append(
                f"cannot re-score task '{entry.name}': its data is missing on this machine "
                f"(run `{task.spec.prepare or 'see its spec'}`)"
            )
    return problems


def _coverage_problems(
    results: ResultsFile, records: list[Record], registry: TaskRegistry
) -> list[str]:
    """What would let a submission look better than its model: samples left out (a --limit
    run must hold exactly the first N), wrong answers turned into errors, or verdicts credited
    to a judge the results do not name."""
    problems = []
    limit = results.manifest.limit  # a --limit run must hold the first N samples, no others
    for entry in results.manifest.tasks:
        wanted = {sample.id for sample in task_as_run(registry, entry).samples()[:limit]}
        got = {r.sample_id for r in records if r.task == entry.name}
        if got != wanted:
            missing, extra = sorted(wanted - got), sorted(got - wanted)
            problems.append(
                f"{SAMPLES_MEMBER}: task '{entry.name}' has {len(missing)} samples missing "
                f"{shown_ids(missing)} and {len(extra)} not in its data {shown_ids(extra)}"
            )
    errors = sum(r.status == "error" for r in records)
    if records and errors / len(records) > DEFAULT_MAX_ERROR_RATE:
        problems.append(
            f"{SAMPLES_MEMBER}: {errors} of {len(records)} samples are errors (more than "
            f"{DEFAULT_MAX_ERROR_RATE:.0%}): run `fiqabench eval` again to retry them"
        )
    for task in {r.task for r in records}:
        entries = [e for e in results.results.values() if e.task == task]
        roles = {info.role for entry in entries for info in entry.judges}
        stages = {r.parse_stage for r in records if r.task == task}
        for role, role_stages in JUDGE_ROLE_STAGES.items():
            if stages & role_stages and role not in roles:
                problems.append(
                    f"{RESULTS_MEMBER}: task '{task}' has records decided by an LLM {role} "
                    "but its results name none"
                )
    return problems


def shown_ids(ids: list[str], most: int = 3) -> str:
    if not ids:
        return ""
    more = f", … ({len(ids) - most} more)" if len(ids) > most else ""
    return "(" + ", ".join(ids[:most]) + more + ")"


def _rescore(
    results: ResultsFile, records: list[Record], registry: TaskRegistry, fail: Fail
) -> tuple[ResultsFile, list[Record]]:
    """Re-score a private copy of the run with this machine's tasks and scoring rules."""
    marked = results.model_copy(deep=True)
    for entry in marked.results.values():
        entry.details = {_NOT_RESCORED: True}  # re-scoring replaces the details it produces
    with tempfile.TemporaryDirectory(prefix="fiqabench-validate-") as folder:
        write_results(Path(folder), marked)
        write_samples(Path(folder), records)
        try:
            recomputed, rescored = rescore_run(Path(folder), registry)
        except Exception as exc:  # hostile input must be refused with a reason, not a traceback
            problem = str(exc).replace(folder, "<bundle>") or type(exc).__name__
            raise fail(f"re-scoring failed: {problem}") from None
    return recomputed, rescored


def _entry_diffs(reported: ResultsFile, recomputed: ResultsFile) -> list[MetricDiff]:
    before = reported.model_dump(mode="json")["results"]
    after = recomputed.model_dump(mode="json")["results"]
    diffs = []
    for name in dict.fromkeys([*before, *after]):
        if _NOT_RESCORED in after.get(name, {}).get("details", {}):
            diffs.append(MetricDiff(name, "(entry)", "reported", "not produced by re-scoring"))
        elif name not in before:
            diffs.append(MetricDiff(name, "(entry)", ABSENT, "produced by re-scoring"))
        else:
            diffs += [MetricDiff(name, *diff) for diff in differences(before[name], after[name])]
    return diffs


def _record_diffs(reported: list[Record], rescored: list[Record]) -> list[MetricDiff]:
    """Per-sample fields the site shows (parsed answer, correctness, score) must match too."""
    fresh = {(r.task, r.sample_id): r.model_dump(mode="json") for r in rescored}
    diffs = []
    for record in reported:
        key = (record.task, record.sample_id)
        where = thumbnail_key(*key)
        diffs += [
            MetricDiff(where, *diff)
            for diff in differences(record.model_dump(mode="json"), fresh.get(key, {}))
        ]
    return diffs
