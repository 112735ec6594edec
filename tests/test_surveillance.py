from __future__ import annotations

import json
import math

import pytest

from fiqabench.benchmark.surveillance import (
    DISTANCES,
    ScfaceName,
    distance_sensitivity,
    parse_scface_name,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("001_cam1_1.jpg", ("001", 1, 1)),
        ("130_cam5_3.png", ("130", 5, 3)),
        ("7_cam3_2.JPG", ("7", 3, 2)),
        ("scface/surveillance/042_cam2_2.jpg", ("042", 2, 2)),
        ("C:\\data\\042_cam4_1.png", ("042", 4, 1)),
    ],
)
def test_parse_scface_name(name: str, expected: tuple[str, int, int]) -> None:
    assert parse_scface_name(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "001_cam6_1.jpg",  # cameras are 1-5
        "001_cam0_1.jpg",
        "001_cam1_4.jpg",  # distances are 1-3
        "abc_cam1_1.jpg",
        "001_cam1_1.jpeg",
        "001_cam1_1.jpg.bak",
        "001_cam1_1",
        "001_cam1_1_extra.jpg",
        "001_frontal.jpg",
    ],
)
def test_parse_scface_name_rejects(name: str) -> None:
    assert parse_scface_name(name) is None


def test_parsed_name_has_fields() -> None:
    parsed = parse_scface_name("010_cam2_3.jpg")
    assert parsed == ScfaceName(subject="010", camera=2, distance=3)
    assert DISTANCES[3] == ("close", 1.00)


SCORES = {
    "001_cam1_1.jpg": 10.0,
    "002_cam2_1.jpg": 20.0,
    "001_cam1_2.jpg": 30.0,
    "001_cam1_3.jpg": 40.0,
    "002_cam3_3.png": 50.0,
    "003_cam5_3.jpg": 60.0,
    "001_frontal.jpg": 99.0,
    "notes.txt": 0.0,
}


def test_distance_sensitivity_worked_example() -> None:
    result = distance_sensitivity(SCORES)

    assert list(result.distances) == ["far", "medium", "close"]
    far, medium, close = result.distances.values()
    assert (far.distance, far.metres, far.n, far.mean) == (1, 4.20, 2, 15.0)
    assert far.std == pytest.approx(math.sqrt(50))  # ddof=1: (25 + 25) / 1
    assert (medium.distance, medium.metres, medium.n, medium.mean, medium.std) == (
        2,
        2.60,
        1,
        30.0,
        None,
    )
    assert (close.distance, close.metres, close.n, close.mean) == (3, 1.00, 3, 50.0)
    assert close.std == pytest.approx(10.0)
    assert result.monotonic_increasing is True
    assert result.unmatched == 2
    assert result.unmatched_examples == ["001_frontal.jpg", "notes.txt"]
    assert far.label_frequencies is None
    json.dumps(result.model_dump(), allow_nan=False)


def test_not_monotonic_when_medium_scores_highest() -> None:
    scores = {"1_cam1_1.jpg": 10.0, "1_cam1_2.jpg": 70.0, "1_cam1_3.jpg": 60.0}
    result = distance_sensitivity(scores)
    assert result.monotonic_increasing is False
    assert result.monotonic_reason is None


def test_ties_are_not_increasing() -> None:
    scores = {"1_cam1_1.jpg": 50.0, "1_cam1_2.jpg": 50.0, "1_cam1_3.jpg": 60.0}
    assert distance_sensitivity(scores).monotonic_increasing is False


def test_missing_distance_leaves_monotonicity_undefined() -> None:
    result = distance_sensitivity({"1_cam1_1.jpg": 10.0, "1_cam1_3.jpg": 60.0, "x.jpg": 5.0})
    assert result.distances["medium"].n == 0
    assert result.distances["medium"].mean is None
    assert result.monotonic_increasing is None
    assert result.monotonic_reason == "no scored images at: medium"
    assert result.unmatched == 1


def test_label_frequencies_per_distance() -> None:
    labels = {
        "001_cam1_1.jpg": {"Sharpness": "Strongly Blurred", "Resolution": "Very Low"},
        "002_cam2_1.jpg": {"Sharpness": "strongly blurred", "Resolution": "tiny"},
        "001_cam1_3.jpg": {"Sharpness": "Clear", "Resolution": "High"},
        "002_cam3_3.png": {"Sharpness": "Clear", "Resolution": "Medium"},
        "001_frontal.jpg": {"Sharpness": "Clear"},
    }
    result = distance_sensitivity(SCORES, labels)
    far, medium, close = result.distances.values()

    assert far.label_frequencies is not None
    assert far.label_frequencies["Sharpness"] == {
        "Clear": 0,
        "Slightly Blurred": 0,
        "Moderately Blurred": 0,
        "Strongly Blurred": 2,
    }
    # Known levels first in severity order, then labels outside the enum.
    assert far.label_frequencies["Resolution"] == {
        "High": 0,
        "Medium": 0,
        "Low": 0,
        "Very Low": 1,
        "tiny": 1,
    }
    assert far.unlabelled == 0
    assert medium.unlabelled == 1
    assert medium.label_frequencies is not None
    assert sum(medium.label_frequencies["Sharpness"].values()) == 0
    assert close.unlabelled == 1  # 003_cam5_3.jpg
    assert close.label_frequencies is not None
    assert close.label_frequencies["Sharpness"]["Clear"] == 2
    assert close.label_frequencies["Lighting"]["Balanced"] == 0
    json.dumps(result.model_dump(), allow_nan=False)


def test_empty_scores() -> None:
    result = distance_sensitivity({})
    assert all(stats.n == 0 and stats.std is None for stats in result.distances.values())
    assert result.unmatched == 0
    assert result.monotonic_increasing is None


def test_non_finite_score_raises() -> None:
    with pytest.raises(ValueError, match="finite"):
        distance_sensitivity({"1_cam1_1.jpg": float("nan")})
