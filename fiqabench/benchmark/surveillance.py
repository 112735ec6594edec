"""SCface distance sensitivity: how scores and predicted labels change with capture distance.

SCface surveillance images are named `{subject}_cam{1-5}_{1,2,3}.jpg`, where the last digit is
the distance: 1 = 4.20 m (far), 2 = 2.60 m (medium), 3 = 1.00 m (close) (protocols.md §4). A
quality judge that tracks utility should score close captures higher than far ones.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import NamedTuple

import numpy as np
from pydantic import BaseModel

from fiqabench.benchmark.consistency import ATTRIBUTE_LEVELS, canonical_level

PROTOCOL = "scface-distance/1"
UNMATCHED_EXAMPLES = 5

# Distance code -> (name, metres), far to close.
DISTANCES: dict[int, tuple[str, float]] = {
    1: ("far", 4.20),
    2: ("medium", 2.60),
    3: ("close", 1.00),
}

_SCFACE_NAME = re.compile(
    r"(?P<subject>\d+)_cam(?P<camera>[1-5])_(?P<distance>[1-3])\.(?:jpg|png)", re.IGNORECASE
)


class ScfaceName(NamedTuple):
    subject: str  # kept as text: SCface ids are zero-padded ("001")
    camera: int
    distance: int


def parse_scface_name(name: str) -> ScfaceName | None:
    """(subject, camera, distance) from an SCface file name or path, or None if it does not fit."""
    basename = re.split(r"[\\/]", name)[-1]
    match = _SCFACE_NAME.fullmatch(basename)
    if match is None:
        return None
    return ScfaceName(match["subject"], int(match["camera"]), int(match["distance"]))


class DistanceStats(BaseModel):
    """Scores at one distance. `std` uses ddof=1 and is None below 2 images."""

    distance: int
    metres: float
    n: int
    mean: float | None
    std: float | None
    label_frequencies: dict[str, dict[str, int]] | None = None
    unlabelled: int | None = None


class DistanceSensitivity(BaseModel):
    """Per-distance statistics keyed far, medium, close; `unmatched` names are not SCface names.

    `monotonic_increasing` is true when the mean strictly rises far -> medium -> close, None when
    some distance has no scored image.
    """

    protocol: str = PROTOCOL
    distances: dict[str, DistanceStats]
    monotonic_increasing: bool | None
    monotonic_reason: str | None = None
    unmatched: int
    unmatched_examples: list[str]


def _ordered_levels(attribute: str, counts: Counter[str]) -> dict[str, int]:
    """Known levels in severity order (zeros included, for aligned tables), then other labels."""
    known = ATTRIBUTE_LEVELS.get(attribute, ())
    ordered = {level: counts.get(level, 0) for level in known}
    ordered.update(sorted((label, n) for label, n in counts.items() if label not in known))
    return ordered


def _label_frequencies(
    images: Iterable[str], labels: Mapping[str, Mapping[str, str]]
) -> tuple[dict[str, dict[str, int]], int]:
    """Counts of each attribute's labels over `images`, and how many images had no labels."""
    counts: dict[str, Counter[str]] = {attribute: Counter() for attribute in ATTRIBUTE_LEVELS}
    unlabelled = 0
    for image in images:
        if image not in labels:
            unlabelled += 1
            continue
        for attribute, label in labels[image].items():
            shown = canonical_level(attribute, label) or str(label)
            counts.setdefault(attribute, Counter())[shown] += 1
    frequencies = {attribute: _ordered_levels(attribute, c) for attribute, c in counts.items()}
    return frequencies, unlabelled


def _distance_stats(
    code: int,
    images: list[str],
    scores: Mapping[str, float],
    labels: Mapping[str, Mapping[str, str]] | None,
) -> DistanceStats:
    values = np.array([scores[image] for image in images], dtype=float)
    stats = DistanceStats(
        distance=code,
        metres=DISTANCES[code][1],
        n=values.size,
        mean=float(values.mean()) if values.size else None,
        std=float(values.std(ddof=1)) if values.size >= 2 else None,
    )
    if labels is not None:
        stats.label_frequencies, stats.unlabelled = _label_frequencies(images, labels)
    return stats


def _rises_towards_camera(per_distance: dict[str, DistanceStats]) -> tuple[bool | None, str | None]:
    """Whether the mean strictly rises far -> medium -> close; None when a distance is empty."""
    means = [stats.mean for stats in per_distance.values() if stats.mean is not None]
    if len(means) < len(per_distance):
        empty = [name for name, stats in per_distance.items() if stats.mean is None]
        return None, f"no scored images at: {', '.join(empty)}"
    return all(closer > farther for farther, closer in pairwise(means)), None


def distance_sensitivity(
    scores: Mapping[str, float], labels: Mapping[str, Mapping[str, str]] | None = None
) -> DistanceSensitivity:
    """Mean and std of scores per SCface distance, and label frequencies when `labels` is given.

    `scores` and `labels` are keyed by image name (or path). Names that are not SCface names are
    counted in `unmatched`. Raises ValueError on a non-finite score.
    """
    by_distance: dict[int, list[str]] = {code: [] for code in DISTANCES}
    unmatched: list[str] = []
    for image in sorted(scores):
        if not np.isfinite(scores[image]):
            raise ValueError(f"scores must be finite, got {scores[image]!r} for {image!r}")
        parsed = parse_scface_name(image)
        if parsed is None:
            unmatched.append(image)
        else:
            by_distance[parsed.distance].append(image)
    per_distance = {
        DISTANCES[code][0]: _distance_stats(code, images, scores, labels)
        for code, images in by_distance.items()
    }
    monotonic, reason = _rises_towards_camera(per_distance)
    return DistanceSensitivity(
        distances=per_distance,
        monotonic_increasing=monotonic,
        monotonic_reason=reason,
        unmatched=len(unmatched),
        unmatched_examples=unmatched[:UNMATCHED_EXAMPLES],
    )
