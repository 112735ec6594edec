"""The manifest of an lmms-eval export: what the generated hooks need to find and score tasks.

Written beside the task YAMLs as `fiqabench_export.json`; the generated `utils.py` reads it, so
the YAMLs stay declarative and the Python file stays a few lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fiqabench.errors import UserError, describe_validation_error
from fiqabench.export.result_numbers import NumberPath

MANIFEST_FILE = "fiqabench_export.json"
SCHEMA: Literal["fiqabench.lmms-export/1"] = "fiqabench.lmms-export/1"
# The fields of every exported document (one dataset row per fiqabench sample).
DOC_TASK = "fiqabench_task"
DOC_SAMPLE = "sample_id"
# The seed of the tasks' aggregates. Only confidence intervals depend on it, and those are not
# exported, so it is fixed rather than an option; 0 is also `fiqabench score`'s default.
AGGREGATE_SEED = 0


class ExportedTask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="the fiqabench task")
    lmms_task: str = Field(description="its name in lmms-eval")
    spec_path: str
    spec_sha256: str = Field(description="the spec exported; the hooks refuse a changed one")
    data_file: str = Field(description="the documents, relative to the export folder")
    n_samples: int
    metrics: dict[str, NumberPath] = Field(description="lmms-eval metric → fiqabench number")
    functions: dict[str, str] = Field(description="utils.py aggregation function → metric")


class ExportManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: Literal["fiqabench.lmms-export/1"] = SCHEMA
    fiqabench_version: str
    group: str
    include_paths: list[str]
    seed: int = Field(description="the seed the hooks aggregate with: AGGREGATE_SEED")
    tasks: dict[str, ExportedTask]
    files: list[str] = Field(description="every file the export wrote, relative to its folder")


def write_manifest(folder: Path, manifest: ExportManifest) -> Path:
    from fiqabench.benchmark.results import atomic_write_text

    path = folder / MANIFEST_FILE
    atomic_write_text(path, manifest.model_dump_json(indent=2) + "\n")
    return path


def read_manifest(folder: Path) -> ExportManifest:
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise UserError(f"no {MANIFEST_FILE} here: not a fiqabench lmms-eval export", path=folder)
    try:
        return ExportManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise UserError(
            f"invalid export manifest: {describe_validation_error(exc)}", path=path
        ) from exc
