"""What every task kind provides to the pipeline: samples, prompts, scoring and metrics."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fiqabench.benchmark.schema import AnswerSpace, Message, Record, Status
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
    """Aggregated metrics of one task; confidence intervals keyed like the metric they bound."""

    metrics: dict[str, float | None]
    ci95: dict[str, tuple[float, float] | None]
    counts: dict[str, int]
    breakdowns: dict[str, dict[str, dict[str, float | int | None]]]


class Task(ABC):
    def __init__(self, loaded: LoadedSpec):
        self.loaded = loaded
        self.spec = loaded.spec

    @property
    def name(self) -> str:
        return self.spec.name

    @abstractmethod
    def data_available(self) -> bool: ...

    @abstractmethod
    def samples(self) -> list[Sample]: ...

    @abstractmethod
    def messages(self, sample: Sample) -> tuple[Message, ...]:
        """Render the prompt; raises UserError on a bad image or template."""

    def answer_space(self, sample: Sample) -> AnswerSpace | None:
        return None

    @abstractmethod
    def score(self, sample: Sample, response: str) -> Scored: ...

    @abstractmethod
    def aggregate(self, records: list[Record], seed: int) -> TaskResult: ...

    @abstractmethod
    def template_hashes(self) -> dict[str, str]: ...
