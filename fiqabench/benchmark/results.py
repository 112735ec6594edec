"""results.json and samples.jsonl: versioned schemas, written atomically."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

import fiqabench
from fiqabench.benchmark.schema import ModelIdentity, Record
from fiqabench.errors import UserError, describe_validation_error

SCHEMA_VERSION: Literal["fiqabench.results/1"] = "fiqabench.results/1"
RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.jsonl"


class HostInfo(BaseModel):
    hostname: str
    platform: str
    python: str
    cpu_count: int | None

    @classmethod
    def current(cls) -> HostInfo:
        return cls(
            hostname=socket.gethostname(),
            platform=platform.platform(),
            python=sys.version.split()[0],
            cpu_count=os.cpu_count(),
        )


class TaskManifest(BaseModel):
    name: str
    kind: str
    protocol: str
    spec_path: str
    spec_sha256: str
    template_sha256: dict[str, str]
    builtin: bool
    n_samples: int


class RunManifest(BaseModel):
    fiqabench_version: str = fiqabench.__version__
    git_commit: str | None = None
    command: list[str] = Field(default_factory=list)
    model: ModelIdentity
    tasks: list[TaskManifest] = Field(default_factory=list)
    include_paths: list[str] = Field(default_factory=list)
    seed: int = 0
    limit: int | None = None
    scoring: Literal["text", "logits"] = "text"
    shard: str | None = Field(
        default=None,
        description="'I/N' when the run holds only shard I of N of each task's samples: its "
        "results are partial, covering that slice only, until `fiqabench merge` combines shards",
    )
    started_at: str
    finished_at: str | None = None
    duration_s: float | None = None
    host: HostInfo = Field(default_factory=HostInfo.current)


class Timing(BaseModel):
    n_requests: int = 0
    n_cached: int = 0
    n_generated: int = 0
    generation_s: float = 0.0
    ms_per_sample: float | None = Field(
        default=None, description="generation wall time per generated sample"
    )
    mean_latency_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0


class JudgeInfo(BaseModel):
    """A model that turned responses into scores: what it was, how it was asked, what it cost."""

    role: Literal["judge", "extractor"]
    model: ModelIdentity
    template_sha256: dict[str, str]
    rounds: int
    temperature: float
    n_calls: int = 0
    n_cached: int = 0
    n_errors: int = 0
    n_unparseable: int = Field(default=0, description="replies with no valid score or answer")
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = Field(default=None, description="null when no price was given")


class TaskResults(BaseModel):
    """One task's numbers, with everything needed to say what produced them."""

    task: str
    protocol: str
    model: str
    model_id: str
    revision: str | None
    judge: str
    prompt_template_sha256: dict[str, str]
    metrics: dict[str, float | None]
    ci95: dict[str, tuple[float, float] | None]
    counts: dict[str, int]
    breakdowns: dict[str, dict[str, dict[str, float | int | None]]] = Field(default_factory=dict)
    curves: dict[str, list[tuple[float, float | None]]] = Field(
        default_factory=dict, description="plot points, e.g. error-versus-reject [discard, error]"
    )
    details: dict[str, Any] = Field(default_factory=dict)
    timing: Timing = Field(default_factory=Timing)
    error_examples: list[str] = Field(default_factory=list)
    judges: list[JudgeInfo] = Field(default_factory=list)


class ResultsFile(BaseModel):
    schema_version: Literal["fiqabench.results/1"] = SCHEMA_VERSION
    manifest: RunManifest
    results: dict[str, TaskResults] = Field(default_factory=dict)


@cache
def git_commit() -> str | None:
    """The commit of the fiqabench checkout in use, when it is one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(fiqabench.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_results(folder: Path, results: ResultsFile) -> Path:
    path = folder / RESULTS_FILE
    atomic_write_text(path, results.model_dump_json(indent=2) + "\n")
    return path


def write_samples(folder: Path, records: Iterable[Record]) -> Path:
    path = folder / SAMPLES_FILE
    lines = (record.model_dump_json() for record in records)
    atomic_write_text(path, "".join(f"{line}\n" for line in lines))
    return path


def read_results(folder: Path) -> ResultsFile:
    path = folder / RESULTS_FILE
    if not path.is_file():
        raise UserError("no results.json here (is this a fiqabench run folder?)", path=folder)
    try:
        return ResultsFile.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise UserError(
            f"invalid results file: {describe_validation_error(exc)}", path=path
        ) from exc


def read_jsonl(path: Path) -> Iterable[tuple[int, Any]]:
    """Yield (line number, parsed JSON) for each non-blank line; a bad line names file and line."""
    if not path.is_file():
        raise UserError("file not found", path=path)
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"malformed JSON: {exc.msg}", path=path, line=number) from exc


def read_samples(folder: Path) -> list[Record]:
    path = folder / SAMPLES_FILE
    records = []
    for number, document in read_jsonl(path):
        try:
            records.append(Record.model_validate(document))
        except ValidationError as exc:
            raise UserError(describe_validation_error(exc), path=path, line=number) from exc
    return records
