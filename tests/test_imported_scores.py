from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from fiqabench.benchmark.schema import (
    AnswerSpace,
    GenerationConfig,
    ImagePart,
    Message,
    Request,
    TextPart,
)
from fiqabench.errors import UserError
from fiqabench.runners.base import ModelIdentity
from fiqabench.runners.catalog import build_runner
from fiqabench.runners.imported_scores import ImportedScoresRunner, read_scores


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def score_request(image: str, sample_id: str = "s1") -> Request:
    content = (ImagePart(path=image, sha256="0" * 64), TextPart(text="Rate the quality."))
    return Request(
        key=f"key-{sample_id}",
        sample_id=sample_id,
        task="test-fiqa",
        messages=(Message(role="user", content=content),),
        generation=GenerationConfig(),
        answer_space=AnswerSpace(type="score", key="Quality Score"),
    )


def runner_for(csv_path: Path) -> ImportedScoresRunner:
    identity = ModelIdentity(alias="imported", runner="scores", model_id=str(csv_path))
    return ImportedScoresRunner(identity, csv_path)


def answers(runner: ImportedScoresRunner, *images: str) -> list[tuple[float | None, str | None]]:
    requests = [score_request(image, f"s{i}") for i, image in enumerate(images)]
    return [(response.score, response.error) for _, response in runner.generate(requests)]


# Reading the file -----------------------------------------------------------------------------


def test_reads_scores_on_their_own_scale(tmp_path: Path) -> None:
    csv_path = write_csv(
        tmp_path / "s.csv",
        '\ufeffImage, Score\n"a, b.jpg",-3.5\n\n./dir\\c.png, 1e3 \nd.jpg,0\n',
    )
    assert read_scores(csv_path).by_path == {"a, b.jpg": -3.5, "dir/c.png": 1000.0, "d.jpg": 0.0}


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("a.jpg,3\n", 1, "header 'image,score'"),
        ("image,quality\na.jpg,3\n", 1, "header 'image,score'"),
        ("image,score\na.jpg,3\nb.jpg,high\n", 3, "score 'high' is not a number"),
        ("image,score\na.jpg,nan\n", 2, "not a finite number"),
        ("image,score\na.jpg,\n", 2, "score '' is not a number"),
        ("image,score\na.jpg,3,4\n", 2, "expected 2 fields"),
        ("image,score\na.jpg\n", 2, "expected 2 fields"),
        ("image,score\n ,3\n", 2, "image field is empty"),
        (
            "image,score\nx/a.jpg,1\nb.jpg,2\n./x/a.jpg,3\n",
            4,
            "'x/a.jpg' is listed twice (also on line 2)",
        ),
    ],
)
def test_bad_rows_name_the_file_and_line(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    csv_path = write_csv(tmp_path / "bad.csv", text)
    with pytest.raises(UserError) as caught:
        read_scores(csv_path)
    assert str(caught.value).startswith(f"{csv_path}:{line}: ")
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        (lambda path: None, "scores file not found"),
        (lambda path: path.write_text("", encoding="utf-8"), "header 'image,score'"),
        (lambda path: path.write_text("image,score\n\n", encoding="utf-8"), "no scores"),
        (lambda path: path.write_bytes(b"image,score\n\xff\xfe,1\n"), "not UTF-8"),
        (lambda path: path.mkdir(), "is a directory"),
    ],
)
def test_unusable_files_are_user_errors(
    tmp_path: Path, setup: Callable[[Path], object], problem: str
) -> None:
    csv_path = tmp_path / "scores.csv"
    setup(csv_path)
    with pytest.raises(UserError, match=problem) as caught:
        read_scores(csv_path)
    assert str(csv_path) in str(caught.value)


# Matching images -------------------------------------------------------------------------------


def test_matches_by_longest_path_suffix_then_file_name(tmp_path: Path) -> None:
    csv_path = write_csv(
        tmp_path / "s.csv",
        "image,score\n"
        "subject1/001.jpg,1\nsubject2/001.jpg,2\n"
        "face.jpg,3\na/face.jpg,4\n"
        "images/only.png,5\nobama.jpg,6\n",
    )
    found = answers(
        runner_for(csv_path),
        "/data/subject2/001.jpg",  # the directory decides between the two 001.jpg
        "/x/a/face.jpg",  # the longer entry wins
        "/x/b/face.jpg",  # the bare file name matches any folder
        "/cache/1f3e/only.png",  # no suffix matches: the one entry with that file name
        "relative/dir/obama.jpg",
    )
    assert found == [(2.0, None), (4.0, None), (3.0, None), (5.0, None), (6.0, None)]


def test_ambiguous_and_missing_images_are_errors_not_guesses(tmp_path: Path) -> None:
    csv_path = write_csv(
        tmp_path / "s.csv", "image,score\nsubject1/001.jpg,1\nsubject2/001.jpg,2\nobama.jpg,3\n"
    )
    (ambiguous, missing, partial) = answers(
        runner_for(csv_path), "/data/subject3/001.jpg", "/data/biden.jpg", "/data/ama.jpg"
    )
    assert ambiguous[0] is None
    assert (
        ambiguous[1]
        == "'001.jpg' is ambiguous in the scores file: subject1/001.jpg, subject2/001.jpg"
    )
    assert missing == (None, "no imported score for biden.jpg")
    assert partial == (None, "no imported score for ama.jpg")  # names match whole, not as a tail


def test_response_text_is_the_score(tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "s.csv", "image,score\na.jpg,0.25\nb.jpg,-7\n")
    responses = [r for _, r in runner_for(csv_path).generate([score_request("/d/a.jpg")])]
    assert responses[0].ok and responses[0].text == "0.25" and responses[0].score == 0.25
    no_image = score_request("a.jpg").model_copy(
        update={"messages": (Message(role="user", content=(TextPart(text="Rate it."),)),)}
    )
    ((_, response),) = runner_for(csv_path).generate([no_image])
    assert response.error == "the request has no image to look up"


# The ad-hoc model form ----------------------------------------------------------------------------


def test_adhoc_model_names_the_file_and_its_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    csv_path = write_csv(tmp_path / "mine.csv", "image,score\na.jpg,1\n")
    runner = build_runner("scores:mine.csv")
    assert isinstance(runner, ImportedScoresRunner)
    identity = runner.identity
    assert identity.alias == "scores:mine.csv" and identity.runner == "scores"
    assert identity.model_id == str(csv_path.resolve())
    assert identity.revision == hashlib.sha256(csv_path.read_bytes()).hexdigest()
    first = [r.score for _, r in runner.generate([score_request("/d/a.jpg")])]

    write_csv(csv_path, "image,score\na.jpg,2\n")
    changed = build_runner("scores:mine.csv")
    assert changed.identity.revision != identity.revision
    assert [r.score for _, r in changed.generate([score_request("/d/a.jpg")])] != first


@pytest.mark.parametrize(
    ("model", "problem"), [("scores:", "names no CSV"), ("scores:no.csv", "not found")]
)
def test_adhoc_model_problems_are_user_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str, problem: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=problem):
        build_runner(model)
