"""Cross-prompt and internal consistency of VLM quality scores (protocols.md §5).

This module is the single source of truth for the attribute enums of the classification prompt
(protocols.md §2) and their ordinal severity: import ATTRIBUTE_LEVELS / ATTRIBUTE_SEVERITY rather
than restating them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from itertools import pairwise

import numpy as np
from pydantic import BaseModel
from scipy import stats

from fiqabench.benchmark.correlation import undefined_correlation_reason

CROSS_PROMPT_PROTOCOL = "cross-prompt-consistency/1"
INTERNAL_PROTOCOL = "internal-consistency/1"

SHARPNESS_LEVELS = ("Clear", "Slightly Blurred", "Moderately Blurred", "Strongly Blurred")
RESOLUTION_LEVELS = ("High", "Medium", "Low", "Very Low")
UNDER_EXPOSURE_LEVELS = ("Slightly Dark", "Moderately Dark", "Very Dark")
OVER_EXPOSURE_LEVELS = ("Slightly Bright", "Moderately Bright", "Very Bright")
LIGHTING_LEVELS = ("Balanced", *UNDER_EXPOSURE_LEVELS, *OVER_EXPOSURE_LEVELS)
COMPRESSION_LEVELS = ("None", "Minimal", "Moderate", "Severe")

# Exact labels of the classification prompt, each tuple mildest first. Lighting has two
# directions from "Balanced"; within each direction the order is again mildest first.
ATTRIBUTE_LEVELS: dict[str, tuple[str, ...]] = {
    "Sharpness": SHARPNESS_LEVELS,
    "Resolution": RESOLUTION_LEVELS,
    "Lighting": LIGHTING_LEVELS,
    "Compression": COMPRESSION_LEVELS,
}


def _ordinal(levels: tuple[str, ...]) -> dict[str, int]:
    return {level: rank for rank, level in enumerate(levels)}


# 0 = no degradation. Dark and Bright both count 1..3 away from Balanced.
ATTRIBUTE_SEVERITY: dict[str, dict[str, int]] = {
    "Sharpness": _ordinal(SHARPNESS_LEVELS),
    "Resolution": _ordinal(RESOLUTION_LEVELS),
    "Lighting": {
        **_ordinal(("Balanced", *UNDER_EXPOSURE_LEVELS)),
        **_ordinal(("Balanced", *OVER_EXPOSURE_LEVELS)),
    },
    "Compression": _ordinal(COMPRESSION_LEVELS),
}

# Analysis axes of the internal-consistency check: (attribute, levels in severity order).
# Lighting is split so that under- and over-exposure each get their own monotonic trend.
CONSISTENCY_AXES: dict[str, tuple[str, tuple[str, ...]]] = {
    "Sharpness": ("Sharpness", SHARPNESS_LEVELS),
    "Resolution": ("Resolution", RESOLUTION_LEVELS),
    "Compression": ("Compression", COMPRESSION_LEVELS),
    "Lighting_under": ("Lighting", ("Balanced", *UNDER_EXPOSURE_LEVELS)),
    "Lighting_over": ("Lighting", ("Balanced", *OVER_EXPOSURE_LEVELS)),
}


def canonical_level(attribute: str, label: object) -> str | None:
    """The exact enum label matching `label` up to case and spacing, or None.

    Whole-label matching only: substring rules confuse labels (protocols.md §6).
    """
    if not isinstance(label, str):
        return None
    wanted = " ".join(label.split()).casefold()
    for level in ATTRIBUTE_LEVELS.get(attribute, ()):
        if level.casefold() == wanted:
            return level
    return None


# ---------------------------------------------------------------------------------------------
# Cross-prompt agreement


class PromptAgreement(BaseModel):
    """Variant b against base a over the images both scored.

    `pearson` is Pearson r, `mae` is mean |a - b|, `bias` is mean(b - a): positive when the
    variant scores higher than the base.
    """

    n: int
    pearson: float | None
    mae: float | None
    bias: float | None
    reason: str | None = None


def _finite_scores(scores: Mapping[str, float], owner: str) -> dict[str, float]:
    bad = [image for image, score in scores.items() if not np.isfinite(score)]
    if bad:
        raise ValueError(f"{owner}: scores must be finite, got {scores[bad[0]]!r} for {bad[0]!r}")
    return {image: float(score) for image, score in scores.items()}


def _agreement(base: Mapping[str, float], variant: Mapping[str, float]) -> PromptAgreement:
    shared = sorted(base.keys() & variant.keys())
    if len(shared) < 2:
        reason = f"needs at least 2 images scored by both prompts, got {len(shared)}"
        return PromptAgreement(n=len(shared), pearson=None, mae=None, bias=None, reason=reason)
    a = np.array([base[image] for image in shared])
    b = np.array([variant[image] for image in shared])
    undefined = undefined_correlation_reason(a, b, ("base", "variant"))
    pearson = None if undefined else float(stats.pearsonr(a, b).statistic)
    return PromptAgreement(
        n=len(shared),
        pearson=pearson,
        mae=float(np.mean(np.abs(a - b))),
        bias=float(np.mean(b - a)),
        reason=f"Pearson undefined: {undefined}" if undefined else None,
    )


def cross_prompt(
    scores_by_variant: Mapping[str, Mapping[str, float]], base: str = "simple"
) -> dict[str, PromptAgreement]:
    """Agreement of every prompt variant with the `base` prompt, keyed by variant.

    Only images scored under both prompts count (n says how many); the base itself is omitted.
    """
    if base not in scores_by_variant:
        raise ValueError(f"base prompt {base!r} is not among {sorted(scores_by_variant)}")
    checked = {name: _finite_scores(scores, name) for name, scores in scores_by_variant.items()}
    return {
        name: _agreement(checked[base], scores) for name, scores in checked.items() if name != base
    }


# ---------------------------------------------------------------------------------------------
# Internal consistency


class LevelMean(BaseModel):
    level: str
    severity: int
    n: int
    mean: float | None


class AxisConsistency(BaseModel):
    """Scores grouped by one attribute's predicted level, and how they trend with severity.

    A consistent model has a negative `spearman` (score falls as severity rises) and
    `monotonic_decreasing` true: the mean strictly falls from each observed level to the next.
    """

    attribute: str
    levels: list[LevelMean]
    n: int
    spearman: float | None
    spearman_reason: str | None = None
    monotonic_decreasing: bool | None
    monotonic_reason: str | None = None


class LabelProblems(BaseModel):
    """Scored images whose label for an attribute was absent, or not one of its exact levels."""

    missing: int = 0
    unknown: dict[str, int] = {}


class InternalConsistency(BaseModel):
    protocol: str = INTERNAL_PROTOCOL
    n_scored: int
    axes: dict[str, AxisConsistency]
    label_problems: dict[str, LabelProblems]


def _axis_spearman(severities: list[int], scores: list[float]) -> tuple[float | None, str | None]:
    reason = undefined_correlation_reason(
        np.array(severities, dtype=float), np.array(scores), ("severity", "score")
    )
    if reason:
        return None, f"Spearman undefined: {reason}"
    return float(stats.spearmanr(severities, scores).statistic), None


def _strictly_decreasing(levels: list[LevelMean]) -> tuple[bool | None, str | None]:
    means = [level.mean for level in levels if level.mean is not None]
    if len(means) < 2:
        return None, f"needs scores at 2 or more levels, got {len(means)}"
    return all(later < earlier for earlier, later in pairwise(means)), None


def _axis(
    attribute: str,
    levels: tuple[str, ...],
    labelled: list[tuple[str, float]],
    severity: Mapping[str, int],
) -> AxisConsistency:
    """`labelled` holds (canonical level, score) for every scored image of this attribute."""
    in_axis = [(level, score) for level, score in labelled if level in levels]
    by_level: dict[str, list[float]] = {level: [] for level in levels}
    for level, score in in_axis:
        by_level[level].append(score)
    level_means = [
        LevelMean(
            level=level,
            severity=severity[level],
            n=len(values),
            mean=float(np.mean(values)) if values else None,
        )
        for level, values in by_level.items()
    ]
    spearman, spearman_reason = _axis_spearman(
        [severity[level] for level, _ in in_axis], [score for _, score in in_axis]
    )
    monotonic, monotonic_reason = _strictly_decreasing(level_means)
    return AxisConsistency(
        attribute=attribute,
        levels=level_means,
        n=len(in_axis),
        spearman=spearman,
        spearman_reason=spearman_reason,
        monotonic_decreasing=monotonic,
        monotonic_reason=monotonic_reason,
    )


def _labelled_scores(
    attribute: str, scores: Mapping[str, float], attributes: Mapping[str, Mapping[str, str]]
) -> tuple[list[tuple[str, float]], LabelProblems]:
    labelled: list[tuple[str, float]] = []
    missing = 0
    unknown: Counter[str] = Counter()
    for image in sorted(scores):
        raw = attributes.get(image, {}).get(attribute)
        level = canonical_level(attribute, raw)
        if raw is None:
            missing += 1
        elif level is None:
            unknown[str(raw)] += 1
        else:
            labelled.append((level, scores[image]))
    return labelled, LabelProblems(missing=missing, unknown=dict(sorted(unknown.items())))


def _checked_severity(
    severity: Mapping[str, Mapping[str, int]] | None,
) -> Mapping[str, Mapping[str, int]]:
    if severity is None:
        return ATTRIBUTE_SEVERITY
    for attribute, levels in ATTRIBUTE_LEVELS.items():
        absent = [level for level in levels if level not in severity.get(attribute, {})]
        if absent:
            raise ValueError(f"severity for {attribute!r} lacks levels {absent}")
    return severity


def internal(
    scores: Mapping[str, float],
    attributes: Mapping[str, Mapping[str, str]],
    severity: Mapping[str, Mapping[str, int]] | None = None,
) -> InternalConsistency:
    """Mean quality score per predicted attribute level, with a Spearman index of score vs severity.

    `scores` and `attributes` are keyed by image; `attributes[image]` maps "Sharpness",
    "Resolution", "Lighting", "Compression" to the model's labels (matched up to case and spacing).
    `severity` overrides ATTRIBUTE_SEVERITY. Images without a score are ignored; scored images
    without a usable label are counted in `label_problems`, not silently dropped.
    """
    checked = _finite_scores(scores, "scores")
    ordinal = _checked_severity(severity)
    labelled: dict[str, list[tuple[str, float]]] = {}
    problems: dict[str, LabelProblems] = {}
    for attribute in ATTRIBUTE_LEVELS:
        labelled[attribute], problems[attribute] = _labelled_scores(attribute, checked, attributes)
    axes = {
        name: _axis(attribute, levels, labelled[attribute], ordinal[attribute])
        for name, (attribute, levels) in CONSISTENCY_AXES.items()
    }
    return InternalConsistency(n_scored=len(checked), axes=axes, label_problems=problems)
