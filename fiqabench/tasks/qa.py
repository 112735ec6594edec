"""Portrait Q&A tasks (Q-Bench-Portrait format): single, multi, true/false and open questions."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fiqabench.benchmark import metrics
from fiqabench.benchmark.images import check_image
from fiqabench.benchmark.schema import (
    DESCRIBE_CRITERIA,
    JUDGED_TYPES,
    AnswerSpace,
    ImagePart,
    Message,
    QAItem,
    Record,
    Response,
    TextPart,
)
from fiqabench.judges import rules
from fiqabench.tasks.base import Sample, Scored, Task, TaskResult
from fiqabench.tasks.hf_source import hub_usable, mirrored_copy
from fiqabench.tasks.jsonl_data import read_jsonl_samples
from fiqabench.tasks.spec import LoadedSpec
from fiqabench.tasks.templates import load_template

BREAKDOWN_KEYS = ("type", "scope", "dimension", "subdimension", "source")
CLOSED_TYPES = ("single", "multi", "tf")


def default_cache_dir() -> Path:
    return Path(os.environ.get("FIQABENCH_CACHE", Path.home() / ".cache" / "fiqabench"))


def sample_from_item(item: QAItem, base: Path) -> Sample:
    """A sample whose image paths resolve against the data file's folder."""
    meta = {key: str(getattr(item, key)) for key in BREAKDOWN_KEYS}
    images = tuple((base / image) for image in item.images)
    return Sample(id=item.id, item=item, images=images, meta=meta)


class QATask(Task):
    """Items from JSONL or a Hugging Face dataset; answers scored by the rule cascade."""

    def __init__(self, loaded: LoadedSpec) -> None:
        super().__init__(loaded)
        prompt = self.spec.prompt
        folder = self.loaded.folder
        self.user_template = load_template(prompt.user, folder)
        self.system_template = load_template(prompt.system, folder) if prompt.system else None
        self._samples: list[Sample] | None = None

    @property
    def data_path(self) -> Path | None:
        data = self.spec.data
        if data.jsonl is not None:
            return (self.loaded.folder / data.jsonl).resolve()
        assert data.hf is not None
        local = self.loaded.folder / data.hf
        return local.resolve() if local.exists() else mirrored_copy(data.hf)

    @property
    def judge(self) -> str:
        return rules.RULES_VERSION

    def data_available(self) -> bool:
        if self.spec.data.jsonl is not None or self.data_path is not None:
            return self.data_path is not None and self.data_path.exists()
        return hub_usable()  # a hub id with no local copy

    def samples(self) -> list[Sample]:
        if self._samples is None:
            self._samples = self._load_samples()
        return self._samples

    def _load_samples(self) -> list[Sample]:
        data = self.spec.data
        if data.jsonl is not None:
            assert self.data_path is not None
            return read_jsonl_samples(self.data_path, QAItem, sample_from_item)
        from fiqabench.tasks.hf_data import load_hf_items

        source = str(self.data_path) if self.data_path is not None else data.hf
        assert source is not None
        items = load_hf_items(
            source,
            split=data.split,
            mapping=data.mapping,
            revision=data.revision,
            image_dir=default_cache_dir() / "hf-images",
        )
        return [sample_from_item(item, Path("/")) for item in items]

    def template_hashes(self) -> dict[str, str]:
        hashes = {"user": self.user_template.sha256}
        if self.system_template is not None:
            hashes["system"] = self.system_template.sha256
        return hashes

    def messages(self, sample: Sample) -> tuple[Message, ...]:
        item = sample.item
        assert isinstance(item, QAItem)
        variables = {
            "question": item.question,
            "type": item.type,
            "options": [
                {"letter": letter, "text": text}
                for letter, text in zip(item.letters, item.options or [], strict=True)
            ],
            "item": item.model_dump(),
        }
        images = [ImagePart(path=str(path), sha256=check_image(path)) for path in sample.images]
        user = Message(
            role="user", content=(*images, TextPart(text=self.user_template.render(**variables)))
        )
        if self.system_template is None:
            return (user,)
        system = Message(
            role="system", content=(TextPart(text=self.system_template.render(**variables)),)
        )
        return (system, user)

    def answer_space(self, sample: Sample) -> AnswerSpace | None:
        item = sample.item
        assert isinstance(item, QAItem)
        return AnswerSpace(type=item.type, letters=tuple(item.letters))

    def score(self, sample: Sample, response: Response) -> Scored:
        item = sample.item
        assert isinstance(item, QAItem)
        text = response.text or ""  # a bare score is no answer to a question
        if item.type in JUDGED_TYPES:  # free text: an LLM judge scores it, if the run has one
            return Scored(parsed=None, parse_stage=None, status="unscored")
        if item.type == "single":
            parsed = rules.parse_single(text, item.options or [])
        elif item.type == "multi":
            parsed = rules.parse_multi(text, item.options or [])
        else:
            parsed = rules.parse_tf(text)
        if not parsed.ok:
            return Scored(parsed=None, parse_stage=parsed.stage, status="parse_fail", correct=False)
        return Scored(
            parsed=parsed.value,
            parse_stage=parsed.stage,
            status="ok",
            correct=parsed.value == expected_answer(item),
        )

    def aggregate(self, records: list[Record], seed: int) -> dict[str, TaskResult]:
        result_metrics: dict[str, float | None] = {}
        ci95: dict[str, tuple[float, float] | None] = {}
        described = [r for r in records if r.meta.get("type") == "describe"]
        if len(described) < len(records) or not records:
            _closed_metrics(records, seed, result_metrics, ci95)
            opened = [r for r in records if r.meta.get("type") == "open"]
            result_metrics["open_score"], ci95["open_score"] = _open_score(opened, seed)
        if described:
            _describe_metrics(described, seed, result_metrics, ci95)
        counts = metrics.status_counts(records)
        counts["total"] = len(records)
        counts["judge_unparseable"] = sum(r.parse_stage == "llm-judge-unparseable" for r in records)
        result_metrics["error_rate"] = counts["error"] / len(records) if records else None
        breakdowns = {key: _breakdown(records, key) for key in BREAKDOWN_KEYS}
        entry = TaskResult(metrics=result_metrics, ci95=ci95, counts=counts, breakdowns=breakdowns)
        return {self.name: entry}


