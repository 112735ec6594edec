"""`fiqabench export lmms-eval`: the task folder, driven here the way lmms-eval 0.7.3 drives it.

No lmms-eval needed: task YAMLs are loaded with a `!function` constructor that executes utils.py
afresh from the YAML's folder for every reference (as lmms-eval does), and the hooks are called
one document at a time. The run on real lmms-eval is the opt-in `make test-lmms`.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

import fiqabench
from fiqabench.benchmark.images import load_rgb
from fiqabench.benchmark.results import read_results, read_samples
from fiqabench.benchmark.schema import ImagePart, Record, TextPart
from fiqabench.errors import UserError
from fiqabench.export.lmms_eval import export_lmms_eval
from fiqabench.export.lmms_hooks import ScoredDoc, hooks_for
from fiqabench.export.lmms_manifest import MANIFEST_FILE, read_manifest
from fiqabench.export.result_numbers import (
    NumberPath,
    metric_name,
    metric_names,
    number_paths,
    read_number,
)
from fiqabench.tasks.registry import TaskRegistry
from tests.conftest import TaskFolderFactory, qa_item
from tests.test_cli import run_cli

MINI = ("mini-qa", "mini-fiqa", "mini-degradation")
Number = float | int | None


def load_task_yaml(path: Path) -> dict[str, Any]:
    """A task YAML as lmms-eval loads it: `!function utils.NAME` runs utils.py anew, takes NAME."""

    def function(loader: yaml.SafeLoader, node: yaml.Node) -> Callable[..., Any]:
        assert isinstance(node, yaml.ScalarNode)
        module_name, name = loader.construct_scalar(node).split(".")
        spec = importlib.util.spec_from_file_location(
            module_name, path.parent / f"{module_name}.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        value: Callable[..., Any] = getattr(module, name)
        return value

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", function)
    config: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)
    return config


def documents(folder: Path, config: dict[str, Any]) -> list[dict[str, Any]]:
    data_file = folder / config["dataset_kwargs"]["data_files"][config["test_split"]]
    return [json.loads(line) for line in data_file.read_text(encoding="utf-8").splitlines()]


def drive(folder: Path, task: str, answer: Callable[[str], str]) -> dict[str, Number]:
    """Every metric of the task after lmms-eval's pipeline: per document `process_results` on
    the (stripped) answer, then each metric's aggregation over its values."""
    config = load_task_yaml(folder / f"{task}.yaml")
    values: dict[str, list[Any]] = {}
    for doc in documents(folder, config):
        outcome = config["process_results"](doc, [answer(doc["sample_id"]).strip()])
        for metric, value in outcome.items():
            values.setdefault(metric, []).append(value)
    return {m["metric"]: m["aggregation"](values[m["metric"]]) for m in config["metric_list"]}


def fiqabench_numbers(run: Path, task: str) -> dict[str, Number]:
    """The same flat names over a fiqabench results.json, independently of any export."""
    entries = {name: r for name, r in read_results(run).results.items() if r.task == task}
    named = metric_names(task, number_paths(entries))
    return {name: read_number(entries, path) for name, path in named.items()}


def same(a: dict[str, Number], b: dict[str, Number]) -> list[str]:
    """Names whose numbers differ (NaN equals NaN); empty when the two agree exactly."""
    differ = [name for name in a.keys() | b.keys() if name not in a or name not in b]
    for name in a.keys() & b.keys():
        x, y = a[name], b[name]
        both_nan = isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)
        if x != y and not both_nan:
            differ.append(name)
    return sorted(differ)


@pytest.fixture(scope="module")
def random_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("random-run")
    command = [sys.executable, "-m", "fiqabench", "eval", "--model", "random"]
    command += ["--task", ",".join(MINI), "--output-dir", str(run), "--no-progress"]
    subprocess.run(command, check=True, capture_output=True)
    return run


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "lmms"
    registry = TaskRegistry()
    export_lmms_eval([registry.get(name) for name in MINI], out)
    return out


