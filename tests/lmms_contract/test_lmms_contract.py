"""lmms-eval 0.7.3 runs the exported tasks on the CPU and its numbers equal fiqabench's scoring
of the same answers. Opt-in: `make test-lmms` (its own virtual environment, several GB).

Two models, two request contracts: lmms-eval's `dummy` (simple: `doc_to_visual` and
`doc_to_text`, answers "A") and `fiqabench_replay` (chat: `doc_to_messages`, answers what a
fiqabench random-baseline run answered), a test-only plugin in replay_model/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fiqabench.benchmark.results import read_results
from fiqabench.export.lmms_manifest import ExportedTask, read_manifest
from fiqabench.export.result_numbers import read_number
from tests.test_export_lmms import Number, same

BIN = Path(sys.executable).parent
# No hub: lmms-eval reads the exported JSONL, and fiqabench skips tasks whose data is remote.
OFFLINE = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_MODE": "disabled",
}


def run(*command: str | Path, env: dict[str, str] = OFFLINE, cwd: Path | None = None) -> str:
    completed = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-4000:]
    return output


def lmms_eval(export: Path, out: Path, model: str, model_args: str) -> dict[str, Any]:
    """lmms-eval's results.json after a run on every exported task, offline and on the CPU."""
    env = {**OFFLINE, "HF_DATASETS_CACHE": str(out / "hf-datasets")}
    output = run(
        BIN / "lmms-eval", "eval", "--model", model, "--model_args", model_args,
        "--tasks", "fiqabench", "--include_path", export, "--log_samples",
        "--output_path", out / "logs",
        env=env,
        cwd=out,  # lmms-eval reads `--tasks fiqabench` as a folder when ./fiqabench exists
    )  # fmt: skip
    # lmms-eval 0.7.3 exits 0 when an evaluation fails: its results file is the proof it ran.
    found = sorted((out / "logs").rglob("*_results.json"))
    assert len(found) == 1, output[-4000:]
    results: dict[str, Any] = json.loads(found[0].read_text(encoding="utf-8"))
    return results


def lmms_numbers(results: dict[str, Any], task: ExportedTask) -> dict[str, Number]:
    row = results["results"][task.lmms_task]
    return {metric: row[f"{metric},none"] for metric in task.metrics}


def logged_samples(out: Path, task: ExportedTask) -> list[dict[str, Any]]:
    (path,) = (out / "logs").rglob(f"*_samples_{task.lmms_task}.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def fiqabench_numbers(run_dir: Path, task: ExportedTask) -> dict[str, Number]:
    """fiqabench's number behind each exported metric; None where its results have none."""
    entries = read_results(run_dir).results
    return {metric: read_number(entries, path) for metric, path in task.metrics.items()}


def score_logged_answers(out: Path, task: ExportedTask) -> dict[str, Number]:
    """fiqabench's own scoring (`score --predictions`) of the answers lmms-eval logged."""
    samples = logged_samples(out, task)
    predictions = out / f"{task.name}.predictions.jsonl"
    lines = [{"sample_id": s["target"], "response": s["filtered_resps"]} for s in samples]
    predictions.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    scored = out / f"{task.name}.scored"
    run(
        BIN / "fiqabench", "score", "--task", task.name, "--predictions", predictions,
        "--output-dir", scored,
    )  # fmt: skip
    return fiqabench_numbers(scored, task)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "lmms"
    run(BIN / "fiqabench", "export", "lmms-eval", "--out", out)
    return out


@pytest.fixture(scope="module")
def tasks(export: Path) -> list[ExportedTask]:
    return list(read_manifest(export).tasks.values())


@pytest.fixture(scope="module")
def random_run(tmp_path_factory: pytest.TempPathFactory, tasks: list[ExportedTask]) -> Path:
    out = tmp_path_factory.mktemp("random-run")
    names = ",".join(task.name for task in tasks)
    run(BIN / "fiqabench", "eval", "--model", "random", "--task", names, "--output-dir", out,
        "--no-progress")  # fmt: skip
    return out


def test_replayed_answers_score_as_in_fiqabench(
    export: Path, tasks: list[ExportedTask], random_run: Path, tmp_path: Path
) -> None:
    results = lmms_eval(export, tmp_path, "fiqabench_replay", f"samples={random_run}/samples.jsonl")
    for task in tasks:
        numbers = lmms_numbers(results, task)
        assert any(value is not None for value in numbers.values()), task.name
        assert same(numbers, fiqabench_numbers(random_run, task)) == [], task.name
        assert same(numbers, score_logged_answers(tmp_path, task)) == [], task.name


def test_dummy_model_answers_score_as_in_fiqabench(
    export: Path, tasks: list[ExportedTask], tmp_path: Path
) -> None:
    # read_bytes makes the dummy call doc_to_visual for every document.
    results = lmms_eval(export, tmp_path, "dummy", "read_bytes=1")
    for task in tasks:
        samples = logged_samples(tmp_path, task)
        assert [s["filtered_resps"] for s in samples] == ["A"] * task.n_samples
        # Each logged metric value is the document's sample id (lmms-eval drops the document).
        for sample in samples:
            assert {sample[metric] for metric in task.metrics} == {sample["target"]}
        assert same(lmms_numbers(results, task), score_logged_answers(tmp_path, task)) == [], (
            task.name
        )
