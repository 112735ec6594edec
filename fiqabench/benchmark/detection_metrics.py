"""Metrics of the mix-degradation detection task (protocols.md §6; seed paper §IV-F, Tables III-V).

Each outcome is one image: its level (clean, mixed or ladder), the true 5-bit artifact vector,
the hard artifact of a mixed image, the predicted flags (None when the reply did not parse or
the request failed) and the quality score. Unparsed images are left out of every rate, and
counted per level (`n_unparsed_<level>`); `clean_n` and `mixed_n` are the parsed images, the
denominators of the rates.

* Clean images (Table III): the number of false positives per image in buckets 0, 1, 2, 3+,
  the share and mean quality score of each; `hallucination_rate` = 1 - share with 0.
* Mixed images (Table IV): `hard_recall`, the share whose hard artifact is flagged, and
  completeness, the share flagging 0, 1, 2 or 3 of the 3 applied artifacts.
* Hamming distance between the predicted and true vectors over mixed images (D0..D5, share and
  mean score), as in Table V (its D0 of 3-8 % cannot include clean images, 50-88 % of which
  have no false positive); clean and clean + mixed are in `details["hamming"]["by_level"]`.
* Per artifact over clean + mixed: precision, recall, F1 = 2TP / (2TP + FP + FN), which is
  defined (0) even when precision is not, as long as the artifact is present or predicted.
* Ladders: Spearman's rho of quality score against ladder step (1 mild .. 5 hard), pooled over
  references. Step, not parameter value, because strength falls with the value for JPEG quality
  and over-exposure gamma. A consistent model gives a NEGATIVE rho: its score falls as the
  artifact strengthens. The mean of per-reference rhos is in the details when outcomes carry a
  reference; it is not the headline because a reference scored constant along its ladder has
  no rho and would silently drop out of the mean, whereas pooling counts it as ties.

Every undefined metric is None, with its reason in `details["undefined"]`; nothing is NaN.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator
from scipy import stats

from fiqabench.benchmark.correlation import undefined_correlation_reason
from fiqabench.tasks.mixdeg import ARTIFACTS, ARTIFACTS_PER_MIX, Artifact

LEVELS = ("clean", "mixed", "ladder")
FP_BUCKETS = ("0", "1", "2", "3plus")
COMPLETENESS = tuple(str(found) for found in range(ARTIFACTS_PER_MIX + 1))
HAMMING = tuple(str(distance) for distance in range(len(ARTIFACTS) + 1))

CONVENTIONS = {
    "denominators": "clean_n and mixed_n count parsed images; unparsed ones are excluded from "
    "every rate and counted in n_unparsed_<level>",
    "hallucination_rate": "1 - share of parsed clean images with no false positive",
    "hamming": "over parsed mixed images, as the seed paper's Table V; clean and clean + mixed "
    "in details.hamming.by_level",
    "f1": "2TP / (2TP + FP + FN), over parsed clean + mixed images",
    "ladder_spearman": "Spearman rho of quality score against ladder step (1 mild .. 5 hard), "
    "pooled over references; negative = score falls as strength rises (consistent)",
}


class DetectionOutcome(BaseModel):
    """One image's ground truth and the model's parsed answer (`predicted` None: unparsed)."""

    model_config = ConfigDict(frozen=True)

    image_id: str
    level: str
    truth: dict[Artifact, int]
    hard: str | None = None
    predicted: dict[Artifact, bool] | None = None
    quality_score: float | None = None
    ladder: tuple[str, int, float] | None = None  # (artifact, step, parameter value)
    reference: str | None = None  # the clean source image; enables per-reference ladder rhos

    @model_validator(mode="after")
    def _consistent(self) -> DetectionOutcome:
        problem = _inconsistency(self)
        if problem:
            raise ValueError(f"{self.image_id}: {problem}")
        return self

    @property
    def flags(self) -> dict[Artifact, bool]:
        """The predicted flags of a parsed outcome."""
        if self.predicted is None:
            raise ValueError(f"{self.image_id} has no parsed prediction")
        return self.predicted

    def applied(self) -> list[Artifact]:
        return [artifact for artifact in ARTIFACTS if self.truth[artifact]]


def _inconsistency(outcome: DetectionOutcome) -> str | None:
    """Why an outcome's ground truth contradicts its level, if it does (mixdeg.py's rules)."""
    if outcome.level not in LEVELS:
        return f"level must be one of {LEVELS}, got {outcome.level!r}"
    if set(outcome.truth) != set(ARTIFACTS) or not set(outcome.truth.values()) <= {0, 1}:
        return f"truth must map exactly {ARTIFACTS} to 0 or 1"
    if outcome.predicted is not None and set(outcome.predicted) != set(ARTIFACTS):
        return f"predicted must have exactly the keys {ARTIFACTS}"
    if outcome.quality_score is not None and not math.isfinite(outcome.quality_score):
        return "quality_score must be finite"
    if outcome.hard is not None and outcome.hard not in outcome.applied():
        return f"hard artifact {outcome.hard!r} is not in the truth vector"
    expected = {"clean": 0, "mixed": ARTIFACTS_PER_MIX, "ladder": 1}[outcome.level]
    if sum(outcome.truth.values()) != expected:
        return f"a {outcome.level} image has {expected} artifacts in its truth vector"
    if (outcome.level == "mixed") != (outcome.hard is not None):
        return "a mixed image, and only a mixed one, names its hard artifact"
    if (outcome.level == "ladder") != (outcome.ladder is not None):
        return "a ladder image, and only a ladder one, has a ladder step"
    if outcome.ladder is not None and outcome.ladder[0] not in outcome.applied():
        return f"ladder artifact {outcome.ladder[0]!r} is not in the truth vector"
    return None


@dataclass(frozen=True)
class DetectionMetrics:
    """Flat metrics (keys as in the module docstring) and JSON-safe details."""

    metrics: dict[str, float | None]
    details: dict[str, Any]


@dataclass
class _Report:
    """Metrics being collected, with the reason for each one that is None."""

    metrics: dict[str, float | None] = field(default_factory=dict)
    undefined: dict[str, str] = field(default_factory=dict)

    def put(self, key: str, value: float | None, reason: str) -> None:
        self.metrics[key] = value
        if value is None:
            self.undefined[key] = reason


def _share(count: int, n: int) -> float | None:
    return count / n if n else None


def _mean(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return float(np.mean(present)) if present else None


def _distribution(
    report: _Report,
    prefix: str,
    labels: Sequence[str],
    members: Sequence[tuple[str, float | None]],
    *,
    what: str,
    scores: bool,
) -> dict[str, int]:
    """`<prefix><label>_share` for each label over `members` (label, quality score) and, with
    `scores`, `<prefix><label>_mean_score`; returns the count per label."""
    counts = Counter(label for label, _ in members)
    for label in labels:
        share = _share(counts[label], len(members))
        report.put(f"{prefix}{label}_share", share, f"no parsed {what} images")
        if scores:
            mean = _mean(score for member, score in members if member == label)
            empty = "no quality score in this bucket" if counts[label] else "empty bucket"
            report.put(f"{prefix}{label}_mean_score", mean, empty)
    return {label: counts[label] for label in labels}


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _clean(report: _Report, clean: Sequence[DetectionOutcome]) -> dict[str, Any]:
    """Table III: false positives on clean images."""
    report.put("clean_n", len(clean), "")
    false_positives = [sum(o.flags.values()) for o in clean]
    members = [
        (str(fp) if fp < 3 else "3plus", o.quality_score)
        for fp, o in zip(false_positives, clean, strict=True)
    ]
    counts = _distribution(report, "clean_fp", FP_BUCKETS, members, what="clean", scores=True)
    no_fp = report.metrics["clean_fp0_share"]
    rate = None if no_fp is None else 1.0 - no_fp
    report.put("hallucination_rate", rate, "no parsed clean images")
    by_artifact = {a: sum(o.flags[a] for o in clean) for a in ARTIFACTS}
    return {"fp_counts": counts, "false_positives_by_artifact": by_artifact}


def _mixed(report: _Report, mixed: Sequence[DetectionOutcome]) -> dict[str, Any]:
    """Table IV: hard-artifact recall and completeness on mixed images."""
    report.put("mixed_n", len(mixed), "")
    hits = [o.flags[a] for o in mixed for a in o.applied() if a == o.hard]
    report.put("hard_recall", _share(sum(hits), len(hits)), "no parsed mixed images")
    members = [(str(sum(o.flags[a] for a in o.applied())), o.quality_score) for o in mixed]
    counts = _distribution(report, "complete", COMPLETENESS, members, what="mixed", scores=False)
    # The paper suspects the mild artifacts are the ones missed; their recall tests that.
    mild = [o.flags[a] for o in mixed for a in o.applied() if a != o.hard]
    by_hard: dict[str, dict[str, float | int | None]] = {}
    for artifact in ARTIFACTS:
        mine = [o.flags[artifact] for o in mixed if o.hard == artifact]
        by_hard[artifact] = {"n": len(mine), "recall": _share(sum(mine), len(mine))}
    return {
        "completeness_counts": counts,
        "hard_recall_by_artifact": by_hard,
        "mild_recall": _share(sum(mild), len(mild)),
    }


def hamming_distance(outcome: DetectionOutcome) -> int:
    """Bits where the predicted flags differ from the truth vector."""
    return sum(outcome.flags[a] != bool(outcome.truth[a]) for a in ARTIFACTS)


def _hamming_into(
    report: _Report, prefix: str, outcomes: Sequence[DetectionOutcome], what: str
) -> None:
    """`<prefix>d<k>_share`, `<prefix>d<k>_mean_score` and `<prefix>mean` over `outcomes`."""
    members = [(str(hamming_distance(o)), o.quality_score) for o in outcomes]
    _distribution(report, f"{prefix}d", HAMMING, members, what=what, scores=True)
    mean = _mean(float(label) for label, _ in members)
    report.put(f"{prefix}mean", mean, f"no parsed {what} images")


def _hamming(report: _Report, by_level: dict[str, Sequence[DetectionOutcome]]) -> dict[str, Any]:
    """Table V: the Hamming distance distribution over mixed images (the flat metrics), and over
    clean images and both together (details)."""
    _hamming_into(report, "hamming_", by_level["mixed"], "mixed")
    groups = {
        "clean": by_level["clean"],
        "mixed": by_level["mixed"],
        "clean_and_mixed": [*by_level["clean"], *by_level["mixed"]],
    }
    levels: dict[str, Any] = {}
    for level, members in groups.items():
        sub = _Report()
        _hamming_into(sub, "", members, level)
        levels[level] = dict(sub.metrics)
        levels[level]["n"] = len(members)
    return {"by_level": levels}


def _per_artifact(report: _Report, outcomes: Sequence[DetectionOutcome]) -> dict[str, Any]:
    """Precision, recall and F1 of each flag over clean + mixed images."""
    table: dict[str, Any] = {}
    for a in ARTIFACTS:
        pairs = [(o.flags[a], bool(o.truth[a])) for o in outcomes]
        tp = sum(p and t for p, t in pairs)
        fp = sum(p and not t for p, t in pairs)
        fn = sum(t and not p for p, t in pairs)
        report.put(f"{a}_precision", _share(tp, tp + fp), f"no image predicted to have {a}")
        report.put(f"{a}_recall", _share(tp, tp + fn), f"no image has {a}")
        f1 = _share(2 * tp, 2 * tp + fp + fn)
        report.put(f"{a}_f1", f1, f"no image has or is predicted to have {a}")
        table[a] = {"tp": tp, "fp": fp, "fn": fn, "tn": len(pairs) - tp - fp - fn}
    return table


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float | None, str]:
    """Spearman's rho (average ranks for ties), or None and why it is undefined."""
    first, second = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    reason = undefined_correlation_reason(first, second, ("step", "score"))
    if reason:
        return None, reason
    rho = float(stats.spearmanr(first, second).statistic)
    return (rho, "") if math.isfinite(rho) else (None, "Spearman is not finite")


