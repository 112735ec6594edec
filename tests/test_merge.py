"""`fiqabench merge`: shards combine into exactly the results of an unsharded run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from fiqabench.benchmark.results import (
    ResultsFile,
    read_results,
    read_samples,
    write_results,
    write_samples,
)
from fiqabench.benchmark.schema import Record
from tests.conftest import TaskFolderFactory, qa_item
from tests.test_cli import run_cli

QUICK = ("--model", "random", "--task", "mini-qa", "--limit", "12")


def evaluate(
    out: Path, *args: str, capsys: pytest.CaptureFixture[str], shard: str | None = None
) -> Path:
    extra = ("--shard", shard) if shard else ()
    code, _, err = run_cli(
        "eval", *args, *extra, "--output-dir", out, "--no-progress", capsys=capsys
    )
    assert code == 0, err
    return out


def shards(root: Path, count: int, *args: str, capsys: pytest.CaptureFixture[str]) -> list[Path]:
    return [
        evaluate(root / f"shard-{i}", *args, shard=f"{i}/{count}", capsys=capsys)
        for i in range(1, count + 1)
    ]


def merge(*folders: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return run_cli("merge", *folders, "--output-dir", out, capsys=capsys)


def comparable(record: Record) -> dict[str, Any]:
    return record.model_dump(exclude={"cached", "latency_s"})


def assert_same_run(merged: Path, whole: Path) -> None:
    expected, found = read_results(whole), read_results(merged)
    assert found.manifest.shard is None
    assert [
        (t.name, t.n_samples, t.spec_sha256, t.template_sha256) for t in found.manifest.tasks
    ] == [(t.name, t.n_samples, t.spec_sha256, t.template_sha256) for t in expected.manifest.tasks]
    assert list(found.results) == list(expected.results)
    for name, entry in expected.results.items():
        other = found.results[name]
        # Everything but the wall-clock timing, which no two runs share.
        assert other.model_dump(exclude={"timing"}) == entry.model_dump(exclude={"timing"})
        for counter in ("n_requests", "n_generated", "input_tokens", "output_tokens"):
            assert getattr(other.timing, counter) == getattr(entry.timing, counter), counter
    assert [comparable(r) for r in read_samples(merged)] == [
        comparable(r) for r in read_samples(whole)
    ]


# mini-fiqa: two of its variants, in another order than the spec's, and a --limit that cuts
# the second: merge must ask the variants the shards asked. Both variants have EvR curves, and
# there is a consistency entry. (Two variants, not five: its bootstrap CIs take seconds each.)
FIQA = ("--variants", "utility,simple", "--limit", "300")


@pytest.mark.parametrize(
    ("model", "task", "count", "extra"),
    [
        ("random", "mini-qa", 3, ()),
        ("classical-laplacian", "mini-fiqa", 3, FIQA),
        ("classical-detector", "mini-degradation", 2, ()),
        ("random", "mini-qa", 3, ("--limit", "2")),  # one shard has no sample at all
    ],
)
def test_merged_shards_equal_the_unsharded_run(
    model: str,
    task: str,
    count: int,
    extra: tuple[str, ...],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if model.startswith("classical"):
        pytest.importorskip("cv2")
    args = ("--model", model, "--task", task, *extra)
    whole = evaluate(tmp_path / "whole", *args, capsys=capsys)
    parts = shards(tmp_path, count, *args, capsys=capsys)
    total = read_results(whole).manifest.tasks[0].n_samples
    sizes = [read_results(part).manifest.tasks[0].n_samples for part in parts]
    assert sum(sizes) == total and max(sizes) - min(sizes) <= 1
    code, stdout, err = merge(*reversed(parts), out=tmp_path / "merged", capsys=capsys)
    assert code == 0, err
    assert f"merged {count} shards ({total} records)" in stdout
    assert_same_run(tmp_path / "merged", whole)
    if task == "mini-fiqa":
        entries = read_results(tmp_path / "merged").results
        assert list(entries) == ["mini-fiqa:utility", "mini-fiqa:simple", "mini-fiqa:consistency"]
        assert entries["mini-fiqa:simple"].curves and entries["mini-fiqa:utility"].curves
        assert entries["mini-fiqa:consistency"].metrics["utility_n"] == 300 - 171


def test_timing_counters_add_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parts = shards(tmp_path, 2, *QUICK, capsys=capsys)
    evaluate(parts[0], *QUICK, shard="1/2", capsys=capsys)  # resumed: all answers cached
    assert merge(*parts, out=tmp_path / "merged", capsys=capsys)[0] == 0
    timing = read_results(tmp_path / "merged").results["mini-qa"].timing
    first, second = (read_results(part).results["mini-qa"].timing for part in parts)
    assert timing.n_requests == first.n_requests + second.n_requests == 12
    assert timing.n_cached == first.n_cached + second.n_cached == first.n_requests
    assert timing.n_generated == second.n_generated
    assert timing.output_tokens == first.output_tokens + second.output_tokens
    manifest = read_results(tmp_path / "merged").manifest
    assert manifest.command[1:3] == ["merge", str(parts[0])]
    assert manifest.finished_at is not None and manifest.started_at <= manifest.finished_at


def test_fields_the_run_added_are_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parts = shards(tmp_path, 2, *QUICK, capsys=capsys)
    for part in parts:  # e.g. what a later version adds to an entry
        results = read_results(part)
        entry = results.results["mini-qa"]
        results.results["mini-qa"] = entry.model_copy(
            update={"judge": "judge-x", "protocol": "p+x"}
        )
        write_results(part, results)
    assert merge(*parts, out=tmp_path / "merged", capsys=capsys)[0] == 0
    entry = read_results(tmp_path / "merged").results["mini-qa"]
    assert entry.protocol == "p+x" and entry.counts["total"] == 12
    assert entry.judge == "rules-v1"  # named anew from the judges the shards list: none


def expect_error(
    capsys: pytest.CaptureFixture[str], *folders: Path, out: Path, message: str
) -> None:
    code, _, err = merge(*folders, out=out, capsys=capsys)
    assert code == 2
    line = " ".join(err.split())
    assert line.startswith("error: ") and message in line, line


def test_shards_must_be_complete_and_unique(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two, three = shards(tmp_path, 3, *QUICK, capsys=capsys)
    out = tmp_path / "merged"
    expect_error(capsys, one, three, out=out, message="shard(s) 2/3 missing")
    copy = tmp_path / "copy"
    shutil.copytree(one, copy)
    expect_error(capsys, one, two, three, copy, out=out, message=f"{copy}: is shard 1/3, and so is")
    other = evaluate(tmp_path / "of-two", *QUICK, shard="1/2", capsys=capsys)
    expect_error(capsys, one, two, other, out=out, message=f"{other}: is shard 1/2, but")
    whole = evaluate(tmp_path / "whole", *QUICK, capsys=capsys)
    expect_error(capsys, whole, out=out, message=f"{whole}: is not a shard")
    expect_error(capsys, one, two, three, out=two, message=f"{two}: is a shard: merge into")
    assert not out.exists()


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        (("--seed", "1"), "seed 1 instead of 0"),
        (("--limit", "11"), "--limit 11 instead of 12"),
        (("--model", "classical-exposure"), "model {"),
        (("--task", "mini-qa,mini-degradation"), "tasks ['mini-qa', 'mini-degradation'] instead"),
    ],
)
def test_shards_of_different_runs_are_refused(
    changed: tuple[str, str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = evaluate(tmp_path / "one", *QUICK, shard="1/2", capsys=capsys)
    args = list(QUICK)
    option, value = changed
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    if option == "--model":
        pytest.importorskip("cv2")
    second = evaluate(tmp_path / "two", *args, shard="2/2", capsys=capsys)
    expected = f"{second}: does not belong with {first}: {message}"
    expect_error(capsys, first, second, out=tmp_path / "merged", message=expected)


def test_tampered_or_unfinished_shards_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = shards(tmp_path, 2, *QUICK, capsys=capsys)
    out = tmp_path / "merged"
    records = read_samples(two)
    write_samples(two, records[:-1])
    expect_error(
        capsys,
        one,
        two,
        out=out,
        message=f"{two / 'samples.jsonl'}: its {len(records) - 1} records of task 'mini-qa' "
        f"are not the {len(records)} samples shard 2/2 takes",
    )
    write_samples(two, [*records, records[0].model_copy(update={"task": "ghost"})])
    expect_error(capsys, one, two, out=out, message="holds records of task(s) ['ghost']")
    write_samples(two, records)
    results = read_results(two)
    write_results(
        two,
        results.model_copy(
            update={"manifest": results.manifest.model_copy(update={"finished_at": None})}
        ),
    )
    expect_error(capsys, one, two, out=out, message=f"{two}: shard 2/2 did not finish")


def test_a_task_changed_since_the_shards_ran(
    tmp_path: Path, task_folder: TaskFolderFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = task_folder([qa_item(i) for i in range(6)])
    args = ("--model", "random", "--task", "ext-qa", "--include-path", str(folder))
    parts = shards(tmp_path, 2, *args, capsys=capsys)
    out = tmp_path / "merged"
    assert merge(*parts, out=out, capsys=capsys)[0] == 0  # include paths come from the shards
    assert read_results(out).results["ext-qa"].counts["total"] == 6
    spec = folder / "ext-qa.yaml"
    spec.write_text(spec.read_text() + "description: edited\n")
    expect_error(capsys, *parts, out=out, message=f"{spec}: task 'ext-qa' has changed")


def test_results_file_of_a_merge_reads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parts = shards(tmp_path, 2, *QUICK, capsys=capsys)
    assert merge(*parts, out=tmp_path / "merged", capsys=capsys)[0] == 0
    document = json.loads((tmp_path / "merged" / "results.json").read_text())
    assert document["manifest"]["shard"] is None
    assert ResultsFile.model_validate(document).results["mini-qa"].counts["total"] == 12


def test_judge_calls_tokens_and_cost_are_summed_over_shards() -> None:
    from fiqabench.benchmark.merge import ShardRun, _summed_judges
    from fiqabench.benchmark.results import JudgeInfo, ResultsFile, RunManifest, TaskResults
    from fiqabench.benchmark.schema import ModelIdentity
    from fiqabench.benchmark.sharding import Shard

    judge = ModelIdentity(alias="openai:j", runner="openai", model_id="j")

    def shard(index: int, calls: int, cost: float | None) -> ShardRun:
        info = JudgeInfo(
            role="judge", model=judge, template_sha256={"open-v1.j2": "a"}, rounds=5,
            temperature=1.0, n_calls=calls, n_cached=1, input_tokens=10 * calls,
            output_tokens=calls, cost_usd=cost,
        )  # fmt: skip
        entry = TaskResults(
            task="t", protocol="p", model="m", model_id="m", revision=None, judge="rules-v1",
            prompt_template_sha256={}, metrics={}, ci95={}, counts={}, judges=[info],
        )  # fmt: skip
        manifest = RunManifest(model=judge, started_at="2026-01-01T00:00:00+00:00")
        results = ResultsFile(manifest=manifest, results={"t": entry})
        return ShardRun(Path(f"s{index}"), Shard(index, 2), results, [])

    [total] = _summed_judges("t", [shard(1, 10, 0.25), shard(2, 5, 0.5)])
    assert (total.n_calls, total.n_cached, total.input_tokens, total.output_tokens) == (
        15, 2, 150, 15,
    )  # fmt: skip
    assert total.cost_usd == 0.75 and total.rounds == 5
    [unknown] = _summed_judges("t", [shard(1, 10, 0.25), shard(2, 5, None)])
    assert unknown.cost_usd is None  # a cost is only reported when every shard knows it


def test_shards_must_be_judged_alike(
    task_folder: TaskFolderFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.loopback_server import LoopbackServer

    monkeypatch.setenv("FIQABENCH_TEST_JUDGE_KEY", "sk-test")
    folder = task_folder([qa_item(i, "open") for i in range(1, 9)])
    shards = [tmp_path / "s1", tmp_path / "s2"]
    with LoopbackServer(answer=lambda prompt: "Score: 2") as server:
        judge = ["--judge", "openai:j", "--judge-rounds", "2"]
        judge += ["--judge-base-url", f"{server.url}/v1"]
        judge += ["--judge-api-key-env", "FIQABENCH_TEST_JUDGE_KEY"]
        for index, shard in enumerate(shards, start=1):
            args = ["eval", "--model", "random", "--task", "ext-qa", "--include-path", folder]
            args += ["--shard", f"{index}/2", "--output-dir", shard, "--no-progress"]
            assert run_cli(*args, *(judge if index == 1 else []), capsys=capsys)[0] == 0
        merged = tmp_path / "merged"
        code, _, err = run_cli("merge", *shards, "--output-dir", merged, capsys=capsys)
        assert code == 2 and "was not read by the judge openai:j" in err

        assert run_cli("score", "--run", shards[1], *judge, capsys=capsys)[0] == 0
        assert run_cli("merge", *shards, "--output-dir", merged, capsys=capsys)[0] == 0
    entry = read_results(merged).results["ext-qa"]
    assert entry.judge == "rules-v1+judge=openai:j" and entry.metrics["open_score"] == 1.0
    assert entry.judges[0].n_calls == 8 * 2
