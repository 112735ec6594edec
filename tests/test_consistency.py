from __future__ import annotations

import json
import math

import pytest

from fiqabench.benchmark.consistency import (
    ATTRIBUTE_LEVELS,
    ATTRIBUTE_SEVERITY,
    CONSISTENCY_AXES,
    canonical_level,
    cross_prompt,
    internal,
)


def test_attribute_enums_match_the_classification_prompt() -> None:
    assert ATTRIBUTE_LEVELS == {
        "Sharpness": ("Clear", "Slightly Blurred", "Moderately Blurred", "Strongly Blurred"),
        "Resolution": ("High", "Medium", "Low", "Very Low"),
        "Lighting": (
            "Balanced",
            "Slightly Dark",
            "Moderately Dark",
            "Very Dark",
            "Slightly Bright",
            "Moderately Bright",
            "Very Bright",
        ),
        "Compression": ("None", "Minimal", "Moderate", "Severe"),
    }
    assert ATTRIBUTE_SEVERITY["Compression"] == {
        "None": 0,
        "Minimal": 1,
        "Moderate": 2,
        "Severe": 3,
    }
    lighting = ATTRIBUTE_SEVERITY["Lighting"]
    assert [lighting[level] for level in ATTRIBUTE_LEVELS["Lighting"]] == [0, 1, 2, 3, 1, 2, 3]
    assert set(CONSISTENCY_AXES) == {
        "Sharpness",
        "Resolution",
        "Compression",
        "Lighting_under",
        "Lighting_over",
    }


def test_canonical_level_matches_whole_labels_only() -> None:
    assert canonical_level("Lighting", "  slightly   DARK ") == "Slightly Dark"
    assert canonical_level("Resolution", "very low") == "Very Low"
    assert canonical_level("Resolution", "Low") == "Low"
    assert canonical_level("Resolution", "Lo") is None
    assert canonical_level("Compression", "Compression") is None
    assert canonical_level("Compression", None) is None
    assert canonical_level("Colour", "Clear") is None


# --- cross-prompt ------------------------------------------------------------------------------


def test_cross_prompt_worked_example() -> None:
    scores = {
        "simple": {"a": 10.0, "b": 20.0, "c": 30.0, "only-base": 50.0},
        "utility": {"a": 20.0, "b": 30.0, "c": 50.0, "only-variant": 1.0},
    }
    result = cross_prompt(scores)

    assert set(result) == {"utility"}
    utility = result["utility"]
    assert utility.n == 3
    # b - a = 10, 10, 20
    assert utility.bias == pytest.approx(40 / 3)
    assert utility.mae == pytest.approx(40 / 3)
    # deviations (-10, 0, 10) and (-40/3, -10/3, 50/3): r = 300 / sqrt(200 * 1400/3)
    assert utility.pearson == pytest.approx(300 / math.sqrt(200 * 1400 / 3))
    assert utility.reason is None


def test_cross_prompt_bias_sign_and_mae_differ_when_errors_cancel() -> None:
    scores = {
        "simple": {"a": 50.0, "b": 50.0, "c": 80.0},
        "reliability": {"a": 60.0, "b": 40.0, "c": 80.0},
    }
    agreement = cross_prompt(scores)["reliability"]
    assert agreement.bias == pytest.approx(0.0)
    assert agreement.mae == pytest.approx(20 / 3)


def test_cross_prompt_too_few_shared_images() -> None:
    scores = {"simple": {"a": 1.0, "b": 2.0}, "utility": {"a": 5.0, "z": 3.0}, "empty": {}}
    result = cross_prompt(scores)
    assert result["utility"].model_dump() == {
        "n": 1,
        "pearson": None,
        "mae": None,
        "bias": None,
        "reason": "needs at least 2 images scored by both prompts, got 1",
    }
    assert result["empty"].n == 0


def test_cross_prompt_constant_variant_keeps_mae_and_bias() -> None:
    result = cross_prompt({"simple": {"a": 10.0, "b": 30.0}, "utility": {"a": 20.0, "b": 20.0}})
    agreement = result["utility"]
    assert agreement.pearson is None
    assert agreement.reason == "Pearson undefined: all variant values are equal"
    assert agreement.mae == pytest.approx(10.0)
    assert agreement.bias == pytest.approx(0.0)
    json.dumps(agreement.model_dump(), allow_nan=False)


def test_cross_prompt_custom_base_and_errors() -> None:
    result = cross_prompt({"a": {"x": 1.0, "y": 2.0}, "b": {"x": 2.0, "y": 4.0}}, base="b")
    assert result["a"].bias == pytest.approx(-1.5)
    assert result["a"].pearson == pytest.approx(1.0)
    with pytest.raises(ValueError, match="base prompt 'simple'"):
        cross_prompt({"a": {"x": 1.0}})
    with pytest.raises(ValueError, match="finite"):
        cross_prompt({"simple": {"x": 1.0}, "b": {"x": float("nan")}})


# --- internal ----------------------------------------------------------------------------------


def labels(sharpness: str, lighting: str, compression: str = "None") -> dict[str, str]:
    return {
        "Sharpness": sharpness,
        "Resolution": "High",
        "Lighting": lighting,
        "Compression": compression,
    }


