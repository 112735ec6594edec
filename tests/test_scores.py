"""Scalar face-quality answer parsing: tables of adversarial replies for the three parsers."""

from __future__ import annotations

import pytest

from fiqabench.benchmark.consistency import ATTRIBUTE_LEVELS
from fiqabench.judges.scores import (
    ATTRIBUTE_ENUMS,
    ATTRIBUTE_SYNONYMS,
    LEVEL_WORDS,
    SCORES_VERSION,
    ParsedScore,
    map_attribute,
    parse_classification,
    parse_level,
    parse_score,
    severity,
)

QS = "Quality Score"
US = "Utility Score"
RS = "Reliability Score"

# (response, key, expected score, expected stage)
SCORE_CASES = [
    # JSON forms, most explicit first.
    pytest.param('{"Quality Score": 72}', QS, 72.0, "strict_json", id="strict"),
    pytest.param('  {"Quality Score": 72.5}\n', QS, 72.5, "strict_json", id="strict-float"),
    pytest.param('```json\n{"Quality Score": 72}\n```', QS, 72.0, "fenced_json", id="fenced"),
    pytest.param('```\n{"Quality Score": 72}\n```', QS, 72.0, "fenced_json", id="fenced-no-lang"),
    pytest.param(
        'Sure! Here is the JSON: {"Quality Score": 72} Hope it helps.',
        QS,
        72.0,
        "first_object",
        id="prose-around",
    ),
    pytest.param("{'Quality Score': 72}", QS, 72.0, "lenient_json", id="single-quotes"),
    pytest.param('{"Quality Score": 72,}', QS, 72.0, "lenient_json", id="trailing-comma"),
    pytest.param(
        "Result:\n```json\n{'Quality Score': 64,\n}\n```",
        QS,
        64.0,
        "lenient_json",
        id="fenced-lenient",
    ),
    pytest.param("{\u201cQuality Score\u201d: 72}", QS, 72.0, "strict_json", id="curly-quotes"),
    pytest.param('{"quality_score": 72}', QS, 72.0, "strict_json", id="snake-key"),
    pytest.param('{"qualityScore": 72}', QS, 72.0, "strict_json", id="camel-key"),
    pytest.param('{"QUALITY SCORE": "72"}', QS, 72.0, "strict_json", id="upper-key-string-value"),
    pytest.param('{"Quality Score": "72/100"}', QS, 72.0, "strict_json", id="fraction-string"),
    pytest.param('{"Quality Score": "72%"}', QS, 72.0, "strict_json", id="percent-string"),
    pytest.param('{"result": {"Quality Score": 80}}', QS, 80.0, "strict_json", id="nested"),
    pytest.param('[{"Quality Score": 80}]', QS, 80.0, "strict_json", id="array"),
    pytest.param('{"Utility Score": 64}', US, 64.0, "strict_json", id="utility"),
    pytest.param('{"reliability_score": 91}', RS, 91.0, "strict_json", id="reliability"),
    pytest.param(
        '{"Quality Score": 80, "Utility Score": 60}',
        US,
        60.0,
        "strict_json",
        id="other-key-ignored",
    ),
    pytest.param('{"note": "x"} then {"Quality Score": 55}', QS, 55.0, "first_object", id="second"),
    pytest.param(
        'Echo: {"Quality Score": <0-100 number>}\n{"Quality Score": 70}',
        QS,
        70.0,
        "first_object",
        id="prompt-echo-then-answer",
    ),
    pytest.param(
        '{"Quality Score": 72}\n{"Quality Score": 72}', QS, 72.0, "first_object", id="same"
    ),
    # Tolerant prose forms.
    pytest.param('{"Quality Score": 72', QS, 72.0, "key_value", id="truncated-json"),
    pytest.param("{Quality Score: 72}", QS, 72.0, "key_value", id="unquoted-key"),
    pytest.param("Quality Score: 72/100", QS, 72.0, "key_value", id="key-fraction"),
    pytest.param("Quality Score = 72", QS, 72.0, "key_value", id="key-equals"),
    pytest.param('"Quality Score": "72"', QS, 72.0, "key_value", id="key-quoted-no-braces"),
    pytest.param("**Quality Score:** 85", QS, 85.0, "key_value", id="markdown-bold"),
    pytest.param("quality_score is 72%", QS, 72.0, "key_value", id="key-is-percent"),
    pytest.param("Quality Score (0-100): 66", QS, 66.0, "key_value", id="key-with-scale-note"),
    pytest.param("The quality score is 72 out of 100.", QS, 72.0, "key_value", id="out-of"),
    pytest.param("72", QS, 72.0, "bare_number", id="bare"),
    pytest.param("72/100", QS, 72.0, "bare_number", id="bare-fraction"),
    pytest.param("72%", QS, 72.0, "bare_number", id="bare-percent"),
    pytest.param("Score: 72.", QS, 72.0, "bare_number", id="bare-score-label"),
    pytest.param("I would rate this face image 72/100.", QS, 72.0, "fraction", id="prose-fraction"),
    pytest.param("4/5", "Score", 4.0, "bare_number", id="custom-scale"),
    # Not rescaled: 0-1 / 0-10 values stay as written; an explicit other scale fails.
    pytest.param('{"Quality Score": 0.72}', QS, 0.72, "strict_json", id="unit-scale-kept"),
    pytest.param('{"Quality Score": 7}', QS, 7.0, "strict_json", id="ten-scale-kept"),
    pytest.param("Quality Score: 7/10", QS, None, "scale_mismatch", id="explicit-ten-scale"),
    # Think blocks are reasoning, not answers.
    pytest.param(
        '<think>Maybe 40/100? {"Quality Score": 40}</think>{"Quality Score": 72}',
        QS,
        72.0,
        "strict_json",
        id="think-block",
    ),
    pytest.param("<think>It looks like 72/100", QS, None, "no_answer", id="unclosed-think"),
    # Failures.
    pytest.param('{"Quality Score": 150}', QS, None, "out_of_range", id="too-high"),
    pytest.param('{"Quality Score": -3}', QS, None, "out_of_range", id="negative"),
    pytest.param("Quality Score: 101", QS, None, "out_of_range", id="prose-too-high"),
    pytest.param('{"Quality Score": "high"}', QS, None, "invalid_value", id="word-value"),
    pytest.param('{"Quality Score": true}', QS, None, "invalid_value", id="boolean"),
    pytest.param('{"Quality Score": null}', QS, None, "invalid_value", id="null"),
    pytest.param('{"Quality Score": NaN}', QS, None, "invalid_value", id="nan"),
    pytest.param('{"Quality Score": Infinity}', QS, None, "invalid_value", id="infinity"),
    pytest.param('{"Quality Score": 1e999}', QS, None, "invalid_value", id="overflow-inf"),
    pytest.param('{"Quality Score": [72]}', QS, None, "invalid_value", id="list-value"),
    pytest.param('{"Quality Score": "70-80"}', QS, None, "invalid_value", id="range-string"),
    pytest.param("Quality Score: 70-80", QS, None, "no_answer", id="prose-range"),
    pytest.param('{"score": 72}', QS, None, "missing_key", id="wrong-key"),
    pytest.param('{"Quality Score": 72}', US, None, "missing_key", id="quality-for-utility"),
    pytest.param(
        '{"Quality Score": 72} {"Quality Score": 60}', QS, None, "conflict", id="two-objects"
    ),
    pytest.param(
        '{"Quality Score": 72, "quality_score": 80}', QS, None, "conflict", id="duplicate-key"
    ),
    pytest.param(
        '{"Quality Score": 72, "Quality Score": 80}', QS, None, "conflict", id="duplicate-raw-key"
    ),
    pytest.param(
        '```json\n{"Quality Score": 72}\n```\nQuality Score: 80',
        QS,
        None,
        "conflict",
        id="json-vs-prose",
    ),
    pytest.param("Quality Score: 72. Quality Score: 65.", QS, None, "conflict", id="prose-twice"),
    pytest.param("Between 60/100 and 70/100.", QS, None, "conflict", id="two-fractions"),
    pytest.param("", QS, None, "no_answer", id="empty"),
    pytest.param("   \n ", QS, None, "no_answer", id="blank"),
    pytest.param("I cannot assess this image.", QS, None, "no_answer", id="refusal"),
    pytest.param(
        "I'm sorry, I can't evaluate faces. Typical scores are 50/100.",
        QS,
        None,
        "no_answer",
        id="refusal-with-fraction",
    ),
    pytest.param("The face is 512 pixels wide and 80% visible.", QS, None, "no_answer", id="prose"),
    pytest.param("About 1/2 of the face is in shadow.", QS, None, "no_answer", id="half"),
]


