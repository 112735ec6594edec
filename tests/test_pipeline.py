"""The engine: record store keys, resume, error handling, results on disk."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from fiqabench.benchmark.pipeline import Evaluation
from fiqabench.benchmark.results import ResultsFile, read_results, read_samples
from fiqabench.benchmark.schema import ModelIdentity, Request, Response
from fiqabench.benchmark.store import RecordStore
from fiqabench.tasks.registry import TaskRegistry
from tests.conftest import TaskFolderFactory, qa_item, write_image


class ScriptedRunner:
    """Answers every request with a fixed text; can fail chosen samples; counts its calls."""

    def __init__(self, text: str = "B", fail: Sequence[str] = (), crash_after: int | None = None):
        self.identity = ModelIdentity(alias="scripted", runner="test", model_id="scripted")
        self.text = text
        self.fail = set(fail)
        self.crash_after = crash_after
        self.seen: list[str] = []

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[Request, Response]]:
        for request in requests:
            if self.crash_after is not None and len(self.seen) >= self.crash_after:
                raise RuntimeError("device lost")
            self.seen.append(request.sample_id)
            if request.sample_id in self.fail:
                yield request, Response(error="HTTP 500 from server")
            else:
                yield request, Response(text=self.text, latency_s=0.01)

    def close(self) -> None:
        return None


def evaluate(folder: Path, out: Path, runner: ScriptedRunner, name: str = "ext-qa") -> ResultsFile:
    task = TaskRegistry([folder]).get(name)
    with RecordStore(out / "records.sqlite") as store:
        return Evaluation(runner=runner, store=store, output_dir=out).run([task])


def test_errors_are_not_wrong_answers_and_are_retried(
    task_folder: TaskFolderFactory, tmp_path: Path
) -> None:
    folder = task_folder([qa_item(i) for i in range(6)])
    out = tmp_path / "run"
    first = ScriptedRunner(fail=["q00001", "q00002"])
    results = evaluate(folder, out, first)
    task = results.results["ext-qa"]
    assert task.counts["error"] == 2 and task.counts["ok"] == 4
    assert task.metrics["accuracy"] == 1.0  # errors are excluded, never scored as wrong
    assert task.metrics["error_rate"] == pytest.approx(2 / 6)
    records = {r.sample_id: r for r in read_samples(out)}
    assert records["q00001"].status == "error" and records["q00001"].correct is None
    assert records["q00001"].error == "HTTP 500 from server"

    second = ScriptedRunner()
    rerun = evaluate(folder, out, second)
    assert sorted(second.seen) == ["q00001", "q00002"]  # only the failed ones go out again
    assert rerun.results["ext-qa"].counts["ok"] == 6
    assert rerun.results["ext-qa"].timing.n_cached == 4


def test_crashed_runner_fails_remaining_requests_only(
    task_folder: TaskFolderFactory, tmp_path: Path
) -> None:
    folder = task_folder([qa_item(i) for i in range(5)])
    results = evaluate(folder, tmp_path / "run", ScriptedRunner(crash_after=3))
    task = results.results["ext-qa"]
    assert task.counts["ok"] == 3 and task.counts["error"] == 2
    assert any("device lost" in example for example in task.error_examples)


def test_cache_key_follows_image_bytes_and_prompt(
    task_folder: TaskFolderFactory, tmp_path: Path
) -> None:
    folder = task_folder([qa_item(i) for i in range(3)])
    out = tmp_path / "run"
    evaluate(folder, out, ScriptedRunner())
    write_image(folder / "img.png", seed=99)  # same path, new pixels
    runner = ScriptedRunner()
    evaluate(folder, out, runner)
    assert len(runner.seen) == 3

    items = [qa_item(i, question=f"Changed {i}?") for i in range(3)]
    (folder / "items.jsonl").write_text("\n".join(json.dumps(i) for i in items) + "\n")
    runner = ScriptedRunner()
    evaluate(folder, out, runner)
    assert len(runner.seen) == 3


def test_results_files_round_trip(task_folder: TaskFolderFactory, tmp_path: Path) -> None:
    items = [qa_item(0, "single"), qa_item(1, "multi"), qa_item(2, "tf"), qa_item(3, "open")]
    folder = task_folder(items)
    out = tmp_path / "run"
    results = evaluate(folder, out, ScriptedRunner(text="B"))
    assert read_results(out) == results
    raw = json.loads((out / "results.json").read_text())
    assert raw["schema_version"] == "fiqabench.results/1"
    entry = raw["results"]["ext-qa"]
    assert entry["protocol"] == "test-protocol-v1" and entry["judge"] == "rules-v1"
    assert entry["prompt_template_sha256"]["user"]
    manifest = raw["manifest"]
    assert manifest["tasks"][0]["spec_sha256"] and manifest["model"]["alias"] == "scripted"
    assert set(entry["breakdowns"]) == {"type", "scope", "dimension", "subdimension", "source"}
    records = read_samples(out)
    assert [r.status for r in records] == ["ok", "ok", "parse_fail", "unscored"]
    assert records[0].correct is True and records[1].correct is False
    assert entry["counts"] == {
        "ok": 2,
        "parse_fail": 1,
        "error": 0,
        "unscored": 1,
        "total": 4,
        "judge_unparseable": 0,
    }
    assert entry["metrics"]["accuracy"] == pytest.approx(1 / 3)
    assert entry["metrics"]["parse_failure_rate"] == pytest.approx(1 / 3)
    assert entry["metrics"]["accuracy_multi"] == 0.0


def test_identical_requests_are_generated_once(
    task_folder: TaskFolderFactory, tmp_path: Path
) -> None:
    items = [qa_item(0), qa_item(1, question="Question 0?")]  # same image, prompt and options
    folder = task_folder(items)
    runner = ScriptedRunner()
    results = evaluate(folder, tmp_path / "run", runner)
    assert len(runner.seen) == 1
    assert results.results["ext-qa"].counts["ok"] == 2
