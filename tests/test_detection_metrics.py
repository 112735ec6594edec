"""Detection metrics: a hand-computed 12-image example, undefined cases and ladder signs."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from fiqabench.benchmark.detection_metrics import (
    DetectionMetrics,
    DetectionOutcome,
    detection_metrics,
    hamming_distance,
)
from fiqabench.tasks.mixdeg import ARTIFACTS

# Bits in ARTIFACTS order: blur, noise, low_resolution, compression, poor_lighting.


def bits(code: str) -> dict[str, int]:
    return {artifact: int(bit) for artifact, bit in zip(ARTIFACTS, code, strict=True)}


def outcome(
    image_id: str,
    level: str,
    truth: str,
    predicted: str | None,
    score: float | None = None,
    hard: str | None = None,
    ladder: tuple[str, int, float] | None = None,
    reference: str | None = None,
) -> DetectionOutcome:
    flags = None if predicted is None else {a: bool(b) for a, b in bits(predicted).items()}
    return DetectionOutcome.model_validate(
        {
            "image_id": image_id,
            "level": level,
            "truth": bits(truth),
            "hard": hard,
            "predicted": flags,
            "quality_score": score,
            "ladder": ladder,
            "reference": reference,
        }
    )


def clean(image_id: str, predicted: str | None, score: float | None) -> DetectionOutcome:
    return outcome(image_id, "clean", "00000", predicted, score)


def mixed(
    image_id: str, truth: str, hard: str, predicted: str | None, score: float | None
) -> DetectionOutcome:
    return outcome(image_id, "mixed", truth, predicted, score, hard=hard)


# Five parsed clean images and one unparsed; five parsed mixed images and one unparsed.
EXAMPLE = [
    clean("c1", "00000", 90),  # 0 false positives
    clean("c2", "10000", 60),  # 1
    clean("c3", "01010", 50),  # 2
    clean("c4", "11100", 30),  # 3
    clean("c5", "00000", 80),  # 0
    clean("c6", None, 99),  # unparsed
    mixed("m1", "11010", "blur", "11010", 20),  # found 3/3, hard hit, Hamming 0
    mixed("m2", "10101", "low_resolution", "00100", 40),  # found 1, hard hit, Hamming 2
    mixed("m3", "01011", "compression", "11000", 55),  # found 1, hard miss, Hamming 3
    mixed("m4", "00111", "poor_lighting", "00000", None),  # found 0, hard miss, Hamming 3
    mixed("m5", "11100", "noise", None, 10),  # unparsed
    mixed("m6", "11100", "noise", "11001", 35),  # found 2, hard hit, Hamming 2
]


@pytest.fixture(scope="module")
def example() -> DetectionMetrics:
    return detection_metrics(EXAMPLE)


def test_counts_and_unparsed(example: DetectionMetrics) -> None:
    m = example.metrics
    assert (m["clean_n"], m["mixed_n"]) == (5, 5)
    assert (m["n_unparsed_clean"], m["n_unparsed_mixed"], m["n_unparsed_ladder"]) == (1, 1, 0)


def test_clean_hallucination(example: DetectionMetrics) -> None:
    m = example.metrics
    # Buckets: fp0 = c1, c5; fp1 = c2; fp2 = c3; fp3+ = c4 (c6 unparsed, its 99 ignored).
    assert m["clean_fp0_share"] == pytest.approx(2 / 5)
    assert m["clean_fp1_share"] == pytest.approx(1 / 5)
    assert m["clean_fp2_share"] == pytest.approx(1 / 5)
    assert m["clean_fp3plus_share"] == pytest.approx(1 / 5)
    assert m["hallucination_rate"] == pytest.approx(3 / 5)
    assert m["clean_fp0_mean_score"] == pytest.approx(85.0)  # (90 + 80) / 2
    assert m["clean_fp1_mean_score"] == pytest.approx(60.0)
    assert m["clean_fp2_mean_score"] == pytest.approx(50.0)
    assert m["clean_fp3plus_mean_score"] == pytest.approx(30.0)
    by_artifact = example.details["clean"]["false_positives_by_artifact"]
    assert by_artifact == {
        "blur": 2,
        "noise": 2,
        "low_resolution": 1,
        "compression": 1,
        "poor_lighting": 0,
    }


def test_mixed_recall_and_completeness(example: DetectionMetrics) -> None:
    m = example.metrics
    assert m["hard_recall"] == pytest.approx(3 / 5)  # m1, m2, m6
    assert m["complete0_share"] == pytest.approx(1 / 5)  # m4
    assert m["complete1_share"] == pytest.approx(2 / 5)  # m2, m3
    assert m["complete2_share"] == pytest.approx(1 / 5)  # m6
    assert m["complete3_share"] == pytest.approx(1 / 5)  # m1
    details = example.details["mixed"]
    # Mild artifacts flagged: m1 2/2, m2 0/2, m3 1/2, m4 0/2, m6 1/2.
    assert details["mild_recall"] == pytest.approx(4 / 10)
    assert details["hard_recall_by_artifact"]["compression"] == {"n": 1, "recall": 0.0}
    assert details["hard_recall_by_artifact"]["noise"] == {"n": 1, "recall": 1.0}


def test_hamming(example: DetectionMetrics) -> None:
    m = example.metrics
    # Table V is over mixed images. Distances: m1 0, m2 2, m3 3, m4 3, m6 2 (m5 unparsed).
    expected_shares = [0.2, 0.0, 0.4, 0.4, 0.0, 0.0]
    for distance, share in enumerate(expected_shares):
        assert m[f"hamming_d{distance}_share"] == pytest.approx(share)
    assert m["hamming_d0_mean_score"] == pytest.approx(20.0)
    assert m["hamming_d1_mean_score"] is None
    assert m["hamming_d2_mean_score"] == pytest.approx((40 + 35) / 2)
    assert m["hamming_d3_mean_score"] == pytest.approx(55.0)  # m4 has no score
    assert example.details["undefined"]["hamming_d4_mean_score"] == "empty bucket"
    assert m["hamming_mean"] == pytest.approx(2.0)
    # Clean + mixed: c1 0, c2 1, c3 2, c4 3, c5 0 and the mixed ones above.
    both = example.details["hamming"]["by_level"]["clean_and_mixed"]
    for distance, share in enumerate([0.3, 0.1, 0.3, 0.3, 0.0, 0.0]):
        assert both[f"d{distance}_share"] == pytest.approx(share)
    assert both["d0_mean_score"] == pytest.approx((90 + 80 + 20) / 3)
    assert both["mean"] == pytest.approx(16 / 10)
    assert hamming_distance(EXAMPLE[9]) == 3


@pytest.mark.parametrize(
    ("artifact", "precision", "recall", "f1", "counts"),
    [
        # truth: m1 m2 m6; predicted: c2 c4 m1 m3 m6
        ("blur", 2 / 5, 2 / 3, 4 / 8, {"tp": 2, "fp": 3, "fn": 1, "tn": 4}),
        # truth: m1 m3 m6; predicted: c3 c4 m1 m3 m6
        ("noise", 3 / 5, 3 / 3, 6 / 8, {"tp": 3, "fp": 2, "fn": 0, "tn": 5}),
        # truth: m2 m4 m6; predicted: c4 m2
        ("low_resolution", 1 / 2, 1 / 3, 2 / 5, {"tp": 1, "fp": 1, "fn": 2, "tn": 6}),
        # truth: m1 m3 m4; predicted: c3 m1
        ("compression", 1 / 2, 1 / 3, 2 / 5, {"tp": 1, "fp": 1, "fn": 2, "tn": 6}),
        # truth: m2 m3 m4; predicted: m6
        ("poor_lighting", 0.0, 0.0, 0.0, {"tp": 0, "fp": 1, "fn": 3, "tn": 6}),
    ],
)
def test_per_artifact(
    example: DetectionMetrics,
    artifact: str,
    precision: float,
    recall: float,
    f1: float,
    counts: dict[str, int],
) -> None:
    m = example.metrics
    assert m[f"{artifact}_precision"] == pytest.approx(precision)
    assert m[f"{artifact}_recall"] == pytest.approx(recall)
    assert m[f"{artifact}_f1"] == pytest.approx(f1)
    assert example.details["per_artifact"][artifact] == counts


def test_output_is_json_safe(example: DetectionMetrics) -> None:
    json.dumps(example.metrics, allow_nan=False)
    json.dumps(example.details, allow_nan=False)
    assert set(example.details["undefined"]) == {
        key for key, value in example.metrics.items() if value is None
    }


def test_empty_input_is_all_undefined_with_reasons() -> None:
    result = detection_metrics([])
    assert result.metrics["clean_n"] == 0
    assert result.metrics["hallucination_rate"] is None
    assert result.details["undefined"]["hallucination_rate"] == "no parsed clean images"
    assert result.details["undefined"]["hard_recall"] == "no parsed mixed images"
    assert result.details["undefined"]["ladder_spearman_blur"].startswith("blur ladder:")
    defined = {k for k, v in result.metrics.items() if v is not None}
    assert defined == {
        "clean_n",
        "mixed_n",
        "n_unparsed_clean",
        "n_unparsed_mixed",
        "n_unparsed_ladder",
    }


def test_all_unparsed_are_counted_not_rated() -> None:
    result = detection_metrics([clean("a", None, 50), mixed("b", "11100", "blur", None, 5)])
    m = result.metrics
    assert (m["n_unparsed_clean"], m["n_unparsed_mixed"], m["clean_n"], m["mixed_n"]) == (
        1,
        1,
        0,
        0,
    )
    assert m["clean_fp0_share"] is None
    assert m["hamming_mean"] is None


def test_precision_undefined_but_recall_and_f1_zero() -> None:
    # Nothing predicted: precision has no denominator; the missed artifacts give recall 0.
    result = detection_metrics([mixed("m", "11100", "blur", "00000", 50), clean("c", "00000", 9)])
    m = result.metrics
    assert m["blur_precision"] is None
    assert result.details["undefined"]["blur_precision"] == "no image predicted to have blur"
    assert (m["blur_recall"], m["blur_f1"]) == (0.0, 0.0)
    # Compression is neither present nor predicted: all three undefined.
    assert (m["compression_precision"], m["compression_recall"], m["compression_f1"]) == (
        None,
        None,
        None,
    )
    assert result.details["undefined"]["compression_recall"] == "no image has compression"


def test_bucket_without_scores_is_none_with_reason() -> None:
    result = detection_metrics([clean("a", "10000", None), clean("b", "00000", 70)])
    assert result.metrics["clean_fp1_share"] == 0.5
    assert result.metrics["clean_fp1_mean_score"] is None
    assert result.details["undefined"]["clean_fp1_mean_score"] == "no quality score in this bucket"
    assert result.metrics["clean_fp0_mean_score"] == 70.0


def ladder(
    artifact: str,
    step: int,
    value: float,
    score: float | None,
    detected: bool | None,
    reference: str | None = "r1",
) -> DetectionOutcome:
    truth = "".join("1" if a == artifact else "0" for a in ARTIFACTS)
    predicted = None if detected is None else (truth if detected else "00000")
    return outcome(
        f"{reference}-{artifact}-{step}-{value}",
        "ladder",
        truth,
        predicted,
        score,
        ladder=(artifact, step, value),
        reference=reference,
    )


BLUR_LADDER = [
    ladder("blur", 1, 1.0, 80, False, "r1"),
    ladder("blur", 2, 2.0, 60, True, "r1"),
    ladder("blur", 3, 3.0, 40, True, "r1"),
    ladder("blur", 1, 1.0, 70, False, "r2"),
    ladder("blur", 2, 2.0, 70, False, "r2"),
    ladder("blur", 3, 3.0, 50, True, "r2"),
    ladder("blur", 3, 3.0, 99, None, "r3"),  # unparsed: counted, not correlated
]


def test_ladder_spearman_pooled_and_per_reference() -> None:
    result = detection_metrics(BLUR_LADDER)
    # Pooled ranks: steps 1.5, 3.5, 5.5, 1.5, 3.5, 5.5; scores 6, 3, 1, 4.5, 4.5, 2.
    # Centred: (-2, 0, 2, -2, 0, 2) · (2.5, -0.5, -2.5, 1, 1, -1.5) = -15; norms² 16 and 17.
    assert result.metrics["ladder_spearman_blur"] == pytest.approx(-15 / (4 * math.sqrt(17)))
    assert result.metrics["n_unparsed_ladder"] == 1
    # r1 falls strictly (-1); r2 ranks (2.5, 2.5, 1) give -1.5 / sqrt(2 * 1.5) = -sqrt(3) / 2.
    per_reference = result.details["ladder"]["blur"]["spearman_per_reference"]
    assert per_reference["mean"] == pytest.approx((-1 - math.sqrt(3) / 2) / 2)
    assert (per_reference["n_references"], per_reference["n_defined"]) == (2, 2)


def test_ladder_detection_rate_per_step() -> None:
    steps = detection_metrics(BLUR_LADDER).details["ladder"]["blur"]["steps"]
    assert steps == [
        {
            "step": 1,
            "values": [1.0],
            "n": 2,
            "n_unparsed": 0,
            "detection_rate": 0.0,
            "mean_score": 75.0,
        },
        {
            "step": 2,
            "values": [2.0],
            "n": 2,
            "n_unparsed": 0,
            "detection_rate": 0.5,
            "mean_score": 65.0,
        },
        {
            "step": 3,
            "values": [3.0],
            "n": 2,
            "n_unparsed": 1,
            "detection_rate": 1.0,
            "mean_score": 45.0,
        },
    ]


def test_ladder_sign_consistent_model_is_negative() -> None:
    # JPEG quality falls as strength rises: correlating with the step, not the value, keeps
    # "score falls as the artifact strengthens" negative.
    falling = [
        ladder("compression", s, q, 90 - 20 * s, True) for s, q in [(1, 60), (2, 40), (3, 20)]
    ]
    rising = [ladder("noise", s, v, 20 * s, True) for s, v in [(1, 5.0), (2, 12.0), (3, 20.0)]]
    m = detection_metrics(falling + rising).metrics
    assert m["ladder_spearman_compression"] == pytest.approx(-1.0)
    assert m["ladder_spearman_noise"] == pytest.approx(1.0)
    assert m["ladder_spearman_blur"] is None


def test_exposure_directions_share_steps() -> None:
    under = [ladder("poor_lighting", s, g, 90 - 10 * s, True) for s, g in [(1, 1.4), (2, 1.8)]]
    over = [ladder("poor_lighting", s, g, 85 - 10 * s, True) for s, g in [(1, 0.7), (2, 0.6)]]
    result = detection_metrics(under + over)
    assert [row["values"] for row in result.details["ladder"]["poor_lighting"]["steps"]] == [
        [0.7, 1.4],
        [0.6, 1.8],
    ]
    # Scores 80, 70 (under) and 75, 65 (over): pooled ranks 4, 2, 3, 1 against steps 1, 2, 1, 2.
    assert result.metrics["ladder_spearman_poor_lighting"] == pytest.approx(-2 / math.sqrt(5))


def test_constant_reference_drops_out_of_per_reference_mean_only() -> None:
    flat = [ladder("blur", s, float(s), 50, True, "flat") for s in (1, 2, 3)]
    falling = [ladder("blur", s, float(s), 90 - 10 * s, True, "falls") for s in (1, 2, 3)]
    result = detection_metrics(flat + falling)
    per_reference = result.details["ladder"]["blur"]["spearman_per_reference"]
    assert (per_reference["mean"], per_reference["n_references"]) == (-1.0, 2)
    assert per_reference["n_defined"] == 1
    assert result.metrics["ladder_spearman_blur"] is not None


def test_per_reference_needs_references() -> None:
    result = detection_metrics([ladder("blur", s, float(s), 90 - s, True, None) for s in (1, 2)])
    assert result.metrics["ladder_spearman_blur"] == pytest.approx(-1.0)
    per_reference = result.details["ladder"]["blur"]["spearman_per_reference"]
    assert per_reference["reason"] == "outcomes carry no reference"


def test_constant_scores_make_spearman_undefined() -> None:
    result = detection_metrics([ladder("noise", s, float(s), 50, True) for s in (1, 2, 3)])
    assert result.metrics["ladder_spearman_noise"] is None
    reason = result.details["undefined"]["ladder_spearman_noise"]
    assert reason == "noise ladder: all score values are equal"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"level": "bogus"}, "level must be one of"),
        ({"truth": "10000"}, "a clean image has 0 artifacts"),
        ({"level": "mixed", "truth": "11100"}, "names its hard artifact"),
        ({"level": "mixed", "truth": "11000", "hard": "blur"}, "a mixed image has 3"),
        ({"level": "mixed", "truth": "11100", "hard": "compression"}, "not in the truth"),
        ({"level": "ladder", "truth": "10000"}, "has a ladder step"),
        ({"level": "ladder", "truth": "10000", "ladder": ("noise", 1, 5.0)}, "ladder artifact"),
        ({"quality_score": math.nan}, "finite"),
    ],
)
def test_inconsistent_outcomes_are_rejected(fields: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"image_id": "x", "level": "clean", "truth": "00000"}
    merged = base | fields
    merged["truth"] = bits(str(merged["truth"]))
    with pytest.raises(ValidationError, match=message):
        DetectionOutcome.model_validate(merged)


def test_unknown_artifact_keys_are_rejected() -> None:
    with pytest.raises(ValidationError):
        DetectionOutcome.model_validate({"image_id": "x", "level": "clean", "truth": {"res": 0}})
    with pytest.raises(ValidationError, match="predicted must have exactly"):
        DetectionOutcome.model_validate(
            {"image_id": "x", "level": "clean", "truth": bits("00000"), "predicted": {"blur": True}}
        )
