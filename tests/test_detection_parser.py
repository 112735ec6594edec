"""Detection-prompt parsing: a table of adversarial replies, then the failure details."""

from __future__ import annotations

import json

import pytest

from fiqabench.judges.detection import (
    DETECTION_VERSION,
    ParsedDetection,
    flag_value,
    parse_detection,
)
from fiqabench.tasks.mixdeg import ARTIFACTS, FLAG_KEYS

KEYS = [FLAG_KEYS[artifact] for artifact in ARTIFACTS]


def reply(code: str = "10010", score: object = 40, **extra: object) -> str:
    """A strict JSON reply: `code` gives the five flags in ARTIFACTS order."""
    body: dict[str, object] = {"quality_score": score} if score is not None else {}
    body |= {key: bit == "1" for key, bit in zip(KEYS, code, strict=True)}
    return json.dumps(body | extra)


def flags(code: str) -> dict[str, bool]:
    return {artifact: bit == "1" for artifact, bit in zip(ARTIFACTS, code, strict=True)}


STRICT = reply()
PY_STYLE = (
    "{'quality_score': 40, 'has_blur': True, 'has_noise': False, 'has_low_resolution': False,"
    " 'has_compression': True, 'has_poor_lighting': False,}"
)
PROSE_LINES = (
    "Assessment:\nhas_blur: yes\nhas_noise: no\nhas_low_resolution: no\n"
    "has_compression: yes\nhas_poor_lighting: no\nquality_score: 40"
)
NO_COMPRESSION_KEY = (
    '{"quality_score": 40, "has_blur": true, "has_noise": false, "has_low_resolution": false,'
    ' "has_compression_artifacts": true, "has_poor_lighting": false}'
)
LOW_RES_SHORT_KEY = (
    '{"quality_score": 40, "has_blur": true, "has_noise": false, "has_low_res": true,'
    ' "has_compression": true, "has_poor_lighting": false}'
)
ECHOED_SCHEMA = (
    'You asked for {"quality_score": <0-100 number>, "has_blur": <true or false>, ...}.\n'
    f"Here it is:\n{STRICT}"
)
TRUNCATED = '{"quality_score": 70, "has_blur": false, "has_noise": false, "has_low_res'

