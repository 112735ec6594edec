"""The command line end to end: eval, score, tasks list, models list, user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fiqabench.benchmark.results import ResultsFile, read_results, read_samples
from fiqabench.cli import main
from tests.conftest import TaskFolderFactory, qa_item


def run_cli(*args: str | Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    argv = ["fiqabench", *map(str, args)]
    code = 0
    saved, sys.argv = sys.argv, argv
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = saved
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_eval_random_on_mini_qa_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code, stdout, _ = run_cli(
        "eval",
        "--model",
        "random",
        "--task",
        "mini-qa",
        "--output-dir",
        out,
        "--no-progress",
        capsys=capsys,
    )
    assert code == 0
    assert "mini-qa" in stdout and "accuracy" in stdout
    results = read_results(out)
    task = results.results["mini-qa"]
    counts = task.counts
    assert counts["total"] >= 200 and counts["error"] == 0
    assert counts["ok"] + counts["parse_fail"] + counts["unscored"] == counts["total"]
    assert counts["parse_fail"] == 0  # the chance baseline always answers in a parseable form
    assert counts["unscored"] == task.breakdowns["type"]["open"]["n"]
    closed = counts["ok"] + counts["parse_fail"]
    correct = sum(bool(r.correct) for r in read_samples(out))
    assert task.metrics["accuracy"] == pytest.approx(correct / closed)  # open items not zeros
    records = read_samples(out)
    assert len(records) == counts["total"]
    assert all(r.prompt_hash and r.request_key for r in records)

    # A rerun in the same folder answers everything from the record store.
    code, _, _ = run_cli(
        "eval",
        "--model",
        "random",
        "--task",
        "mini-qa",
        "--output-dir",
        out,
        "--no-progress",
        capsys=capsys,
    )
    rerun = read_results(out).results["mini-qa"]
    assert code == 0 and rerun.timing.n_cached == rerun.timing.n_requests
    assert rerun.metrics == task.metrics


def test_random_baseline_lands_at_chance(
    task_folder: TaskFolderFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = [qa_item(i, "single", question=f"Q{i}?") for i in range(1500)]
    items += [qa_item(i, "tf", question=f"T{i}?") for i in range(1500, 3000)]
    folder = task_folder(items)
    out = tmp_path / "run"
    code, _, _ = run_cli(
        "eval",
        "--model",
        "random",
        "--task",
        "ext-qa",
        "--include-path",
        folder,
        "--output-dir",
        out,
        "--no-progress",
        capsys=capsys,
    )
    assert code == 0
    metrics = read_results(out).results["ext-qa"].metrics
    assert metrics["accuracy_single"] == pytest.approx(0.25, abs=0.035)
    assert metrics["accuracy_tf"] == pytest.approx(0.50, abs=0.04)


def test_score_predictions_and_rescore_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run_cli(
        "eval",
        "--model",
        "random",
        "--task",
        "mini-qa",
        "--output-dir",
        run,
        "--no-progress",
        capsys=capsys,
    )
    original = read_results(run).results["mini-qa"]
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text(
        "".join(
            json.dumps({"sample_id": r.sample_id, "response": r.response}) + "\n"
            for r in read_samples(run)
        )
    )
    scored_dir = tmp_path / "scored"
    code, _, _ = run_cli(
        "score",
        "--task",
        "mini-qa",
        "--predictions",
        predictions,
        "--output-dir",
        scored_dir,
        capsys=capsys,
    )
    assert code == 0
    scored = read_results(scored_dir).results["mini-qa"]
    assert scored.metrics == original.metrics
    assert scored.counts == original.counts
    assert scored.breakdowns == original.breakdowns

    code, _, _ = run_cli(
        "score", "--run", run, "--output-dir", tmp_path / "rescored", capsys=capsys
    )
    assert code == 0
    assert read_results(tmp_path / "rescored").results["mini-qa"].metrics == original.metrics


def test_score_predictions_rejects_unknown_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    predictions = tmp_path / "p.jsonl"
    predictions.write_text(
        '{"sample_id": "mqa-0001", "response": "A"}\n{"sample_id": "nope", "response": "A"}\n'
    )
    code, _, err = run_cli(
        "score",
        "--task",
        "mini-qa",
        "--predictions",
        predictions,
        "--output-dir",
        tmp_path / "o",
        capsys=capsys,
    )
    assert code == 2
    assert f"{predictions}:2: unknown sample_id 'nope'" in err


def test_external_task_with_its_own_template(
    task_folder: TaskFolderFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = task_folder([qa_item(i) for i in range(4)], user_template="mine.j2")
    (folder / "mine.j2").write_text(
        "{{ question }} Options: {% for o in options %}{{ o.letter }}={{ o.text }} {% endfor %}"
    )
    out = tmp_path / "run"
    code, _, _ = run_cli(
        "eval",
        "--model",
        "random",
        "--task",
        "ext-qa",
        "--include-path",
        folder,
        "--output-dir",
        out,
        "--no-progress",
        capsys=capsys,
    )
    assert code == 0
    results = read_results(out)
    assert results.manifest.tasks[0].builtin is False
    assert results.results["ext-qa"].counts["ok"] == 4


def test_undefined_template_variable_is_a_named_error(
    task_folder: TaskFolderFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = task_folder([qa_item(0)], user_template="bad.j2")
    (folder / "bad.j2").write_text("{{ question }} {{ quesiton_typo }}")
    code, _, _ = run_cli(
        "eval",
        "--model",
        "random",
        "--task",
        "ext-qa",
        "--include-path",
        folder,
        "--output-dir",
        tmp_path / "run",
        "--no-progress",
        capsys=capsys,
    )
    assert code == 1  # the only sample failed: above the default error budget
    results = read_results(tmp_path / "run").results["ext-qa"]
    assert "bad.j2" in results.error_examples[0] and "quesiton_typo" in results.error_examples[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["eval", "--model", "randon", "--task", "mini-qa"],
            "unknown model 'randon' (did you mean random?)",
        ),
        (
            ["eval", "--model", "random", "--task", "mini-q"],
            "unknown task 'mini-q' (did you mean mini-qa",
        ),
        (
            ["score", "--task", "mini-qa"],
            "give either --run RUN_DIR or --task TASK --predictions FILE",
        ),
    ],
)
def test_user_errors_are_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = (
        run_cli(*args, "--output-dir", tmp_path / "o", capsys=capsys)
        if args[0] == "eval"
        else run_cli(*args, capsys=capsys)
    )
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_malformed_yaml_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "broken.yaml").write_text("name: x\nkind: qa\n  protocol: [unclosed\n")
    code, _, err = run_cli("tasks", "list", "--include-path", folder, capsys=capsys)
    assert code == 2
    assert f"{folder / 'broken.yaml'}:3: malformed YAML" in err.replace("\n", "")


def test_task_all_skips_tasks_without_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "later.yaml").write_text(
        "name: later-qa\nkind: qa\nprotocol: p\ndata:\n  jsonl: absent.jsonl\n"
        "prepare: fiqabench data prepare later\n"
    )
    code, _, err = run_cli(
        "eval",
        "--model",
        "random",
        "--task",
        "all",
        "--include-path",
        folder,
        "--output-dir",
        tmp_path / "run",
        "--no-progress",
        "--limit",
        "5",
        capsys=capsys,
    )
    assert code == 0
    assert "skipped later-qa" in err and "fiqabench data prepare later" in err.replace("\n", " ")
    results = ResultsFile.model_validate_json((tmp_path / "run" / "results.json").read_text())
    assert [task.name for task in results.manifest.tasks] == [
        "mini-degradation",
        "mini-describe",
        "mini-fiqa",
        "mini-qa",
    ]
    assert results.results["mini-qa"].counts["total"] == 5


def test_lists_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run_cli("tasks", "list", capsys=capsys)
    assert code == 0 and "mini-qa" in stdout and "ready" in stdout
    code, stdout, _ = run_cli("models", "list", capsys=capsys)
    assert code == 0 and "random" in stdout
    code, stdout, _ = run_cli("eval", "--help", capsys=capsys)
    assert code == 0 and "--max-error-rate" in stdout and "--include-path" in stdout


def test_core_import_stays_light() -> None:
    heavy = ["torch", "transformers", "vllm", "cv2", "lmms_eval", "datasets"]
    code = (
        "import sys, fiqabench.cli, fiqabench.benchmark.pipeline, fiqabench.tasks.registry;"
        "import fiqabench.runners.catalog as c; c.build_runner('random');"
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert output.stdout.strip() == "[]"
