"""Scalar face image quality: a 0-100 score per image under several prompt variants.

Each image is asked once per prompt variant; the records of a variant are kept apart and give
one result entry `task:variant` with coverage, error-versus-reject under three protocols (when
the task has comparisons), correlation with opinion scores (when it has MOS), SCface distance
sensitivity (when its images follow SCface naming) and, for the classification prompt, internal
consistency. With several variants, `task:consistency` compares each with `simple`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fiqabench.benchmark import consistency, correlation, evr, surveillance
from fiqabench.benchmark.comparisons import Comparisons
from fiqabench.benchmark.images import check_image
from fiqabench.benchmark.metrics import status_counts
from fiqabench.benchmark.schema import (
    AnswerSpace,
    ImageItem,
    ImagePart,
    LevelScoring,
    Message,
    Record,
    Response,
    TextPart,
)
from fiqabench.errors import UserError
from fiqabench.judges import scores
from fiqabench.tasks.base import Sample, Scored, Task, TaskResult
from fiqabench.tasks.jsonl_data import read_jsonl_samples
from fiqabench.tasks.spec import LoadedSpec, ScalarSpec
from fiqabench.tasks.templates import PromptTemplate, load_template

Parser = Literal["score", "classification", "levels"]
SEPARATOR = "@"  # sample id = image id @ variant


@dataclass(frozen=True)
class Variant:
    name: str
    key: str | None  # JSON key the prompt asks for; None for the K-level prompt
    parser: Parser


VARIANTS: dict[str, Variant] = {
    "simple": Variant("simple", "Quality Score", "score"),
    "utility": Variant("utility", "Utility Score", "score"),
    "reliability": Variant("reliability", "Reliability Score", "score"),
    "classification": Variant("classification", "Quality Score", "classification"),
    "levels": Variant("levels", None, "levels"),
}

# Word anchors of the standard-guided prompt, level 1 first (LLM-IQA's K = 7 wording).
LEVEL_WORDS: dict[int, tuple[str, ...]] = {
    3: ("Bad", "Fair", "Good"),
    5: ("Bad", "Poor", "Fair", "Good", "Excellent"),
    7: ("Very Bad", "Poor", "Bad", "Fair", "Good", "Excellent", "Perfect"),
    9: ("Very Bad", "Bad", "Poor", "Mediocre", "Fair", "Good", "Very Good", "Excellent", "Perfect"),
}


@dataclass(frozen=True)
class ScalarItem:
    image: ImageItem
    variant: Variant


def level_to_score(level: float, k: int) -> float:
    """Level 1..K onto 0..100, so that variants share a scale for MAE and bias."""
    return 100.0 * (level - 1) / (k - 1)


def sample_from_image(item: ImageItem, base: Path) -> Sample:
    # A template sample; the task expands it into one sample per variant.
    return Sample(id=item.id, item=item, images=(base / item.image,))


class ScalarTask(Task):
    def __init__(self, loaded: LoadedSpec) -> None:
        super().__init__(loaded)
        self.settings: ScalarSpec = self.spec.scalar or ScalarSpec()
        if self.settings.levels not in LEVEL_WORDS:
            raise UserError(f"scalar.levels must be one of {sorted(LEVEL_WORDS)}", path=loaded.path)
        self.variants = self._checked_variants(self.settings.variants)
        self.system_template = load_template("fiqa/system.j2", loaded.folder)
        self.user_templates: dict[str, PromptTemplate] = {}
        self._samples: list[Sample] | None = None

    def _checked_variants(self, names: Sequence[str]) -> list[Variant]:
        unknown = [name for name in names if name not in VARIANTS]
        if unknown or not names:
            raise UserError(
                f"unknown prompt variant(s) {unknown}; choose from {', '.join(VARIANTS)}",
                path=self.loaded.path,
            )
        return [VARIANTS[name] for name in dict.fromkeys(names)]

    def use_variants(self, names: Sequence[str]) -> None:
        """Run these prompt variants instead of the spec's (the CLI's --variants)."""
        self.variants = self._checked_variants(names)
        self._samples = None

    def _user_template(self, variant: Variant) -> PromptTemplate:
        if variant.name not in self.user_templates:
            template = load_template(f"fiqa/{variant.name}.j2", self.loaded.folder)
            self.user_templates[variant.name] = template
        return self.user_templates[variant.name]

    # ----------------------------------------------------------------------------- data

    def _path(self, relative: str | None) -> Path | None:
        return (self.loaded.folder / relative).resolve() if relative else None

    @property
    def data_path(self) -> Path:
        if self.spec.data.jsonl is None:
            raise UserError(
                "a scalar task reads its images from `data: {jsonl: ...}`", path=self.loaded.path
            )
        return (self.loaded.folder / self.spec.data.jsonl).resolve()

    def data_available(self) -> bool:
        return self.data_path.is_file()

    @cached_property
    def images(self) -> list[Sample]:
        """The data file's images, read once; each variant asks about every one of them."""
        return read_jsonl_samples(self.data_path, ImageItem, sample_from_image)

    def samples(self) -> list[Sample]:
        if self._samples is None:
            self._samples = [
                self._variant_sample(image, variant)
                for variant in self.variants
                for image in self.images
            ]
        return self._samples

    def _variant_sample(self, image: Sample, variant: Variant) -> Sample:
        meta = {"variant": variant.name, "image_id": image.id}
        if isinstance(image.item, ImageItem):
            meta["subject"] = image.item.subject or ""
            item: Any = ScalarItem(image.item, variant)
        else:
            item = None
        return Sample(
            id=f"{image.id}{SEPARATOR}{variant.name}",
            item=item,
            images=image.images,
            meta=meta,
            error=image.error,
        )

    @cached_property
    def comparisons(self) -> Comparisons | None:
        from fiqabench.benchmark.comparisons import read_comparisons_csv, read_lfw_pairs

        path = self._path(self.settings.comparisons)
        if path is None:
            return None
        # LFW's pairs.txt names images `name/name_0001.jpg` relative to the images' folder.
        is_lfw = path.suffix == ".txt"
        loaded = read_lfw_pairs(path) if is_lfw else read_comparisons_csv(path)
        # Checked once, before any similarity is computed for images the task does not have.
        unknown = sorted(set(loaded.image_ids()) - {sample.id for sample in self.images})
        if unknown:
            raise UserError(
                f"{len(unknown)} compared image(s) are not in the task's images, e.g. "
                f"{unknown[0]!r}",
                path=path,
            )
        if loaded.similarity:
            return loaded
        return self._with_computed_similarity(loaded)

    def _with_computed_similarity(self, loaded: Comparisons) -> Comparisons:
        from fiqabench.benchmark import comparisons as comparisons_module

        embeddings_dir = self._path(self.settings.embeddings)
        if embeddings_dir is not None:
            embeddings = comparisons_module.load_embedding_dir(embeddings_dir)
            similarity = {
                "embeddings": comparisons_module.similarities_from_embeddings(loaded, embeddings)
            }
        else:
            from fiqabench.benchmark.biometrics import SFaceRecognizer, compute_similarities

            similarity, _ = compute_similarities(loaded, self.data_path.parent, [SFaceRecognizer()])
        return Comparisons(a=loaded.a, b=loaded.b, mated=loaded.mated, similarity=similarity)

    @cached_property
    def mos(self) -> dict[str, float] | None:
        path = self._path(self.settings.mos)
        return correlation.read_mos_csv(path) if path is not None else None

    # ----------------------------------------------------------------------------- prompts

    @property
    def judge(self) -> str:
        return scores.SCORES_VERSION

    def template_hashes(self) -> dict[str, str]:
        hashes = {"system": self.system_template.sha256}
        for variant in self.variants:
            hashes[variant.name] = self._user_template(variant).sha256
        return hashes

    def _variables(self, variant: Variant) -> dict[str, Any]:
        k = self.settings.levels
        levels = [
            {"number": number, "word": word}
            for number, word in reversed(list(enumerate(LEVEL_WORDS[k], start=1)))
        ]
        return {"variant": variant.name, "key": variant.key, "levels": levels}

    def messages(self, sample: Sample) -> tuple[Message, ...]:
        item = sample.item
        assert isinstance(item, ScalarItem)
        variables = self._variables(item.variant)
        image = sample.images[0]
        system = Message(
            role="system", content=(TextPart(text=self.system_template.render(**variables)),)
        )
        user = Message(
            role="user",
            content=(
                ImagePart(path=str(image), sha256=check_image(image)),
                TextPart(text=self._user_template(item.variant).render(**variables)),
            ),
        )
        return (system, user)

    def answer_space(self, sample: Sample) -> AnswerSpace:
        item = sample.item
        assert isinstance(item, ScalarItem)
        if item.variant.parser == "levels":
            return AnswerSpace(type="score", levels=self.settings.levels)
        return AnswerSpace(type="score", key=item.variant.key)

    def level_scoring(self, sample: Sample) -> LevelScoring | None:
        item = sample.item
        assert isinstance(item, ScalarItem)
        if item.variant.parser != "levels":
            return None
        k = self.settings.levels
        return LevelScoring(
            levels=tuple(str(level) for level in range(1, k + 1)),
            weights=tuple(level_to_score(level, k) for level in range(1, k + 1)),
        )

    # ----------------------------------------------------------------------------- scoring

    def score(self, sample: Sample, response: Response) -> Scored:
        item = sample.item
        assert isinstance(item, ScalarItem)
        if response.score is not None:
            # Baselines and logit scoring give the score itself: nothing to parse.
            return Scored(
                parsed={"direct_score": response.score},
                parse_stage="direct",
                status="ok",
                score=response.score,
            )
        assert response.text is not None
        variant, k = item.variant, self.settings.levels
        if variant.parser == "levels":
            parsed = scores.parse_level(response.text, k, LEVEL_WORDS[k])
        elif variant.parser == "classification":
            parsed = scores.parse_classification(response.text)
        else:
            assert variant.key is not None
            parsed = scores.parse_score(response.text, variant.key)
        if not parsed.ok:
            return Scored(parsed=None, parse_stage=parsed.stage, status="parse_fail")
        assert parsed.score is not None
        value = level_to_score(parsed.score, k) if variant.parser == "levels" else parsed.score
        details: dict[str, Any] = {"score": parsed.score}
        if parsed.attributes or parsed.attribute_failures:
            details["attributes"] = parsed.attributes
            details["attribute_failures"] = parsed.attribute_failures
        return Scored(parsed=details, parse_stage=parsed.stage, status="ok", score=value)

    def aggregate(self, records: list[Record], seed: int) -> dict[str, TaskResult]:
        by_variant: dict[str, list[Record]] = {}
        for record in records:
            by_variant.setdefault(record.meta.get("variant", ""), []).append(record)
        entries = {
            f"{self.name}:{variant.name}": self._variant_result(
                variant, by_variant.get(variant.name, []), seed
            )
            for variant in self.variants
            if variant.name in by_variant
        }
        scored = {name: _scores(group) for name, group in by_variant.items()}
        if "simple" in scored and len(scored) > 1:
            entries[f"{self.name}:consistency"] = _cross_prompt_result(scored)
        return entries

    def entry_members(self, records: Sequence[Record]) -> dict[str, list[int]]:
        """An entry per prompt variant, and the cross-prompt entry drawing on all of them."""
        members: dict[str, list[int]] = {}
        for index, record in enumerate(records):
            members.setdefault(f"{self.name}:{record.meta.get('variant', '')}", []).append(index)
        members[f"{self.name}:consistency"] = list(range(len(records)))
        return members

    def _variant_result(self, variant: Variant, records: list[Record], seed: int) -> TaskResult:
        counts = status_counts(records)
        counts["total"] = len(records)
        judged = counts["ok"] + counts["parse_fail"]
        metrics: dict[str, float | None] = {
            "coverage": counts["ok"] / judged if judged else None,
            "error_rate": counts["error"] / len(records) if records else None,
        }
        result = TaskResult(
            metrics=metrics,
            ci95={},
            counts=counts,
            templates={
                "system": self.system_template.sha256,
                "user": self._user_template(variant).sha256,
            },
        )
        quality = _scores(records)
        if self.comparisons is not None:
            self._add_utility(result, quality, [r.meta["image_id"] for r in records])
        if self.mos is not None:
            _add_correlation(result, quality, self.mos, seed, self.settings.bootstrap)
        sensitivity = surveillance.distance_sensitivity(quality, _attributes(records) or None)
        if sensitivity.unmatched < len(quality):
            result.details["surveillance"] = sensitivity.model_dump()
            result.metrics["scface_monotonic"] = _flag(sensitivity.monotonic_increasing)
        if variant.parser == "classification":
            internal = consistency.internal(quality, _attributes(records))
            result.details["internal_consistency"] = internal.model_dump()
        return result

    def _add_utility(
        self, result: TaskResult, quality: Mapping[str, float], image_ids: Sequence[str]
    ) -> None:
        comparisons = self._evaluated_comparisons(set(image_ids))
        if comparisons is None:
            result.details["utility"] = {
                "reason": "the evaluated images (see --limit) hold no mated and non-mated pair"
            }
            return
        # The pair set stays fixed: an image without a score takes the lowest quality.
        floor = min(quality.values(), default=0.0) - 1.0
        imputed = sorted(set(image_ids) - set(quality))
        lookup = {**dict.fromkeys(imputed, floor), **quality}
        quality_a = np.array([lookup[name] for name in comparisons.a], dtype=float)
        quality_b = np.array([lookup[name] for name in comparisons.b], dtype=float)
        averaged = evr.average_over_models(
            comparisons.similarity,
            comparisons.mated,
            quality_a=quality_a,
            quality_b=quality_b,
            fmr=self.settings.fmr,
        )
        result.metrics.update({key: _finite(value) for key, value in averaged.metrics.items()})
        result.metrics["imputed_images"] = len(imputed)
        for protocol, curves in averaged.curves.items():
            for name, points in curves.items():
                result.curves[f"{protocol}/{name}"] = [(x, _finite(y)) for x, y in points]
        result.details["utility"] = {
            "comparisons": len(comparisons),
            "fr_models": averaged.models,
            "per_model": {
                model: {key: _finite(value) for key, value in values.items()}
                for model, values in averaged.per_model.items()
            },
            "imputed_images": imputed,
            "fmr": self.settings.fmr,
        }

    def _evaluated_comparisons(self, evaluated: set[str]) -> Comparisons | None:
        """The comparisons between evaluated images; all of them unless --limit cut the data."""
        comparisons = self.comparisons
        assert comparisons is not None
        if evaluated >= {sample.id for sample in self.images}:
            return comparisons
        kept = np.flatnonzero(
            np.isin(comparisons.a, list(evaluated)) & np.isin(comparisons.b, list(evaluated))
        )
        subset = comparisons.take(kept)
        return subset if subset.mated.any() and not subset.mated.all() else None


