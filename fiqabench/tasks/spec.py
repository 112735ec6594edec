"""Task specs: a YAML file naming the task kind, its data, its prompt templates and settings."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fiqabench.benchmark.schema import GenerationConfig
from fiqabench.errors import UserError, describe_validation_error

TaskKind = Literal["qa", "scalar", "detection"]


class DataSpec(BaseModel):
    """Where a task's items come from: a JSONL file beside the spec, or a Hugging Face dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    jsonl: str | None = None
    hf: str | None = Field(default=None, description="hub id or a save_to_disk folder")
    split: str | None = None
    mapping: str | dict[str, str] | None = None
    revision: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        if (self.jsonl is None) == (self.hf is None):
            raise ValueError("give exactly one of 'jsonl' or 'hf'")
        return self


class PromptSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    system: str | None = None
    user: str = "qa.j2"


class ScalarSpec(BaseModel):
    """Settings of a scalar face-quality task; file paths are relative to the spec."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    variants: tuple[str, ...] = ("simple",)
    levels: int = Field(default=7, ge=2, le=9, description="K of the standard-guided prompt")
    comparisons: str | None = Field(
        default=None,
        description="CSV a,b,mated[,similarity|similarity_<model>...], or an LFW pairs.txt",
    )
    embeddings: str | None = Field(
        default=None, description="folder of per-image .npy embeddings for missing similarities"
    )
    mos: str | None = Field(default=None, description="CSV image,mos")
    fmr: float = Field(default=1e-3, gt=0, lt=1)
    bootstrap: int = Field(
        default=1000, ge=0, description="bootstrap resamples for correlation CIs (0: no CIs)"
    )


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    kind: TaskKind
    description: str = ""
    protocol: str
    data: DataSpec
    prompt: PromptSpec = PromptSpec()
    generation: GenerationConfig = GenerationConfig()
    scalar: ScalarSpec | None = None
    prepare: str | None = Field(
        default=None, description="the command that prepares this task's data when it is missing"
    )


class LoadedSpec(BaseModel):
    """A spec with the file it came from (relative paths in it are relative to that folder)."""

    model_config = ConfigDict(frozen=True)
    spec: TaskSpec
    path: Path
    sha256: str
    builtin: bool = False

    @property
    def folder(self) -> Path:
        return self.path.parent


def load_spec(path: Path, *, builtin: bool = False) -> LoadedSpec:
    raw = path.read_bytes()
    try:
        document = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise UserError(f"malformed YAML: {problem}", path=path, line=line) from exc
    if not isinstance(document, dict):
        raise UserError("a task spec must be a YAML mapping", path=path)
    try:
        spec = TaskSpec.model_validate(document)
    except ValidationError as exc:
        raise UserError(f"invalid task spec: {describe_validation_error(exc)}", path=path) from exc
    return LoadedSpec(
        spec=spec, path=path.resolve(), sha256=hashlib.sha256(raw).hexdigest(), builtin=builtin
    )