def test_folder_holds_a_yaml_per_task_the_group_utils_and_documents(export: Path) -> None:
    manifest = read_manifest(export)
    registry = TaskRegistry()
    written = [p.name for p in export.iterdir() if p.name != "__pycache__"]  # utils.py's
    assert sorted(written) == sorted(manifest.files)
    group = yaml.safe_load((export / "fiqabench.yaml").read_text())
    assert group["group"] == "fiqabench"
    assert group["task"] == [f"fiqabench_{name}" for name in MINI]
    for name in MINI:
        task = registry.get(name)
        text = (export / f"{name}.yaml").read_text()
        assert text.startswith(f"# Generated by fiqabench {fiqabench.__version__}")
        assert "doc_to_messages: !function utils.doc_to_messages" in text
        config = load_task_yaml(export / f"{name}.yaml")
        assert config["task"] == f"fiqabench_{name}" and config["dataset_path"] == "json"
        assert config["output_type"] == "generate_until"
        generation = config["generation_kwargs"]
        # Explicit, or lmms-eval stops at the first blank line and cuts longer answers.
        assert generation["until"] == list(task.spec.generation.stop)
        assert generation["max_new_tokens"] == task.spec.generation.max_new_tokens
        assert generation["do_sample"] is False and generation["temperature"] == 0.0
        docs = documents(export, config)
        assert [d["sample_id"] for d in docs] == [s.id for s in task.samples()]
        assert {d["fiqabench_task"] for d in docs} == {name}
        assert config["metadata"]["spec_sha256"] == task.loaded.sha256
        assert all(m["higher_is_better"] is None for m in config["metric_list"])


@pytest.mark.parametrize("task", MINI)
def test_numbers_equal_fiqabench_scoring_of_the_same_responses(
    task: str, export: Path, random_run: Path
) -> None:
    responses = {r.sample_id: r.response for r in read_samples(random_run) if r.task == task}
    assert responses and all(text is not None for text in responses.values())
    lmms = drive(export, task, lambda sample_id: responses[sample_id] or "")
    expected = fiqabench_numbers(random_run, task)
    # One metric per persisted number (metrics, counts, each breakdown statistic), all equal.
    assert same(lmms, expected) == []
    assert any(value is not None for value in lmms.values())


def test_every_breakdown_group_is_a_metric(export: Path, random_run: Path) -> None:
    results = read_results(random_run).results["mini-qa"]
    names = set(read_manifest(export).tasks["mini-qa"].metrics)
    for key, groups in results.breakdowns.items():
        for group, stats in groups.items():
            assert {f"by_{key}/{group}/{stat}" for stat in stats} <= names
    assert {"accuracy", "by_type/single/accuracy", "count/error"} <= names
    fiqa = read_manifest(export).tasks["mini-fiqa"].metrics
    assert fiqa["simple/srocc"] == NumberPath(
        entry="mini-fiqa:simple", section="metrics", name="srocc"
    )


def test_prompts_are_the_tasks_own_messages(export: Path) -> None:
    registry = TaskRegistry()
    for name in ("mini-qa", "mini-fiqa"):
        task = registry.get(name)
        config = load_task_yaml(export / f"{name}.yaml")
        for doc in documents(export, config)[:3]:
            sample = next(s for s in task.samples() if s.id == doc["sample_id"])
            messages = task.messages(sample)
            chat = config["doc_to_messages"](doc)
            assert [m["role"] for m in chat] == [m.role for m in messages]
            for turn, message in zip(chat, messages, strict=True):
                for part, expected in zip(turn["content"], message.content, strict=True):
                    if isinstance(expected, ImagePart):
                        assert part["type"] == "image" and isinstance(part["url"], Image.Image)
                        assert part["url"].tobytes() == load_rgb(Path(expected.path)).tobytes()
                    else:
                        assert isinstance(expected, TextPart)
                        assert part == {"type": "text", "text": expected.text}
            texts = [p.text for m in messages for p in m.content if isinstance(p, TextPart)]
            assert config["doc_to_text"](doc) == "\n\n".join(texts)
            visuals = config["doc_to_visual"](doc)
            assert len(visuals) == len(sample.images) and all(
                isinstance(v, Image.Image) for v in visuals
            )
            assert config["doc_to_target"](doc) == sample.id