def _step_of(outcome: DetectionOutcome) -> int:
    assert outcome.ladder is not None  # ladder outcomes only (validated)
    return outcome.ladder[1]


@dataclass(frozen=True)
class _Point:
    """A parsed, scored ladder image."""

    reference: str | None
    step: float
    score: float


def _points(ladder: Sequence[DetectionOutcome]) -> list[_Point]:
    return [
        _Point(o.reference, float(_step_of(o)), o.quality_score)
        for o in ladder
        if o.predicted is not None and o.quality_score is not None
    ]


def _per_reference(points: Sequence[_Point]) -> dict[str, Any]:
    """The mean of per-reference rhos; references whose rho is undefined are left out."""
    if not points or any(point.reference is None for point in points):
        reason = "outcomes carry no reference" if points else "no scored ladder images"
        return {"mean": None, "n_references": 0, "n_defined": 0, "reason": reason}
    groups: dict[str | None, list[_Point]] = {}
    for point in points:
        groups.setdefault(point.reference, []).append(point)
    rhos = [spearman([p.step for p in g], [p.score for p in g])[0] for g in groups.values()]
    defined = [rho for rho in rhos if rho is not None]
    reason = "" if defined else "no reference has a defined Spearman"
    return {
        "mean": _mean(defined),
        "n_references": len(rhos),
        "n_defined": len(defined),
        "reason": reason,
    }


