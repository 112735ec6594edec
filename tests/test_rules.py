"""The rule-based answer-extraction cascade: a table of adversarial replies per question type."""

from __future__ import annotations

import pytest

from fiqabench.judges.rules import (
    RULES_VERSION,
    Parsed,
    parse_multi,
    parse_single,
    parse_tf,
    strip_think,
)

LEVELS = ["High", "Low", "Medium", "Very low"]
ISSUES = ["Blur", "Noise", "Overexposure", "Low contrast"]
LOOKS = ["Blurry", "Noisy", "Dark", "Overexposed"]
SHARPNESS = ["Sharp", "Blurry"]
WITH_ALL = ["Blur", "Noise", "All of the above"]
ARTICLES = ["A blurry face", "A sharp face", "A dark face"]
GRADES = ["Good", "Very good", "Not good"]
YES_NO = ["Yes", "No"]
FAILED = {"no_answer", "conflict"}
LONG_PROSE = (
    "The portrait is lit from the left, the skin tones look natural and the background is "
    "softly out of focus, which draws attention to the subject. A slight vignette frames it. "
) * 40

# (response, options, expected value, expected stage or None when any stage will do)
SINGLE_CASES = [
    # Strict letter forms: the whole reply is the letter.
    pytest.param("B", LEVELS, "B", "strict_letter", id="bare"),
    pytest.param("B.", LEVELS, "B", "strict_letter", id="period"),
    pytest.param("(B)", LEVELS, "B", "strict_letter", id="parens"),
    pytest.param("**B**", LEVELS, "B", "strict_letter", id="bold"),
    pytest.param("B)", LEVELS, "B", "strict_letter", id="close-paren"),
    pytest.param("[B]", LEVELS, "B", "strict_letter", id="brackets"),
    pytest.param("`C`", LEVELS, "C", "strict_letter", id="code-ticks"),
    pytest.param("Option B", LEVELS, "B", "strict_letter", id="option-word"),
    pytest.param("b", LEVELS, "B", "strict_letter", id="lowercase-whole-reply"),
    pytest.param("A", LEVELS, "A", "strict_letter", id="letter-a-alone"),
    pytest.param("B. Low", LEVELS, "B", "strict_letter", id="letter-period-text"),
    pytest.param("(B) Low", LEVELS, "B", "strict_letter", id="paren-letter-text"),
    pytest.param("B: Low", LEVELS, "B", "strict_letter", id="letter-colon-text"),
    pytest.param("D) Very low", LEVELS, "D", "strict_letter", id="letter-with-long-text"),
    pytest.param("Option (C): Medium", LEVELS, "C", "strict_letter", id="option-paren-text"),
    pytest.param("  \u00a0B\u200b \n", LEVELS, "B", "strict_letter", id="odd-whitespace"),
    pytest.param("\uff08\uff22\uff09", LEVELS, "B", "strict_letter", id="full-width"),
    pytest.param("<think>I think A</think> C", LEVELS, "C", "strict_letter", id="think-block"),
    pytest.param("The answer is A.</think>\nD", LEVELS, "D", "strict_letter", id="dangling-close"),
    # Explicit answer markers.
    pytest.param("Answer: B", LEVELS, "B", "answer_is", id="answer-colon"),
    pytest.param("The answer is B", LEVELS, "B", "answer_is", id="the-answer-is"),
    pytest.param("the correct option is (B)", LEVELS, "B", "answer_is", id="correct-option"),
    pytest.param("answer: b", LEVELS, "B", "answer_is", id="marker-lowercase"),
    pytest.param("ANSWER: C", LEVELS, "C", "answer_is", id="marker-uppercase"),
    pytest.param("Answer:\n\nD", LEVELS, "D", "answer_is", id="marker-newline"),
    pytest.param("B is correct", LEVELS, "B", "answer_is", id="postfix-correct"),
    pytest.param("C is the best choice.", LEVELS, "C", "answer_is", id="postfix-best"),
    pytest.param("I'd say D.", LEVELS, "D", "answer_is", id="id-say"),
    pytest.param("I would choose B because A is too high.", LEVELS, "B", "answer_is", id="choose"),
    pytest.param("The correct answer is: **C. Medium**", LEVELS, "C", "answer_is", id="bold-c"),
    pytest.param("The answer is B, not A", LEVELS, "B", "answer_is", id="answer-not-other"),
    pytest.param("The answer is A because it is sharp.", LEVELS, "A", "answer_is", id="a-because"),
    pytest.param("Answer: Low", LEVELS, "B", "answer_is", id="answer-option-text"),
    pytest.param("Answer: very low sharpness", LEVELS, "D", "answer_is", id="answer-long-text"),
    pytest.param("\\boxed{C}", LEVELS, "C", "answer_is", id="latex-boxed"),
    pytest.param("<answer>C</answer>", LEVELS, "C", "answer_is", id="answer-tag"),
    pytest.param("The answer is A. The final answer is C.", LEVELS, "C", "answer_is", id="final"),
    pytest.param(LONG_PROSE + "\nFinal Answer: (D)", LEVELS, "D", "answer_is", id="long-final"),
    pytest.param("Answer: I think B", LEVELS, "B", "tail_letter", id="pronoun-not-letter"),
    # JSON.
    pytest.param('{"answer": "B"}', LEVELS, "B", "json", id="json"),
    pytest.param('```json\n{"Answer": "c"}\n```', LEVELS, "C", "json", id="json-fenced"),
    pytest.param("{'choice': 'D'}", LEVELS, "D", "json", id="json-single-quotes"),
    pytest.param('{"result": {"option": "Low"}}', LEVELS, "B", "json", id="json-nested-text"),
    pytest.param(
        '{"reasoning": "The answer is C", "answer": "B"}', LEVELS, "B", "json", id="json-wins"
    ),
    pytest.param('{"answer": ["A", "B"]}', LEVELS, None, "conflict", id="json-two-letters"),
    # Lines, leading letters and letters near the end.
    pytest.param("B\nBecause the face is soft.", LEVELS, "B", "letter_line", id="letter-line"),
    pytest.param("A. The face looks crisp.", LEVELS, "A", "leading_letter", id="leading-a"),
    pytest.param("B because of motion blur", LEVELS, "B", "leading_letter", id="leading-b"),
    pytest.param("A seems too high. B fits best.", LEVELS, "B", "tail_letter", id="last-sentence"),
    pytest.param("I think it is C.", LEVELS, "C", "tail_letter", id="tail-c"),
    pytest.param("Therefore, option B.", LEVELS, "B", "tail_letter", id="tail-option-b"),
    pytest.param(LONG_PROSE + "\n\nSo: B", LEVELS, "B", "tail_letter", id="long-tail"),
    pytest.param("Not A but B", LEVELS, "B", "tail_letter", id="negated-letter"),
    pytest.param("B is not correct; it is C.", LEVELS, "C", "tail_letter", id="denied-letter"),
    # Option texts, negation and overlapping texts.
    pytest.param("Low", LEVELS, "B", "option_text", id="one-word-text"),
    pytest.param("very low", LEVELS, "D", "option_text", id="longest-text"),
    pytest.param("The image has very low sharpness", LEVELS, "D", "option_text", id="very-low"),
    pytest.param("The sharpness is low, not high", LEVELS, "B", "option_text", id="negated-high"),
    pytest.param("Low, definitely not high or medium.", LEVELS, "B", None, id="negated-list"),
    pytest.param("Neither high nor low, but medium.", LEVELS, "C", None, id="neither-nor"),
    pytest.param("The face is not blurry, it is sharp.", SHARPNESS, "A", None, id="not-blurry"),
    pytest.param("A blurry image", SHARPNESS, "B", "option_text", id="article-then-text"),
    pytest.param("A blurry face", ARTICLES, "A", "option_text", id="option-with-article"),
    pytest.param("All of the above", WITH_ALL, "C", "option_text", id="all-is-an-option"),
    # Failures: no answer.
    pytest.param("", LEVELS, None, "no_answer", id="empty"),
    pytest.param("I cannot tell.", LEVELS, None, "no_answer", id="cannot-tell"),
    pytest.param("It depends", LEVELS, None, "no_answer", id="it-depends"),
    pytest.param("I cannot tell whether it is B.", LEVELS, None, "no_answer", id="abstain-b"),
    pytest.param("A blurry image", LEVELS, None, "no_answer", id="article-a"),
    pytest.param("The answer is a blurry face", LEVELS, None, "no_answer", id="answer-is-a-x"),
    pytest.param("The face is not blurry.", LOOKS, None, "no_answer", id="not-blurry-only"),
    pytest.param("not very low", LEVELS, None, "no_answer", id="negated-longest"),
    pytest.param("Neither", LEVELS, None, "no_answer", id="neither"),
    pytest.param("Neither A nor B", LEVELS, None, "no_answer", id="neither-a-nor-b"),
    pytest.param("All of the above", LEVELS, None, "no_answer", id="all-of-the-above"),
    pytest.param("None of them.", LEVELS, None, "no_answer", id="none-of-them"),
    pytest.param("The answer is not B", LEVELS, None, "no_answer", id="answer-is-not"),
    pytest.param("E", LEVELS, None, "no_answer", id="out-of-range"),
    pytest.param("Answer: E", LEVELS, None, "no_answer", id="marked-out-of-range"),
    pytest.param("This is a high-quality photo.", LEVELS, None, "no_answer", id="hyphenated"),
    pytest.param("<think>The answer is B", LEVELS, None, "no_answer", id="unclosed-think"),
    pytest.param("2", LEVELS, None, "no_answer", id="number-not-guessed"),
    # Failures: conflicts.
    pytest.param("A or B", LEVELS, None, "conflict", id="a-or-b"),
    pytest.param("A and C", LEVELS, None, "conflict", id="two-letters"),
    pytest.param("B or maybe C", LEVELS, None, "conflict", id="hedged"),
    pytest.param("The answer is B or maybe C", LEVELS, None, "conflict", id="marked-hedged"),
    pytest.param(
        "The answer is A. Actually the answer is C", LEVELS, None, "conflict", id="two-answers"
    ),
    pytest.param("A or B is correct", LEVELS, None, "conflict", id="postfix-or"),
    pytest.param("B. High", LEVELS, None, "conflict", id="letter-text-disagree"),
    pytest.param("I. High", LEVELS, None, "conflict", id="bad-letter-with-text"),
    pytest.param(
        "The image has high noise but low sharpness.", LEVELS, None, "conflict", id="two-levels"
    ),
    # Echoed option lists are the prompt repeated, not a choice.
    pytest.param("A. High\nB. Low\nC. Medium\nD. Very low", LEVELS, None, "no_answer", id="echo"),
    pytest.param("(A) High (B) Low (C) Medium (D) Very low", LEVELS, None, None, id="inline-echo"),
    pytest.param(
        "A. High\nB. Low\nC. Medium\nD. Very low\nAnswer: B",
        LEVELS,
        "B",
        "answer_is",
        id="echo-then-answer",
    ),
    pytest.param(
        "A. too sharp for this\nB. matches\nC. too soft\nD. far too soft",
        LEVELS,
        None,
        None,
        id="walkthrough-not-last-marker",
    ),
    # More shapes seen in the wild.
    pytest.param("\u7b54\u6848\u662fB", LEVELS, "B", "tail_letter", id="cjk-prefix"),
    pytest.param("D) Low", LEVELS, None, "conflict", id="paren-letter-other-text"),
    pytest.param("(B) because (A) is too high", LEVELS, "B", "leading_letter", id="two-markers"),
    pytest.param("The correct answer is B. Low", LEVELS, "B", "answer_is", id="answer-b-low"),
    pytest.param("B\n\nC", LEVELS, None, "conflict", id="two-answer-lines"),
    pytest.param("Quality: Low.", LEVELS, "B", "option_text", id="label-text"),
    pytest.param("Rated as medium to low.", LEVELS, None, "conflict", id="range"),
    pytest.param("I'm not sure.", LEVELS, None, "no_answer", id="im-not-sure"),
    pytest.param("B (Low)", LEVELS, "B", "strict_letter", id="text-in-parens"),
    pytest.param("B (High)", LEVELS, None, "conflict", id="other-text-in-parens"),
    pytest.param("A (High)", LEVELS, "A", "strict_letter", id="a-with-own-text"),
    pytest.param("not good", GRADES, "C", "option_text", id="negation-inside-option"),
    pytest.param("very good", GRADES, "B", "option_text", id="prefix-option"),
    pytest.param("The image is not very good", GRADES, None, "no_answer", id="negated-prefix"),
    pytest.param("No", YES_NO, "B", "option_text", id="yes-no-options"),
]