def _scores(records: Sequence[Record]) -> dict[str, float]:
    return {
        r.meta["image_id"]: float(r.score)
        for r in records
        if r.status == "ok" and r.score is not None
    }


def _attributes(records: Sequence[Record]) -> dict[str, dict[str, str]]:
    labelled = {}
    for record in records:
        if isinstance(record.parsed, dict) and record.parsed.get("attributes"):
            labelled[record.meta["image_id"]] = dict(record.parsed["attributes"])
    return labelled


def _finite(value: float) -> float | None:
    """An undefined point or area (NaN) becomes None, which JSON can carry."""
    return None if math.isnan(value) else value


def _flag(value: bool | None) -> float | None:
    return None if value is None else float(value)


def _add_correlation(
    result: TaskResult,
    quality: Mapping[str, float],
    mos: Mapping[str, float],
    seed: int,
    resamples: int,
) -> None:
    shared = [name for name in quality if name in mos]
    result.metrics["mos_n"] = len(shared)
    if len(shared) < correlation.MIN_PAIRS:
        result.details["correlation"] = {"reason": f"only {len(shared)} scored images have a MOS"}
        return
    found = correlation.correlate(
        [quality[name] for name in shared],
        [mos[name] for name in shared],
        seed=seed,
        bootstrap=resamples,
    )
    for metric in correlation.METRICS:
        estimate = getattr(found, metric)
        result.metrics[metric] = estimate.value
        if estimate.ci_low is not None and estimate.ci_high is not None:
            result.ci95[metric] = (estimate.ci_low, estimate.ci_high)
    result.details["correlation"] = found.model_dump()


def _cross_prompt_result(scored: Mapping[str, dict[str, float]]) -> TaskResult:
    agreement = consistency.cross_prompt(scored, base="simple")
    metrics: dict[str, float | None] = {}
    for variant, values in agreement.items():
        metrics[f"{variant}_pearson"] = values.pearson
        metrics[f"{variant}_mae"] = values.mae
        metrics[f"{variant}_bias"] = values.bias
        metrics[f"{variant}_n"] = values.n
    return TaskResult(
        metrics=metrics,
        ci95={},
        counts={},
        details={name: values.model_dump() for name, values in agreement.items()},
        protocol=consistency.CROSS_PROMPT_PROTOCOL,
    )