def _steps(artifact: Artifact, ladder: Sequence[DetectionOutcome]) -> list[dict[str, Any]]:
    """Detection rate and mean score per step; parameter values can differ within a step (the
    two exposure directions share steps)."""
    rows = []
    for step in sorted({_step_of(o) for o in ladder}):
        at_step = [o for o in ladder if _step_of(o) == step]
        parsed = [o for o in at_step if o.predicted is not None]
        rows.append(
            {
                "step": step,
                "values": sorted({o.ladder[2] for o in at_step if o.ladder is not None}),
                "n": len(parsed),
                "n_unparsed": len(at_step) - len(parsed),
                "detection_rate": _share(sum(o.flags[artifact] for o in parsed), len(parsed)),
                "mean_score": _mean(o.quality_score for o in parsed),
            }
        )
    return rows


def _ladders(report: _Report, ladder: Sequence[DetectionOutcome]) -> dict[str, Any]:
    """Monotonicity of the score along each artifact's strength ladder."""
    table: dict[str, Any] = {}
    for a in ARTIFACTS:
        mine = [o for o in ladder if o.ladder is not None and o.ladder[0] == a]
        points = _points(mine)
        rho, reason = spearman([p.step for p in points], [p.score for p in points])
        report.put(f"ladder_spearman_{a}", rho, f"{a} ladder: {reason}")
        table[a] = {
            "n_scored": len(points),
            "steps": _steps(a, mine),
            "spearman_per_reference": _per_reference(points),
        }
    return table


def detection_metrics(outcomes: Sequence[DetectionOutcome]) -> DetectionMetrics:
    """All detection metrics of a run; see the module docstring for definitions."""
    report = _Report()
    parsed: dict[str, Sequence[DetectionOutcome]] = {}
    for level in LEVELS:
        at_level = [o for o in outcomes if o.level == level]
        parsed[level] = [o for o in at_level if o.predicted is not None]
        report.put(f"n_unparsed_{level}", len(at_level) - len(parsed[level]), "")
    details: dict[str, Any] = {
        "clean": _clean(report, parsed["clean"]),
        "mixed": _mixed(report, parsed["mixed"]),
        "hamming": _hamming(report, parsed),
        "per_artifact": _per_artifact(report, [*parsed["clean"], *parsed["mixed"]]),
        "ladder": _ladders(report, [o for o in outcomes if o.level == "ladder"]),
    }
    details |= {"undefined": report.undefined, "conventions": CONVENTIONS}
    return DetectionMetrics(metrics=report.metrics, details=details)