MULTI_CASES = [
    pytest.param("A, C", ISSUES, ("A", "C"), "strict_letter", id="comma"),
    pytest.param("A and C", ISSUES, ("A", "C"), "strict_letter", id="and"),
    pytest.param("(A)(C)", ISSUES, ("A", "C"), "strict_letter", id="parens"),
    pytest.param("A C", ISSUES, ("A", "C"), "strict_letter", id="space"),
    pytest.param("C, A", ISSUES, ("A", "C"), "strict_letter", id="sorted"),
    pytest.param("A, A, C", ISSUES, ("A", "C"), "strict_letter", id="unique"),
    pytest.param("A/C", ISSUES, ("A", "C"), "strict_letter", id="slash"),
    pytest.param("AC", ISSUES, ("A", "C"), "strict_letter", id="run-together"),
    pytest.param("[A, C]", ISSUES, ("A", "C"), "strict_letter", id="unquoted-list"),
    pytest.param("a, c", ISSUES, ("A", "C"), "strict_letter", id="lowercase"),
    pytest.param("- A\n- C", ISSUES, ("A", "C"), "strict_letter", id="bullets"),
    pytest.param("- A. Blur\n- C. Overexposure", ISSUES, ("A", "C"), None, id="bullets-text"),
    pytest.param("Options A and C.", ISSUES, ("A", "C"), "strict_letter", id="options-word"),
    pytest.param("B", ISSUES, ("B",), "strict_letter", id="one-letter"),
    pytest.param('["A", "C"]', ISSUES, ("A", "C"), "json", id="json-list"),
    pytest.param('{"answer": ["A","C"]}', ISSUES, ("A", "C"), "json", id="json-key"),
    pytest.param('{"answer": "A, C"}', ISSUES, ("A", "C"), "json", id="json-string"),
    pytest.param('{"Choices": ["Blur", "Noise"]}', ISSUES, ("A", "B"), "json", id="json-text"),
    pytest.param("Answer: A, C", ISSUES, ("A", "C"), "answer_is", id="answer"),
    pytest.param("The answers are A and C.", ISSUES, ("A", "C"), "answer_is", id="answers-are"),
    pytest.param("A and B are correct", ISSUES, ("A", "B"), "answer_is", id="postfix"),
    pytest.param(
        "The correct options are:\n- A: blur\n- D: contrast",
        ISSUES,
        ("A", "D"),
        "answer_is",
        id="marker-bullets",
    ),
    pytest.param("Answer: Blur and Low contrast", ISSUES, ("A", "D"), "answer_is", id="texts"),
    pytest.param(
        "A, C\nBecause blur and overexposure show.", ISSUES, ("A", "C"), "letter_line", id="line"
    ),
    pytest.param("Both A and D apply.", ISSUES, ("A", "D"), "tail_letter", id="tail"),
    pytest.param("Blur and noise", ISSUES, ("A", "B"), "option_text", id="text-list"),
    pytest.param(
        "Both blur and noise are present, but there is no overexposure.",
        ISSUES,
        ("A", "B"),
        "option_text",
        id="text-negated",
    ),
    pytest.param("Blur, but no noise", ISSUES, ("A",), "option_text", id="no-noise"),
    pytest.param("A or C", ISSUES, None, "conflict", id="or"),
    pytest.param("A, C, or D", ISSUES, None, "conflict", id="list-or"),
    pytest.param("A, E", ISSUES, None, "no_answer", id="out-of-range"),
    pytest.param("None", ISSUES, None, "no_answer", id="none"),
    pytest.param("All of the above", ISSUES, None, "no_answer", id="all-of-the-above"),
    pytest.param("The image is not blurry and has no noise.", ISSUES, None, "no_answer", id="neg"),
    pytest.param("BAD", ISSUES, None, "no_answer", id="word-of-letters"),
    pytest.param("I cannot tell.", ISSUES, None, "no_answer", id="cannot-tell"),
    pytest.param(
        "A. Blur\nB. Noise\nC. Overexposure\nD. Low contrast",
        ISSUES,
        None,
        "no_answer",
        id="option-echo",
    ),
    pytest.param(
        "(A) Blur (B) Noise (C) Overexposure (D) Low contrast",
        ISSUES,
        None,
        "no_answer",
        id="inline-echo",
    ),
    pytest.param("A C D", ISSUES, ("A", "C", "D"), "strict_letter", id="spaces"),
    pytest.param("1. A\n2. C", ISSUES, ("A", "C"), "strict_letter", id="numbered"),
    pytest.param("Blur: yes\nNoise: no", ISSUES, ("A",), "option_text", id="label-no"),
    pytest.param("A-C", ISSUES, None, "no_answer", id="range-not-guessed"),
    pytest.param(
        "A (Blur), C (Overexposure)", ISSUES, ("A", "C"), "strict_letter", id="parens-text"
    ),
    pytest.param("A, C (blur and overexposure)", ISSUES, ("A", "C"), None, id="list-then-note"),
]

