"""What every task kind provides to the pipeline: samples, prompts, scoring and metrics."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fiqabench.benchmark.schema import (
    AnswerSpace,
    LevelScoring,
    Message,
    Record,
    Response,
    Status,
)
from fiqabench.tasks.spec import LoadedSpec


@dataclass(frozen=True)
class Sample:
    """One dataset item ready for prompting, or the input problem that keeps it from running."""

    id: str
    item: Any
    images: tuple[Path, ...] = ()
    meta: dict[str, str] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Scored:
    parsed: Any
    parse_stage: str | None
    status: Status
    correct: bool | None = None
    score: float | None = None


@dataclass
class TaskResult:
    """Aggregated metrics of one result entry; CIs keyed like the metric they bound.

    A task may report several entries (a scalar task: one per prompt variant); `protocol` and
    `templates` override the task's own when an entry has its own.
    """

    metrics: dict[str, float | None]
    ci95: dict[str, tuple[float, float] | None]
    counts: dict[str, int]
    breakdowns: dict[str, dict[str, dict[str, float | int | None]]] = field(default_factory=dict)
    curves: dict[str, list[tuple[float, float | None]]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    protocol: str | None = None
    templates: dict[str, str] | None = None


class Task(ABC):
    def __init__(self, loaded: LoadedSpec):
        self.loaded = loaded
        self.spec = loaded.spec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def judge(self) -> str:
        """Names what turned responses into scores (a rule set version, or a judge model)."""
        return "none"

    @abstractmethod
    def data_available(self) -> bool: ...

    @abstractmethod
    def samples(self) -> list[Sample]: ...

    @abstractmethod
    def messages(self, sample: Sample) -> tuple[Message, ...]:
        """Render the prompt; raises UserError on a bad image or template."""

    def answer_space(self, sample: Sample) -> AnswerSpace | None:
        return None

    def level_scoring(self, sample: Sample) -> LevelScoring | None:
        """The levels and weights for `--scoring logits`, when the sample's prompt has them."""
        return None

    @abstractmethod
    def score(self, sample: Sample, response: Response) -> Scored:
        """Score a successful response (its `text`, or a `score` a baseline produced directly)."""

    @abstractmethod
    def aggregate(self, records: list[Record], seed: int) -> dict[str, TaskResult]:
        """Result entries by name: the task's name, or `task:part` for a task with parts."""

    def entry_members(self, records: Sequence[Record]) -> dict[str, list[int]]:
        """Indices of the records each result entry is computed from, as `aggregate` groups
        them; one entry over all records unless a task has parts."""
        return {self.name: list(range(len(records)))}

    @abstractmethod
    def template_hashes(self) -> dict[str, str]: ...