def test_payloads_carry_the_sample_id_and_the_record(export: Path) -> None:
    config = load_task_yaml(export / "mini-qa.yaml")
    doc = documents(export, config)[0]
    outcome = config["process_results"](doc, ["B"])
    assert set(outcome) == {m["metric"] for m in config["metric_list"]}
    payloads = set(map(id, outcome.values()))
    assert len(payloads) == 1  # one object per document, not one per metric
    payload = next(iter(outcome.values()))
    assert isinstance(payload, ScoredDoc)
    # lmms-eval logs what it cannot serialise as str(): the sample id, under every metric.
    assert str(payload) == payload.sample_id == doc["sample_id"]
    record = Record.model_validate_json(payload.record)
    assert record.sample_id == doc["sample_id"] and record.task == "mini-qa"
    assert record.response == "B" and record.prompt_hash


def test_worked_example_with_failures_and_bad_input(
    task_folder: TaskFolderFactory, tmp_path: Path
) -> None:
    items = [
        qa_item(0, "single"),  # answer B
        qa_item(1, "single"),
        qa_item(2, "tf"),  # answer true
        qa_item(3, "multi"),  # answer A, C
        qa_item(4, "single", image="missing.png"),
    ]
    folder = task_folder(items)
    out = tmp_path / "export"
    export_lmms_eval([TaskRegistry([folder]).get("ext-qa")], out, include_paths=[folder])
    answers = {
        "q00000": "B",  # right
        "q00001": "The answer is D.",  # wrong
        "q00002": "[LMMS_EVAL_REQUEST_FAILED after 5 retries] timeout",  # a failed call
        "q00003": "A and C",  # right
        "q00004": "B",  # its image is missing: an error whatever the answer
    }
    numbers = drive(out, "ext-qa", answers.__getitem__)
    assert numbers["accuracy"] == pytest.approx(2 / 3)  # errors excluded, not wrong
    assert numbers["accuracy_single"] == pytest.approx(1 / 2)
    assert numbers["accuracy_multi"] == 1.0
    assert numbers["accuracy_tf"] is None
    assert numbers["error_rate"] == pytest.approx(2 / 5)
    assert (numbers["count/ok"], numbers["count/error"], numbers["count/total"]) == (3, 2, 5)
    assert numbers["by_subdimension/blur/accuracy"] == 1.0  # q0 right; q2, q4 errors
    assert numbers["by_subdimension/noise/accuracy"] == pytest.approx(1 / 2)  # q1, q3
    config = load_task_yaml(out / "ext-qa.yaml")
    bad = documents(out, config)[4]
    assert config["doc_to_visual"](bad) == []
    assert "unusable" in config["doc_to_text"](bad) and "missing.png" in config["doc_to_text"](bad)
    chat = config["doc_to_messages"](bad)
    assert [part["type"] for part in chat[0]["content"]] == ["text"]


def test_tasks_only_a_judge_scores_are_skipped_or_refused(
    task_folder: TaskFolderFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fiqabench.tasks import registry as registry_module

    judged = task_folder([qa_item(0, "open"), qa_item(1, "describe")], name="ext-open")
    mixed = task_folder([qa_item(0, "single"), qa_item(1, "open")], name="ext-mixed")
    # Without the builtin tasks, `--task all` sees only these two.
    monkeypatch.setattr(registry_module, "BUILTIN_DIR", tmp_path / "no-builtins")
    paths = ("--include-path", judged, "--include-path", mixed)
    out = tmp_path / "export"
    code, stdout, stderr = run_cli("export", "lmms-eval", "--out", out, *paths, capsys=capsys)
    assert code == 0, stderr
    assert "skipped ext-open: needs an LLM judge" in stderr
    assert "`fiqabench score --task ext-open --predictions P --judge J`" in stderr
    assert "fiqabench_ext-mixed: 2 documents" in stdout and "ext-open" not in stdout
    assert list(read_manifest(out).tasks) == ["ext-mixed"]
    # A mixed task is exported; its open item stays unscored there (lmms-eval has no judge).
    numbers = drive(out, "ext-mixed", {"q00000": "B", "q00001": "Sharp."}.__getitem__)
    assert numbers["accuracy"] == 1.0 and numbers["open_score"] is None
    assert (numbers["count/ok"], numbers["count/unscored"]) == (1, 1)

    named = ("--task", "ext-open,ext-mixed")
    code, _, stderr = run_cli(
        "export", "lmms-eval", "--out", tmp_path / "x", *paths, *named, capsys=capsys
    )
    assert code == 2 and "task 'ext-open' needs an LLM judge, which lmms-eval lacks" in stderr
    assert not (tmp_path / "x").exists()
    with pytest.raises(UserError, match="'ext-open' needs an LLM judge"):
        export_lmms_eval([TaskRegistry([judged]).get("ext-open")], tmp_path / "y")


def test_re_export_replaces_an_export_and_refuses_other_folders(tmp_path: Path) -> None:
    registry = TaskRegistry()
    out = tmp_path / "export"
    export_lmms_eval([registry.get("mini-qa"), registry.get("mini-degradation")], out)
    (out / "notes.txt").write_text("mine")
    export_lmms_eval([registry.get("mini-degradation")], out)
    assert sorted(p.name for p in out.iterdir()) == sorted([*read_manifest(out).files, "notes.txt"])
    assert not (out / "mini-qa.yaml").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "task.yaml").write_text("task: other\n")
    with pytest.raises(UserError, match="holds no fiqabench export"):
        export_lmms_eval([registry.get("mini-degradation")], foreign)