TF_CASES = [
    pytest.param("True", True, "strict_word", id="true"),
    pytest.param("false", False, "strict_word", id="false"),
    pytest.param("Yes", True, "strict_word", id="yes"),
    pytest.param("No.", False, "strict_word", id="no"),
    pytest.param("**TRUE**", True, "strict_word", id="bold"),
    pytest.param("Correct", True, "strict_word", id="correct"),
    pytest.param("Incorrect", False, "strict_word", id="incorrect"),
    pytest.param("<think>yes</think>No", False, "strict_word", id="think"),
    pytest.param('{"answer": true}', True, "json", id="json-bool"),
    pytest.param('{"answer": "no"}', False, "json", id="json-word"),
    pytest.param("Answer: True", True, "answer_is", id="answer"),
    pytest.param("The statement is false.", False, "answer_is", id="statement-false"),
    pytest.param("The statement is not true.", False, "answer_is", id="statement-not-true"),
    pytest.param("The statement isn't true.", False, "answer_is", id="statement-isnt"),
    pytest.param("The claim is incorrect.", False, "answer_is", id="claim"),
    pytest.param("I'd say yes.", True, "answer_is", id="say-yes"),
    pytest.param("The answer is no.", False, "answer_is", id="answer-no"),
    pytest.param("\\boxed{False}", False, "answer_is", id="boxed"),
    pytest.param("Yes, the face is blurry.", True, "leading_word", id="leading-yes"),
    pytest.param("No, the face is sharp.", False, "leading_word", id="leading-no"),
    pytest.param("FALSE - only the background is blurry", False, "leading_word", id="leading"),
    pytest.param("not true", False, "tf_word", id="not-true"),
    pytest.param("It is not true that the face is sharp.", False, "tf_word", id="not-true-that"),
    pytest.param("That is not correct", False, "tf_word", id="not-correct"),
    pytest.param("There is no blur, so this is true.", True, "tf_word", id="no-blur-true"),
    pytest.param("I think it's false", False, "tf_word", id="think-false"),
    pytest.param("Not false.", True, "tf_word", id="not-false"),
    pytest.param("yes and no", None, "conflict", id="yes-and-no"),
    pytest.param("true or false", None, "conflict", id="true-or-false"),
    pytest.param("partially true, partially false", None, "conflict", id="partial"),
    pytest.param("I cannot tell.", None, "no_answer", id="cannot-tell"),
    pytest.param("", None, "no_answer", id="empty"),
    pytest.param("It depends.", None, "no_answer", id="depends"),
    pytest.param("No blur is visible.", None, "no_answer", id="no-as-determiner"),
    pytest.param("The answer is no longer clear", None, "no_answer", id="no-longer"),
    pytest.param("Correct, the face is blurry.", True, "leading_word", id="leading-correct"),
    pytest.param("Yes.\nNo.", None, "conflict", id="yes-then-no"),
    pytest.param("No, that's true", None, "conflict", id="no-but-true"),
]