# (reply, expected flags as a 5-bit code or None, expected stage, expected quality score)
CASES = [
    # JSON forms, most explicit first.
    pytest.param(STRICT, "10010", "strict_json", 40.0, id="strict"),
    pytest.param(f"\n  {STRICT}  \n", "10010", "strict_json", 40.0, id="strict-whitespace"),
    pytest.param(f"```json\n{STRICT}\n```", "10010", "fenced_json", 40.0, id="fenced"),
    pytest.param(f"```\n{STRICT}\n```", "10010", "fenced_json", 40.0, id="fenced-no-lang"),
    pytest.param(
        f"Sure! Here it is: {STRICT} Hope it helps.",
        "10010",
        "first_object",
        40.0,
        id="prose-around",
    ),
    pytest.param(STRICT.replace('"', "'"), "10010", "lenient_json", 40.0, id="single-quotes"),
    pytest.param(STRICT[:-1] + ",}", "10010", "lenient_json", 40.0, id="trailing-comma"),
    pytest.param(PY_STYLE, "10010", "lenient_json", 40.0, id="python-literals"),
    pytest.param(
        STRICT.replace('"', "\u201c", 1).replace('"', "\u201d", 1),
        "10010",
        "strict_json",
        40.0,
        id="curly-quotes",
    ),
    pytest.param(reply("00000"), "00000", "strict_json", 40.0, id="all-false-is-read"),
    pytest.param(reply("11111", 5), "11111", "strict_json", 5.0, id="all-true"),
    # Boolean spellings.
    pytest.param(
        STRICT.replace("true", '"Yes"').replace("false", '"NO"'),
        "10010",
        "strict_json",
        40.0,
        id="yes-no-strings",
    ),
    pytest.param(
        STRICT.replace("true", '"TRUE"').replace("false", '"False"'),
        "10010",
        "strict_json",
        40.0,
        id="true-false-strings",
    ),
    pytest.param(
        STRICT.replace("true", "1").replace("false", "0"), "10010", "strict_json", 40.0, id="ints"
    ),
    pytest.param(
        STRICT.replace("true", '"1"').replace("false", '"0"'),
        "10010",
        "strict_json",
        40.0,
        id="int-strings",
    ),
    pytest.param(
        STRICT.replace("true", '" yes "'), "10010", "strict_json", 40.0, id="padded-string"
    ),
    # Key spellings: exact after case, spaces, "-" and "_"; never a substring.
    pytest.param(
        STRICT.replace("has_low_resolution", "Has Low Resolution"),
        "10010",
        "strict_json",
        40.0,
        id="key-title-spaces",
    ),
    pytest.param(
        STRICT.replace("has_low_resolution", "hasLowResolution").replace(
            "has_poor_lighting", "hasPoorLighting"
        ),
        "10010",
        "strict_json",
        40.0,
        id="key-camel",
    ),
    pytest.param(
        STRICT.replace("has_blur", "HAS_BLUR").replace("has_noise", "has-noise"),
        "10010",
        "strict_json",
        40.0,
        id="key-upper-hyphen",
    ),
    pytest.param(reply("00010"), "00010", "strict_json", 40.0, id="compression-not-low-res"),
    pytest.param(reply("00100"), "00100", "strict_json", 40.0, id="low-res-not-compression"),
    pytest.param(NO_COMPRESSION_KEY, None, "missing_keys", 40.0, id="longer-key-is-not-the-key"),
    pytest.param(LOW_RES_SHORT_KEY, None, "missing_keys", 40.0, id="low-res-abbreviation"),
    # Extra keys, nesting, arrays.
    pytest.param(
        reply(explanation="blurry; has compression", has_artifacts=True, confidence=0.9),
        "10010",
        "strict_json",
        40.0,
        id="extra-keys",
    ),
    pytest.param(
        json.dumps({"result": json.loads(STRICT)}), "10010", "strict_json", 40.0, id="nested"
    ),
    pytest.param(
        json.dumps({"quality_score": 40, "flags": json.loads(reply(score=None))}),
        "10010",
        "strict_json",
        40.0,
        id="flags-nested-score-outside",
    ),
    pytest.param(f"[{STRICT}]", "10010", "strict_json", 40.0, id="array"),
    # Think blocks.
    pytest.param(
        f"<think>Blurry? {reply('11111')}</think>\n{STRICT}",
        "10010",
        "strict_json",
        40.0,
        id="think-block-json-ignored",
    ),
    pytest.param(
        f"reasoning ...</think>{STRICT}", "10010", "strict_json", 40.0, id="lone-close-think"
    ),
    pytest.param(f"<think>{STRICT}", None, "no_answer", None, id="unclosed-think"),
    # Quality score is optional.
    pytest.param(reply(score=None), "10010", "strict_json", None, id="no-score"),
    pytest.param(reply(score=150), "10010", "strict_json", None, id="score-out-of-range"),
    pytest.param(reply(score="72/100"), "10010", "strict_json", 72.0, id="score-fraction-string"),
    pytest.param(reply(score="high"), "10010", "strict_json", None, id="score-word"),
    # Unreadable values.
    pytest.param(reply(has_noise="maybe"), None, "invalid_value", 40.0, id="maybe"),
    pytest.param(reply().replace("false", "2", 1), None, "invalid_value", 40.0, id="two"),
    pytest.param(reply().replace("false", "null", 1), None, "invalid_value", 40.0, id="null"),
    pytest.param(reply().replace("false", "0.0", 1), None, "invalid_value", 40.0, id="float"),
    pytest.param(reply(has_blur={"present": True}), None, "invalid_value", 40.0, id="object-value"),
    pytest.param(reply(has_blur="true/false"), None, "invalid_value", 40.0, id="both-words"),
    # Missing keys: never read as false.
    pytest.param(
        '{"quality_score": 40, "has_blur": true}', None, "missing_keys", 40.0, id="missing-four"
    ),
    pytest.param(
        json.dumps({"quality_score": 40, "artifacts": ["blur"]}),
        None,
        "missing_keys",
        40.0,
        id="artifact-list",
    ),
    pytest.param(TRUNCATED, None, "missing_keys", 70.0, id="truncated"),
    # Disagreement.
    pytest.param(STRICT[:-1] + ', "has_blur": false}', None, "conflict", 40.0, id="duplicate-key"),
    pytest.param(
        f"{STRICT}\nCorrection: {reply('00010')}", None, "conflict", 40.0, id="two-objects-disagree"
    ),
    pytest.param(
        f"{STRICT}\nTo repeat: {STRICT}", "10010", "first_object", 40.0, id="two-objects-agree"
    ),
    pytest.param(f"{STRICT}\nhas_blur: false", None, "conflict", 40.0, id="prose-disagrees"),
    pytest.param(
        f"```json\n{STRICT}\n```\nhas_blur: yes", "10010", "fenced_json", 40.0, id="prose-agrees"
    ),
    # Prose key-value lines when no JSON decodes.
    pytest.param(PROSE_LINES, "10010", "key_value", 40.0, id="prose-lines"),
    pytest.param(
        PROSE_LINES.replace("has_blur", "**has_blur**"),
        "10010",
        "key_value",
        40.0,
        id="prose-markdown",
    ),
    pytest.param(STRICT.replace(", ", " "), "10010", "key_value", 40.0, id="json-missing-commas"),
    pytest.param(
        STRICT.replace("false", "maybe", 1),
        None,
        "invalid_value",
        40.0,
        id="bare-word-in-broken-json",
    ),
    pytest.param(ECHOED_SCHEMA, "10010", "first_object", 40.0, id="echoed-schema"),
    # No answer at all.
    pytest.param("", None, "no_answer", None, id="empty"),
    pytest.param("   \n ", None, "no_answer", None, id="blank"),
    pytest.param("I'm sorry, I cannot assess this image.", None, "no_answer", None, id="refusal"),
    pytest.param(
        f"I cannot fully assess faces, but: {STRICT}",
        "10010",
        "first_object",
        40.0,
        id="refusal-then-json",
    ),
    pytest.param("The image is blurry and compressed.", None, "no_answer", None, id="free-prose"),
]