@pytest.mark.parametrize(("response", "key", "score", "stage"), SCORE_CASES)
def test_parse_score(response: str, key: str, score: float | None, stage: str) -> None:
    parsed = parse_score(response, key, high=5 if key == "Score" else 100)
    assert (parsed.score, parsed.stage) == (score, stage)
    assert parsed.ok is (score is not None)
    assert parsed.attributes == {} and parsed.attribute_failures == {}


FULL = (
    '{"Quality Score": 72, "Sharpness": "Clear", "Resolution": "High", '
    '"Lighting": "Balanced", "Compression": "None"}'
)
ALL_MILD = {
    "Sharpness": "Clear",
    "Resolution": "High",
    "Lighting": "Balanced",
    "Compression": "None",
}

# (response, expected score, stage, attributes, attribute_failures)
CLASSIFICATION_CASES = [
    pytest.param(FULL, 72.0, "strict_json", ALL_MILD, {}, id="exact"),
    pytest.param(
        '{"quality_score": 40, "sharpness": "SLIGHTLY_BLURRED", "resolution": "very low", '
        '"lighting": "Moderately-Bright", "compression": "severe"}',
        40.0,
        "strict_json",
        {
            "Sharpness": "Slightly Blurred",
            "Resolution": "Very Low",
            "Lighting": "Moderately Bright",
            "Compression": "Severe",
        },
        {},
        id="odd-casing",
    ),
    pytest.param(
        '{"Quality Score": 50, "Sharpness": "sharp", "Resolution": "low resolution", '
        '"Lighting": "slightly underexposed", "Compression": "no compression"}',
        50.0,
        "strict_json",
        {
            "Sharpness": "Clear",
            "Resolution": "Low",
            "Lighting": "Slightly Dark",
            "Compression": "None",
        },
        {},
        id="synonyms",
    ),
    pytest.param(
        '{"Quality Score": 60, "Resolution": "compression", '
        '"Compression": "Compression artifacts"}',
        60.0,
        "strict_json",
        {},
        {"Resolution": "compression", "Compression": "Compression artifacts"},
        id="compression-res-trap",
    ),
    pytest.param(
        '{"Quality Score": 60, "Resolution": "Low"}',
        60.0,
        "strict_json",
        {"Resolution": "Low"},
        {},
        id="low-is-not-very-low",
    ),
    pytest.param(
        '{"Quality Score": 60, "Resolution": "Very Low"}',
        60.0,
        "strict_json",
        {"Resolution": "Very Low"},
        {},
        id="very-low-is-not-low",
    ),
    pytest.param(
        '{"Quality Score": 60, "Resolution": "Lowish", "Compression": "Low"}',
        60.0,
        "strict_json",
        {},
        {"Resolution": "Lowish", "Compression": "Low"},
        id="no-substring-no-cross-attribute",
    ),
    pytest.param(
        '{"Quality Score": 30, "Sharpness": "blurry", "Lighting": "dark"}',
        30.0,
        "strict_json",
        {},
        {"Sharpness": "blurry", "Lighting": "dark"},
        id="ambiguous-degree",
    ),
    pytest.param(
        "{'Quality Score': 45, 'Sharpness': 'Strongly Blurred', 'Compression': None,}",
        45.0,
        "lenient_json",
        {"Sharpness": "Strongly Blurred", "Compression": "None"},
        {},
        id="python-none-is-the-enum",
    ),
    pytest.param(
        '{"Quality Score": 45, "Compression": null, "Lighting": 3}',
        45.0,
        "strict_json",
        {},
        {"Compression": "null", "Lighting": "3"},
        id="non-string-attributes",
    ),
    pytest.param(
        "Quality Score: 55\n- **Sharpness**: Slightly blurry (motion)\nResolution: Medium\n"
        "Lighting: Very Dark. The face is underexposed.\nCompression: Minimal",
        55.0,
        "key_value",
        {
            "Sharpness": "Slightly Blurred",
            "Resolution": "Medium",
            "Lighting": "Very Dark",
            "Compression": "Minimal",
        },
        {},
        id="prose-attributes",
    ),
    pytest.param(
        '{"Quality Score": 55, "Resolution": "Low"}\nResolution: Very Low',
        55.0,
        "first_object",
        {},
        {"Resolution": "Low | Very Low"},
        id="attribute-conflict",
    ),
    pytest.param(
        '{"Sharpness": "Clear", "Resolution": "High"}',
        None,
        "missing_key",
        {"Sharpness": "Clear", "Resolution": "High"},
        {},
        id="attributes-without-score",
    ),
    pytest.param(
        '{"Quality Score": 150, "Sharpness": "Clear"}',
        None,
        "out_of_range",
        {"Sharpness": "Clear"},
        {},
        id="score-out-of-range",
    ),
    pytest.param(
        f"<think>Sharpness: Strongly Blurred</think>\n```json\n{FULL}\n```",
        72.0,
        "fenced_json",
        ALL_MILD,
        {},
        id="think-and-fence",
    ),
    pytest.param("I cannot assess this image.", None, "no_answer", {}, {}, id="refusal"),
]