SCORES = {"i1": 80.0, "i2": 90.0, "i3": 70.0, "i4": 40.0, "i5": 60.0}
ATTRIBUTES = {
    "i1": labels("Clear", "Balanced"),
    "i2": labels("clear", "Slightly Dark"),
    "i3": labels("Slightly Blurred", "Very Dark"),
    "i4": labels("Strongly Blurred", "Slightly Bright"),
    "i5": labels("Blurry", "Moderately Bright"),
    "unscored": labels("Clear", "Balanced"),
}


def test_internal_sharpness_worked_example() -> None:
    result = internal(SCORES, ATTRIBUTES)
    sharpness = result.axes["Sharpness"]

    # i5's "Blurry" is not a level: counted, not used.
    assert result.label_problems["Sharpness"].unknown == {"Blurry": 1}
    assert sharpness.n == 4
    assert [(level.level, level.n, level.mean) for level in sharpness.levels] == [
        ("Clear", 2, 85.0),
        ("Slightly Blurred", 1, 70.0),
        ("Moderately Blurred", 0, None),
        ("Strongly Blurred", 1, 40.0),
    ]
    assert sharpness.monotonic_decreasing is True
    # severities (0, 0, 1, 3) vs scores (80, 90, 70, 40): ranks (1.5, 1.5, 3, 4) vs (3, 4, 2, 1)
    # give sum dx*dy = -4.5, sum dx^2 = 4.5, sum dy^2 = 5, so rho = -4.5 / sqrt(22.5).
    assert sharpness.spearman == pytest.approx(-3 / math.sqrt(10))


def test_internal_lighting_is_split_into_under_and_over_exposure() -> None:
    result = internal(SCORES, ATTRIBUTES)
    under = result.axes["Lighting_under"]
    over = result.axes["Lighting_over"]

    # Balanced 80 is the severity-0 anchor of both directions.
    assert [(level.level, level.severity, level.mean) for level in under.levels] == [
        ("Balanced", 0, 80.0),
        ("Slightly Dark", 1, 90.0),
        ("Moderately Dark", 2, None),
        ("Very Dark", 3, 70.0),
    ]
    assert under.n == 3
    assert under.monotonic_decreasing is False  # 80 -> 90 rises
    # severities (0, 1, 3) vs scores (80, 90, 70): ranks (1, 2, 3) vs (2, 3, 1), rho = 1 - 6*6/24
    assert under.spearman == pytest.approx(-0.5)

    assert [(level.level, level.mean) for level in over.levels] == [
        ("Balanced", 80.0),
        ("Slightly Bright", 40.0),
        ("Moderately Bright", 60.0),
        ("Very Bright", None),
    ]
    assert over.monotonic_decreasing is False
    assert over.spearman == pytest.approx(-0.5)
    assert {under.attribute, over.attribute} == {"Lighting"}


def test_internal_single_level_gives_none_with_reasons() -> None:
    result = internal(SCORES, ATTRIBUTES)
    compression = result.axes["Compression"]
    assert compression.n == 5
    assert compression.levels[0].mean == pytest.approx(68.0)
    assert compression.spearman is None
    assert compression.spearman_reason == "Spearman undefined: all severity values are equal"
    assert compression.monotonic_decreasing is None
    assert compression.monotonic_reason == "needs scores at 2 or more levels, got 1"


def test_internal_counts_missing_labels_and_is_json_safe() -> None:
    scores = {"a": 90.0, "b": 50.0, "c": 20.0, "d": 10.0}
    attributes = {
        "a": {"Resolution": "High"},
        "b": {"Resolution": "Low"},
        "c": {"Resolution": "Very Low"},
    }
    result = internal(scores, attributes)
    resolution = result.axes["Resolution"]
    assert result.n_scored == 4
    assert result.label_problems["Resolution"].missing == 1  # d has no labels at all
    assert result.label_problems["Sharpness"].missing == 4
    assert resolution.monotonic_decreasing is True
    assert resolution.spearman == pytest.approx(-1.0)
    assert result.axes["Sharpness"].n == 0
    assert result.axes["Sharpness"].spearman is None
    json.dumps(result.model_dump(), allow_nan=False)


def test_internal_accepts_a_custom_severity_scale() -> None:
    severity = {attribute: dict(levels) for attribute, levels in ATTRIBUTE_SEVERITY.items()}
    severity["Resolution"] = {"High": 0, "Medium": 1, "Low": 5, "Very Low": 10}
    scores = {"a": 90.0, "b": 50.0}
    attributes = {"a": {"Resolution": "High"}, "b": {"Resolution": "Very Low"}}
    levels = internal(scores, attributes, severity).axes["Resolution"].levels
    assert [level.severity for level in levels] == [0, 1, 5, 10]
    del severity["Resolution"]["Medium"]
    with pytest.raises(ValueError, match=r"severity for 'Resolution' lacks levels \['Medium'\]"):
        internal(scores, attributes, severity)


def test_internal_rejects_non_finite_scores() -> None:
    with pytest.raises(ValueError, match="finite"):
        internal({"a": float("inf")}, {})