@pytest.mark.parametrize(("text", "code", "stage", "score"), CASES)
def test_parse_detection(text: str, code: str | None, stage: str, score: float | None) -> None:
    parsed = parse_detection(text)
    assert parsed.stage == stage, parsed
    assert parsed.flags == (flags(code) if code else None)
    assert parsed.ok is (code is not None)
    assert parsed.quality_score == score


def test_enums_and_version() -> None:
    assert ARTIFACTS == ("blur", "noise", "low_resolution", "compression", "poor_lighting")
    assert KEYS == [
        "has_blur",
        "has_noise",
        "has_low_resolution",
        "has_compression",
        "has_poor_lighting",
    ]
    assert DETECTION_VERSION == "detection-v1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("yes", True),
        ("No", False),
        ("TRUE", True),
        ("false", False),
        ("1", True),
        ("0", False),
        (2, None),
        (-1, None),
        (1.0, None),
        (None, None),
        ("maybe", None),
        ("y", None),
        ("", None),
        ([True], None),
    ],
)
def test_flag_value(value: object, expected: bool | None) -> None:
    assert flag_value(value) is expected


def test_missing_keys_are_listed_and_explained() -> None:
    parsed = parse_detection('{"quality_score": 40, "has_blur": true, "has_noise": false}')
    assert parsed.missing == ("has_low_resolution", "has_compression", "has_poor_lighting")
    assert parsed.reason == "missing has_low_resolution, has_compression, has_poor_lighting"
    assert parsed.score_stage == "strict_json"


def test_invalid_value_reason_names_key_and_value() -> None:
    parsed = parse_detection(reply(has_noise="maybe"))
    assert parsed.missing == ()
    assert parsed.reason == "has_noise: maybe (not a boolean)"


def test_conflict_reason_shows_both_values() -> None:
    parsed = parse_detection(f"{STRICT}\n{reply('00010')}")
    assert parsed.reason == "has_blur: true vs false (values disagree)"


def test_conflict_outranks_invalid_and_missing() -> None:
    text = f'{reply(has_noise="maybe")}\n{{"has_blur": false}}'
    parsed = parse_detection(text.replace(', "has_poor_lighting": false', ""))
    assert parsed.stage == "conflict"
    assert parsed.missing == ("has_poor_lighting",)
    assert "has_noise: maybe (not a boolean)" in parsed.reason


def test_score_notes_say_why_the_score_is_missing() -> None:
    assert parse_detection(reply(score=None)).score_stage == "missing_key"
    assert parse_detection(reply(score=150)).score_stage == "out_of_range"
    assert parse_detection(reply(score="high")).score_stage == "invalid_value"
    assert parse_detection(f'{STRICT} {{"quality_score": 70}}').score_stage == "conflict"


def test_no_answer_explains() -> None:
    parsed = parse_detection("I'm sorry, I can't help with that.")
    assert parsed == ParsedDetection(
        None, None, "no_answer", tuple(KEYS), parsed.reason, "no_answer"
    )
    assert parsed.reason


def test_pathological_reply_is_fast() -> None:
    parse_detection("{" * 5000 + "has_blur: " * 2000)