@pytest.mark.parametrize(
    ("response", "score", "stage", "attributes", "failures"), CLASSIFICATION_CASES
)
def test_parse_classification(
    response: str,
    score: float | None,
    stage: str,
    attributes: dict[str, str],
    failures: dict[str, str],
) -> None:
    parsed = parse_classification(response)
    assert (parsed.score, parsed.stage) == (score, stage)
    assert parsed.attributes == attributes
    assert parsed.attribute_failures == failures


# (response, k, expected level, stage)
LEVEL_CASES = [
    pytest.param("5", 7, 5.0, "level_digit", id="digit"),
    pytest.param("5.", 7, 5.0, "level_digit", id="digit-period"),
    pytest.param("**5**", 7, 5.0, "level_digit", id="bold"),
    pytest.param("5 (Good)", 7, 5.0, "level_digit", id="digit-word"),
    pytest.param("5 - good", 7, 5.0, "level_digit", id="digit-dash-word"),
    pytest.param("Good (5)", 7, 5.0, "level_digit", id="word-digit"),
    pytest.param("Level: 5", 7, 5.0, "level_digit", id="level-colon"),
    pytest.param("Level 5", 7, 5.0, "level_digit", id="level-space"),
    pytest.param("Rating: 5/7", 7, 5.0, "level_digit", id="over-k"),
    pytest.param("Good", 7, 5.0, "level_word", id="word"),
    pytest.param("Level: Good", 7, 5.0, "level_word", id="level-word"),
    pytest.param("Very Bad", 7, 1.0, "level_word", id="very-bad"),
    pytest.param("bad.", 7, 3.0, "level_word", id="bad-not-very-bad"),
    pytest.param("PERFECT", 7, 7.0, "level_word", id="upper"),
    pytest.param('{"level": 6}', 7, 6.0, "level_json", id="json"),
    pytest.param('{"Quality Level": "6 (Excellent)"}', 7, 6.0, "level_json", id="json-string"),
    pytest.param("<think>Maybe 3 (Bad).</think>4", 7, 4.0, "level_digit", id="think"),
    pytest.param("I'd say 5 (Good).", 7, 5.0, "level_marker", id="prose-pair"),
    pytest.param("Considering blur, I choose level 2.", 7, 2.0, "level_marker", id="prose-level"),
    pytest.param("3", 5, 3.0, "level_digit", id="k5-digit"),
    pytest.param("5 (Great)", 7, 5.0, "level_digit", id="unknown-word-is-decoration"),
    pytest.param("8", 7, None, "out_of_range", id="above-k"),
    pytest.param("0", 7, None, "out_of_range", id="zero"),
    pytest.param("6", 5, None, "out_of_range", id="k5-above"),
    pytest.param("Level 9 (Perfect)", 7, None, "out_of_range", id="out-of-range-with-word"),
    pytest.param("5/10", 7, None, "scale_mismatch", id="wrong-denominator"),
    pytest.param("5 (Poor)", 7, None, "conflict", id="digit-word-conflict"),
    pytest.param("Poor (5)", 7, None, "conflict", id="word-digit-conflict"),
    pytest.param("Level 5, or maybe level 4.", 7, None, "conflict", id="two-levels"),
    pytest.param('{"level": 5} {"level": 3}', 7, None, "conflict", id="json-conflict"),
    pytest.param('{"level": true}', 7, None, "invalid_value", id="json-boolean"),
    pytest.param("Great", 7, None, "no_answer", id="not-a-level-word"),
    pytest.param("The image quality is good.", 7, None, "no_answer", id="word-in-prose"),
    pytest.param("I see 2 (two) faces.", 7, None, "no_answer", id="pair-without-level-word"),
    pytest.param("I cannot assess this image.", 7, None, "no_answer", id="refusal"),
    pytest.param("", 7, None, "no_answer", id="empty"),
    pytest.param("Good", 5, None, "no_answer", id="no-words-for-k5"),
]