Metrics = dict[str, float | None]
Intervals = dict[str, tuple[float, float] | None]


def _closed_metrics(records: list[Record], seed: int, values: Metrics, ci95: Intervals) -> None:
    closed = [r for r in records if r.meta.get("type") in CLOSED_TYPES]
    values["accuracy"], ci95["accuracy"] = _accuracy(closed, seed)
    for kind in CLOSED_TYPES:
        subset = [r for r in closed if r.meta.get("type") == kind]
        values[f"accuracy_{kind}"], ci95[f"accuracy_{kind}"] = _accuracy(subset, seed)
    answered = [r for r in closed if r.status in ("ok", "parse_fail")]
    failures = sum(r.status == "parse_fail" for r in answered)
    values["parse_failure_rate"] = failures / len(answered) if answered else None


def _open_score(
    records: list[Record], seed: int
) -> tuple[float | None, tuple[float, float] | None]:
    """Mean judge score in [0, 1] over judged open answers; unscored and errors excluded."""
    scores = _judge_scores(records)
    if scores.size == 0:
        return None, None
    return float(scores.mean()), metrics.bootstrap_mean_ci(scores, seed=seed)


def _judge_scores(records: list[Record]) -> NDArray[np.float64]:
    return np.array([r.score for r in records if r.status == "ok" and r.score is not None])


def _describe_metrics(records: list[Record], seed: int, values: Metrics, ci95: Intervals) -> None:
    """Q-Bench A2 style: each criterion's mean on 0-2, and their sum on 0-6."""
    judged = _criteria(records)
    for criterion in DESCRIBE_CRITERIA:
        column = np.array([c[criterion] for c in judged], dtype=float)
        name = f"describe_{criterion}"
        values[name] = float(column.mean()) if judged else None
        ci95[name] = metrics.bootstrap_mean_ci(column, seed=seed) if judged else None
    totals = _describe_totals(records)
    values["describe_score"] = float(totals.mean()) if judged else None
    ci95["describe_score"] = metrics.bootstrap_mean_ci(totals, seed=seed) if judged else None


def _criteria(records: list[Record]) -> list[dict[str, float]]:
    described = [r for r in records if r.meta.get("type") == "describe"]
    return [r.parsed["criteria"] for r in described if r.status == "ok" and r.parsed]


def _describe_totals(records: list[Record]) -> NDArray[np.float64]:
    """Each judged description's completeness + precision + relevance, on 0-6."""
    return np.array([sum(c[k] for k in DESCRIBE_CRITERIA) for c in _criteria(records)], dtype=float)


def expected_answer(item: QAItem) -> str | tuple[str, ...] | bool:
    """The answer in the form the rule parsers return: a letter, sorted letters, or a bool."""
    return tuple(item.answer) if isinstance(item.answer, list) else item.answer


def _accuracy(records: list[Record], seed: int) -> tuple[float | None, tuple[float, float] | None]:
    """Micro accuracy over answered items; parse failures count as wrong, errors are excluded."""
    judged = np.array([r.correct for r in records if r.status in ("ok", "parse_fail")], dtype=float)
    if judged.size == 0:
        return None, None
    return float(judged.mean()), metrics.bootstrap_mean_ci(judged, seed=seed)


def _breakdown(records: list[Record], key: str) -> dict[str, dict[str, float | int | None]]:
    groups = metrics.grouped(records, lambda record: record.meta.get(key, ""))
    return {value: _group_summary(group) for value, group in groups.items()}


def _group_summary(records: list[Record]) -> dict[str, float | int | None]:
    closed = [r for r in records if r.meta.get("type") in CLOSED_TYPES]
    accuracy = _accuracy(closed, seed=0)[0]
    opened = [r for r in records if r.meta.get("type") == "open"]
    totals = _describe_totals(records)
    summary: dict[str, float | int | None] = {
        "n": len(records),
        "accuracy": accuracy,
        "open_score": float(scores.mean()) if (scores := _judge_scores(opened)).size else None,
        "describe_score": float(totals.mean()) if totals.size else None,
    }
    summary.update(metrics.status_counts(records))
    return summary