def test_hooks_refuse_a_changed_spec_or_another_version(
    task_folder: TaskFolderFactory, tmp_path: Path
) -> None:
    folder = task_folder([qa_item(0), qa_item(1)])
    out = tmp_path / "export"
    export_lmms_eval([TaskRegistry([folder]).get("ext-qa")], out, include_paths=[folder])
    spec = folder / "ext-qa.yaml"
    spec.write_text(spec.read_text() + "description: changed\n")
    doc = {"fiqabench_task": "ext-qa", "sample_id": "q00000"}
    with pytest.raises(UserError, match="changed since it was exported"):
        hooks_for(out).process_results(doc, ["B"])
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    manifest["fiqabench_version"] = "0.0.0-other"
    (out / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=re.escape("exported with fiqabench 0.0.0-other")):
        hooks_for(out)


def test_unknown_aggregation_is_an_attribute_error(export: Path) -> None:
    spec = importlib.util.spec_from_file_location("utils", export / "utils.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(module.mini_qa__accuracy)
    with pytest.raises(AttributeError, match="no aggregation 'mini_qa__nothing'"):
        _ = module.mini_qa__nothing
    with pytest.raises(UserError, match="not a fiqabench ScoredDoc"):
        module.mini_qa__accuracy([0.5, 1.0])


def test_metric_names_are_flat_and_clashes_are_errors() -> None:
    srocc = NumberPath(entry="mini-fiqa:simple", section="metrics", name="srocc")
    assert metric_name("mini-fiqa", srocc) == "simple/srocc"
    count = NumberPath(entry="t", section="counts", name="parse_fail")
    assert metric_name("t", count) == "count/parse_fail"
    odd = NumberPath(entry="t", section="breakdowns", name="accuracy", key="source", group="a,b c")
    assert metric_name("t", odd) == "by_source/a_b_c/accuracy"
    other = NumberPath(
        entry="t", section="breakdowns", name="accuracy", key="source", group="a b;c"
    )
    with pytest.raises(UserError, match="share the metric name 'by_source/a_b_c/accuracy'"):
        metric_names("t", [odd, other])


def test_cli_exports_and_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "export"
    code, stdout, _ = run_cli(
        "export", "lmms-eval", "--out", out, "--task", "mini-degradation", capsys=capsys
    )
    assert code == 0
    assert "fiqabench_mini-degradation: 66 documents" in stdout
    assert f"--tasks fiqabench --include_path {out}" in stdout
    assert (out / "mini-degradation.yaml").is_file()
    code, _, stderr = run_cli("export", "lmms-eval", "--out", out, "--task", "nope", capsys=capsys)
    assert code == 2 and "unknown task 'nope'" in stderr
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "x.txt").write_text("x")
    code, _, stderr = run_cli(
        "export", "lmms-eval", "--out", foreign, "--task", "mini-qa", capsys=capsys
    )
    assert code == 2 and "holds no fiqabench export" in stderr
