"""The built-in qbench-hf task, offline: a saved copy with Q-Bench-HF's schema in a mirror."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from fiqabench.benchmark.results import read_results, read_samples
from fiqabench.benchmark.schema import TextPart
from fiqabench.tasks import hf_source
from fiqabench.tasks.registry import TaskRegistry
from tests.test_cli import run_cli
from tests.test_hf_data import BLUE, RED, encoded, jpeg_bytes, qbench_dataset, qbench_row

datasets = pytest.importorskip("datasets")

HUB_ID = "q-future/Q-Bench-HF"
GREEN = jpeg_bytes("green")
# (row, answer letter): Q-Bench's question types and concerns, 2 to 4 options.
DEV = [
    (qbench_row("0", encoded(RED), ["Yes", "No"], "No", question_type=0), "B"),
    (qbench_row("1", encoded(BLUE), ["Blur", "Noise", "Overexposure"], "Noise"), "B"),
    (qbench_row("2", encoded(GREEN), ["Low", "Medium", "High"], "High", question_type=2), "C"),
    (qbench_row("3", encoded(RED), ["Face", "Sky", "Wall", "Floor"], "Sky", concern=2), "B"),
    (qbench_row("4", encoded(BLUE), ["Sharp", "Blurry"], "Sharp", concern=3), "A"),
    (qbench_row("5", encoded(GREEN), ["Good", "Poor"], "Poor", concern=1), "B"),
    (qbench_row("6", encoded(RED), ["Yes", "No"], "Yes", question_type=0, concern=1), "A"),
    (qbench_row("7", encoded(BLUE), ["Dark", "Bright", "Normal", "Dim"], "Dim"), "D"),
]
CONCERN_NAMES = {0: "distortion", 1: "other", 2: "in-context distortion", 3: "in-context other"}


def unlabelled(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "id": f"t{row['id']}", "correct_choice": row["option0"]}


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A save_to_disk copy of a Q-Bench-HF look-alike (dev and test) where the mirror puts it."""
    root = tmp_path / "mirror"
    splits = datasets.DatasetDict(
        dev=qbench_dataset([row for row, _ in DEV]),
        test=qbench_dataset([unlabelled(row) for row, _ in DEV[:2]]),
    )
    splits.save_to_disk(str(root / HUB_ID))
    monkeypatch.setenv(hf_source.MIRROR_ENV, str(root))
    monkeypatch.setenv("FIQABENCH_CACHE", str(tmp_path / "cache"))
    return root


def qbench_task() -> Any:
    return TaskRegistry().get("qbench-hf")


def test_listed_and_skipped_when_the_hub_is_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, _ = run_cli("tasks", "list", capsys=capsys)
    assert code == 0 and "qbench-hf" in stdout and "missing" in stdout
    code, _, err = run_cli(
        "eval",
        "--model",
        "random",
        "--task",
        "all",
        "--limit",
        "1",
        "--output-dir",
        tmp_path / "run",
        "--no-progress",
        capsys=capsys,
    )
    assert code == 0
    flat = " ".join(err.split())
    assert "skipped qbench-hf: its data is missing" in flat
    assert "FIQABENCH_HF_MIRROR" in flat and "fiqabench[data]" in flat
    names = [task.name for task in read_results(tmp_path / "run").manifest.tasks]
    assert "qbench-hf" not in names and "mini-qa" in names
    code, _, err = run_cli("eval", "--model", "random", "--task", "qbench-hf", capsys=capsys)
    assert code == 2 and "data of task 'qbench-hf' is missing" in err


def test_when_the_hub_may_be_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    assert qbench_task().data_available()  # not probed: a failed download is an error later
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "true")
    assert not qbench_task().data_available()
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    assert qbench_task().data_available()
    # As if the `data` extra were missing: skipped, never a crash of `--task all`.
    monkeypatch.setattr(hf_source.importlib.util, "find_spec", lambda name: None)
    assert not qbench_task().data_available()


def test_mirror_paths_stay_inside_the_mirror(mirror: Path) -> None:
    assert hf_source.mirrored_copy(HUB_ID) == (mirror / HUB_ID).resolve()
    assert hf_source.mirrored_copy("q-future/absent") is None
    assert hf_source.mirrored_copy("../mirror") is None
    assert hf_source.mirrored_copy("q-future/..") is None
    (mirror / "q-future" / ".hidden").mkdir()
    assert hf_source.mirrored_copy("q-future/.hidden") is None  # names start with a letter or digit