@pytest.mark.parametrize(("response", "options", "value", "stage"), SINGLE_CASES)
def test_parse_single(response: str, options: list[str], value: str | None, stage: str | None):
    parsed = parse_single(response, options)
    assert parsed.value == value, parsed
    if stage is not None:
        assert parsed.stage == stage, parsed


@pytest.mark.parametrize(("response", "options", "value", "stage"), MULTI_CASES)
def test_parse_multi(
    response: str, options: list[str], value: tuple[str, ...] | None, stage: str | None
):
    parsed = parse_multi(response, options)
    assert parsed.value == value, parsed
    if stage is not None:
        assert parsed.stage == stage, parsed


@pytest.mark.parametrize(("response", "value", "stage"), TF_CASES)
def test_parse_tf(response: str, value: bool | None, stage: str):
    parsed = parse_tf(response)
    assert parsed.value is value, parsed
    assert parsed.stage == stage, parsed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>I think A</think> C", "C"),
        ("<THINK>x</THINK>\nC", "C"),
        ("reasoning about A </think> B", "B"),
        ("<think>never finished, probably A", ""),
        ("B <think>second thoughts", "B"),
        ("<think>a<think>b</think>c</think> D", "D"),
        ("<think>1</think>A<think>2</think>", "A"),
        ("plain answer", "plain answer"),
    ],
)
def test_strip_think(text: str, expected: str):
    assert strip_think(text) == expected


