"""Degradation detection: which of five artifacts a model sees in a face image.

Data is a mix-degradation manifest (`fiqabench data prepare mixdeg`): clean references, mixed
variants with three artifacts (one hard), and single-artifact severity ladders. The model
answers the detection prompt with a quality score and five booleans; results report
hallucination on clean images, hard-artifact recall, completeness, Hamming distances,
per-artifact precision/recall/F1 and ladder monotonicity.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from fiqabench.benchmark.detection_metrics import DetectionOutcome, detection_metrics
from fiqabench.benchmark.images import check_image
from fiqabench.benchmark.metrics import status_counts
from fiqabench.benchmark.schema import (
    AnswerSpace,
    DataItem,
    ImagePart,
    Message,
    Record,
    Response,
    TextPart,
)
from fiqabench.errors import UserError
from fiqabench.judges.detection import DETECTION_VERSION, parse_detection
from fiqabench.tasks.base import Sample, Scored, Task, TaskResult
from fiqabench.tasks.jsonl_data import read_jsonl_samples
from fiqabench.tasks.mixdeg import ARTIFACTS, FLAG_KEYS
from fiqabench.tasks.spec import LoadedSpec
from fiqabench.tasks.templates import load_template


class LadderStep(BaseModel):
    artifact: str
    step: int
    value: float


class DetectionItem(DataItem):
    """A manifest line: the image and its ground truth (all five artifacts, the hard one)."""

    image: str
    reference: str | None = None
    level: Literal["clean", "mixed", "ladder"]
    artifacts: dict[str, int]
    hard: str | None = None
    ladder: LadderStep | None = None


def truth_code(artifacts: dict[str, int]) -> str:
    """The 5-bit ground truth as a string in ARTIFACTS order (records keep string metadata)."""
    return "".join(str(int(bool(artifacts.get(name, 0)))) for name in ARTIFACTS)


def sample_from_item(item: DetectionItem, base: Path) -> Sample:
    unknown = set(item.artifacts) - set(ARTIFACTS)
    if unknown or item.hard not in (None, *ARTIFACTS):
        problem = f"unknown artifact(s) {sorted(unknown) or [item.hard]}; expected {ARTIFACTS}"
        return Sample(id=item.id, item=None, error=problem)
    meta = {
        "level": item.level,
        "reference": item.reference or "",
        "truth": truth_code(item.artifacts),
        "hard": item.hard or "",
        "ladder_artifact": item.ladder.artifact if item.ladder else "",
        "ladder_step": str(item.ladder.step) if item.ladder else "",
        "ladder_value": str(item.ladder.value) if item.ladder else "",
    }
    return Sample(id=item.id, item=item, images=(base / item.image,), meta=meta)


class DetectionTask(Task):
    def __init__(self, loaded: LoadedSpec) -> None:
        super().__init__(loaded)
        self.system_template = load_template("detection/system.j2", loaded.folder)
        self.user_template = load_template("detection/user.j2", loaded.folder)

    @property
    def judge(self) -> str:
        return DETECTION_VERSION

    @property
    def data_path(self) -> Path:
        if self.spec.data.jsonl is None:
            raise UserError(
                "a detection task reads its manifest from `data: {jsonl: ...}`",
                path=self.loaded.path,
            )
        return (self.loaded.folder / self.spec.data.jsonl).resolve()

    def data_available(self) -> bool:
        return self.data_path.is_file()

    @cached_property
    def _manifest(self) -> list[Sample]:
        return read_jsonl_samples(self.data_path, DetectionItem, sample_from_item)

    def samples(self) -> list[Sample]:
        return self._manifest

    def template_hashes(self) -> dict[str, str]:
        return {"system": self.system_template.sha256, "user": self.user_template.sha256}

    def messages(self, sample: Sample) -> tuple[Message, ...]:
        variables = {"flag_keys": [FLAG_KEYS[name] for name in ARTIFACTS]}
        image = sample.images[0]
        return (
            Message(
                role="system",
                content=(TextPart(text=self.system_template.render(**variables)),),
            ),
            Message(
                role="user",
                content=(
                    ImagePart(path=str(image), sha256=check_image(image)),
                    TextPart(text=self.user_template.render(**variables)),
                ),
            ),
        )

    def answer_space(self, sample: Sample) -> AnswerSpace:
        return AnswerSpace(
            type="flags", key="quality_score", flags=tuple(FLAG_KEYS[a] for a in ARTIFACTS)
        )

    def score(self, sample: Sample, response: Response) -> Scored:
        parsed = parse_detection(response.text or "")
        if not parsed.ok or parsed.flags is None:
            return Scored(parsed=None, parse_stage=parsed.stage, status="parse_fail")
        truth = sample.meta["truth"]
        predicted = "".join(str(int(parsed.flags[name])) for name in ARTIFACTS)
        return Scored(
            parsed={"flags": parsed.flags, "quality_score": parsed.quality_score},
            parse_stage=parsed.stage,
            status="ok",
            correct=predicted == truth,
            score=parsed.quality_score,
        )

    def aggregate(self, records: list[Record], seed: int) -> dict[str, TaskResult]:
        # Samples whose input failed to load carry no ground truth; they count as errors only.
        outcomes = [_outcome(record) for record in records if record.meta.get("level")]
        computed = detection_metrics(outcomes)
        counts = status_counts(records)
        counts["total"] = len(records)
        metrics: dict[str, float | None] = dict(computed.metrics)
        metrics["error_rate"] = counts["error"] / len(records) if records else None
        result = TaskResult(metrics=metrics, ci95={}, counts=counts, details=computed.details)
        return {self.name: result}


def _outcome(record: Record) -> DetectionOutcome:
    meta = record.meta
    truth = {name: int(bit) for name, bit in zip(ARTIFACTS, meta.get("truth", ""), strict=False)}
    parsed = record.parsed if record.status == "ok" and isinstance(record.parsed, dict) else None
    ladder = None
    if meta.get("ladder_artifact"):
        ladder = (meta["ladder_artifact"], int(meta["ladder_step"]), float(meta["ladder_value"]))
    return DetectionOutcome(
        image_id=record.sample_id,
        level=meta.get("level", "clean"),
        truth=truth,
        hard=meta.get("hard") or None,
        predicted=dict(parsed["flags"]) if parsed else None,
        quality_score=parsed.get("quality_score") if parsed else None,
        ladder=ladder,
        reference=meta.get("reference") or None,
    )