def test_hub_ids_start_each_part_with_a_letter_or_digit() -> None:
    assert hf_source.HUB_ID.fullmatch("q-future/Q-Bench-HF")
    for bad in ("q-future/.x", "q-future/-x", ".q/x", "q-future", "a/b/c", "a/"):
        assert not hf_source.HUB_ID.fullmatch(bad), bad


def test_a_hub_id_loads_through_datasets(
    mirror: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # No network here: the hub call is answered from the saved copy, and its arguments checked.
    dev = datasets.load_from_disk(str(mirror / HUB_ID))["dev"]
    calls: list[tuple[Any, ...]] = []

    def load_dataset(path: str, *, split: str | None, revision: str | None) -> Any:
        calls.append((path, split, revision))
        return dev

    monkeypatch.delenv(hf_source.MIRROR_ENV)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    task = qbench_task()
    assert task.data_available()
    assert [sample.id for sample in task.samples()] == [row["id"] for row, _ in DEV]
    assert calls == [(HUB_ID, "dev", None)]


def test_prompt_follows_the_qbench_convention(mirror: Path) -> None:
    task = qbench_task()
    sample = task.samples()[1]
    [message] = task.messages(sample)
    text = [part.text for part in message.content if isinstance(part, TextPart)]
    assert text == [
        "Question 1?\nA. Blur\nB. Noise\nC. Overexposure\n"
        "Answer with the option's letter from the given choices directly."
    ]
    assert Path(sample.images[0]).read_bytes() == BLUE


def test_eval_end_to_end_from_the_mirror(
    mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, _ = run_cli("tasks", "list", capsys=capsys)
    assert code == 0 and "qbench-hf" in stdout
    out = tmp_path / "run"
    args = ("eval", "--model", "random", "--task", "qbench-hf", "--no-progress")
    code, stdout, err = run_cli(*args, "--output-dir", out, capsys=capsys)
    assert code == 0, err
    entry = read_results(out).results["qbench-hf"]
    records = {record.sample_id: record for record in read_samples(out)}
    # Independently: the chance baseline answers a bare letter; compare it with the answer key.
    hits = {row["id"]: records[row["id"]].response == letter for row, letter in DEV}
    assert entry.protocol == "qbench-a1-v1"
    assert entry.counts["total"] == len(DEV) and entry.counts["ok"] == len(DEV)
    assert entry.metrics["accuracy"] == pytest.approx(sum(hits.values()) / len(DEV))
    by_concern: dict[str, list[bool]] = {}
    for row, _ in DEV:
        by_concern.setdefault(CONCERN_NAMES[row["question_concern"]], []).append(hits[row["id"]])
    groups = entry.breakdowns["subdimension"]
    assert {name: group["n"] for name, group in groups.items()} == {
        name: len(found) for name, found in by_concern.items()
    }
    for name, found in by_concern.items():
        assert groups[name]["accuracy"] == pytest.approx(sum(found) / len(found))
    scopes = Counter("local" if row["question_concern"] >= 2 else "global" for row, _ in DEV)
    assert {k: v["n"] for k, v in entry.breakdowns["scope"].items()} == dict(scopes)
    assert entry.breakdowns["source"]["q-bench"]["n"] == len(DEV)


def test_scored_predictions_worked_example(
    mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 8 items: 5 right letters, 1 right option text, 1 wrong letter, 1 refusal (a parse
    # failure, counted wrong, never a random guess): accuracy 6/8.
    answers = ["B", "B", "C", "B", "A", "Poor", "B", "I cannot tell."]
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text(
        "".join(
            json.dumps({"sample_id": row["id"], "response": text}) + "\n"
            for (row, _), text in zip(DEV, answers, strict=True)
        )
    )
    out = tmp_path / "scored"
    code, _, err = run_cli(
        "score",
        "--task",
        "qbench-hf",
        "--predictions",
        predictions,
        "--output-dir",
        out,
        capsys=capsys,
    )
    assert code == 0, err
    entry = read_results(out).results["qbench-hf"]
    assert entry.metrics["accuracy"] == pytest.approx(6 / 8)
    assert entry.counts["parse_fail"] == 1 and entry.counts["ok"] == 7
    assert entry.metrics["parse_failure_rate"] == pytest.approx(1 / 8)
    other = entry.breakdowns["subdimension"]["other"]  # items 5 (right) and 6 (wrong)
    assert (other["n"], other["accuracy"]) == (2, 0.5)