@pytest.mark.parametrize(("response", "k", "level", "stage"), LEVEL_CASES)
def test_parse_level(response: str, k: int, level: float | None, stage: str) -> None:
    parsed = parse_level(response, k)
    assert (parsed.score, parsed.stage) == (level, stage)


def test_parse_level_custom_words() -> None:
    words = ["Bad", "Poor", "Fair", "Good", "Excellent"]
    assert parse_level("Excellent", 5, words) == ParsedScore(5.0, "level_word")
    assert parse_level("4 (Fair)", 5, words).stage == "conflict"
    with pytest.raises(ValueError, match="level words"):
        parse_level("3", 5, ["Bad", "Good"])


def test_default_level_words_follow_llm_iqa() -> None:
    assert [parse_level(word).score for word in LEVEL_WORDS] == [1, 2, 3, 4, 5, 6, 7]


def test_enums_come_from_the_consistency_module() -> None:
    assert ATTRIBUTE_ENUMS is ATTRIBUTE_LEVELS
    assert ATTRIBUTE_ENUMS["Lighting"][0] == "Balanced"


def test_synonyms_map_to_exact_enums() -> None:
    for attribute, table in ATTRIBUTE_SYNONYMS.items():
        assert set(table.values()) <= set(ATTRIBUTE_ENUMS[attribute]), attribute
        for level in ATTRIBUTE_ENUMS[attribute]:
            assert map_attribute(attribute, level.upper()) == level