def test_parsed_ok_and_version():
    assert RULES_VERSION == "rules-v1"
    assert Parsed("B", "strict_letter").ok
    assert Parsed(False, "strict_word").ok  # False is an answer, not a failure
    assert not Parsed(None, "no_answer").ok


def test_failures_never_carry_a_value_and_answers_are_valid():
    for parse, cases in ((parse_single, SINGLE_CASES), (parse_multi, MULTI_CASES)):
        for case in cases:
            response, options, *_ = case.values
            assert isinstance(response, str) and isinstance(options, list)
            parsed = parse(response, options)
            assert parsed.ok == (parsed.stage not in FAILED), (response, parsed)
            if parsed.ok:
                letters = parsed.value if isinstance(parsed.value, tuple) else (parsed.value,)
                valid = [chr(ord("A") + i) for i in range(len(options))]
                assert all(letter in valid for letter in letters), (response, parsed)
                assert list(letters) == sorted(set(letters))


# A guard against catastrophic regex backtracking, not a timing measurement: the limit is far
# above the normal cost. Long junk must still come back as a parse result.
@pytest.mark.timeout(120)
def test_pathological_inputs_still_parse():
    junk = ["[" * 20000, "{" * 20000, "<think>" * 10000, "not " * 30000 + "low", "A " * 30000]
    for text in junk:
        for parsed in (parse_single(text, LEVELS), parse_multi(text, ISSUES), parse_tf(text)):
            assert parsed.ok == (parsed.value is not None)