@pytest.mark.parametrize(
    ("attribute", "level", "expected"),
    [
        ("Sharpness", "Clear", 0),
        ("Sharpness", "Strongly Blurred", 3),
        ("Resolution", "Very Low", 3),
        ("Compression", "Minimal", 1),
        ("Lighting", "Balanced", 0),
        ("Lighting", "Slightly Dark", 1),
        ("Lighting", "Slightly Bright", 1),
        ("Lighting", "Moderately Bright", 2),
        ("Lighting", "Very Dark", 3),
    ],
)
def test_severity(attribute: str, level: str, expected: int) -> None:
    assert severity(attribute, level) == expected


def test_severity_rejects_unknown_levels() -> None:
    with pytest.raises(ValueError, match="unknown"):
        severity("Resolution", "low")
    with pytest.raises(ValueError, match="unknown"):
        severity("Noise", "None")


def test_version_and_hashable_result() -> None:
    assert SCORES_VERSION == "scores-v1"
    assert len({parse_score("72"), parse_score(" 72 ")}) == 1


# Keyword heads followed by long runs that almost continue them: regexes with adjacent optional
# parts (or an unbounded fence tag) backtrack polynomially on such replies.
HEADS = ["Quality Score", "Quality Score (x)", "Score:", "Level", "5 (", "Good -", "Sharpness:"]
HEADS += ["72 /", '{"Quality Score": "', "```", "<think>", "I cannot", "'", "["]
FILLS = [" ", " -", "a ", "1", "{", "'", '"']


# A guard against catastrophic regex backtracking (once 53 s for one reply), not a timing
# measurement: the limit is orders of magnitude above the normal cost.
@pytest.mark.timeout(120)
@pytest.mark.parametrize("head", HEADS)
def test_pathological_replies_are_parse_failures(head: str) -> None:
    for fill in FILLS:
        response = head + fill * (20_000 // len(fill)) + "#"
        for parse in (parse_score, parse_classification, parse_level):
            assert not parse(response).ok


def test_deeply_nested_json_is_not_a_crash() -> None:
    deep = '{"a":' * 900 + "1" + "}" * 900
    assert parse_score(deep).stage == "missing_key"
    assert parse_score("[" * 5000).stage == "no_answer"
