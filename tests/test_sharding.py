"""`--shard I/N`: parsing, a deterministic split by hashed sample id, and eval on one shard."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from fiqabench.benchmark.results import read_results, read_samples
from fiqabench.benchmark.sharding import Shard
from fiqabench.errors import UserError
from fiqabench.tasks.registry import TaskRegistry
from tests.test_cli import run_cli


@dataclass(frozen=True)
class Item:
    id: str


def test_parse_and_text() -> None:
    assert Shard.parse("2/4") == Shard(2, 4)
    assert Shard.parse(" 1 / 1 ") == Shard(1, 1)
    assert str(Shard(3, 8)) == "3/8"


@pytest.mark.parametrize("text", ["2", "2of4", "2/4/1", "-1/4", "a/b", "", "1.5/3"])
def test_parse_refuses_other_forms(text: str) -> None:
    with pytest.raises(UserError, match=r"--shard takes I/N, e\.g\. 2/4"):
        Shard.parse(text)


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "0/0"])
def test_shards_are_numbered_from_one_to_n(text: str) -> None:
    with pytest.raises(UserError, match=r"does not exist: shards are numbered 1/N to N/N"):
        Shard.parse(text)


def test_pinned_example() -> None:
    # Pinned: shards of one run may be computed by different installs, which must agree.
    ids = [f"q{i}" for i in range(8)]
    assert [Shard(i, 3).positions(ids) for i in (1, 2, 3)] == [[0, 2, 7], [1, 3, 4], [5, 6]]


@pytest.mark.parametrize("count", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("total", [0, 1, 6, 23])
def test_shards_partition_the_samples_by_hashed_id(count: int, total: int) -> None:
    items = [Item(f"item-{i}") for i in range(total)]
    # Independently: rank by the hex digest, deal the ranks out like cards.
    ranked = sorted(range(total), key=lambda p: hashlib.sha256(items[p].id.encode()).hexdigest())
    taken: list[int] = []
    for index in range(1, count + 1):
        shard = Shard(index, count)
        positions = shard.positions([item.id for item in items])
        assert positions == sorted(ranked[index - 1 :: count])
        assert shard.select(items) == [items[p] for p in positions]  # the task's own order
        assert len(positions) in (total // count, -(-total // count))  # sizes differ by <= 1
        taken.extend(positions)
    assert sorted(taken) == list(range(total))  # each sample in exactly one shard


def test_repeated_ids_are_still_split_exactly() -> None:
    items = [Item("same")] * 5
    sizes = [len(Shard(i, 2).select(items)) for i in (1, 2)]
    assert sizes == [3, 2]


def test_every_shard_of_mini_qa_mixes_all_question_types() -> None:
    # mini-qa repeats single, multi, tf, open per image: striding by 4 would give one shard
    # only open questions. The hashed order does not follow the data's period.
    samples = TaskRegistry().get("mini-qa").samples()
    for index in range(1, 5):
        types = {sample.meta["type"] for sample in Shard(index, 4).select(samples)}
        assert types == {"single", "multi", "tf", "open"}


def test_eval_runs_one_shard_after_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code, stdout, _ = run_cli(
        "eval",
        "--model",
        "random",
        "--task",
        "mini-qa",
        "--limit",
        "10",
        "--shard",
        "2/3",
        "--output-dir",
        out,
        "--no-progress",
        capsys=capsys,
    )
    assert code == 0
    expected = Shard(2, 3).select(TaskRegistry().get("mini-qa").samples()[:10])
    assert [r.sample_id for r in read_samples(out)] == [s.id for s in expected]
    results = read_results(out)
    assert results.manifest.shard == "2/3"
    assert results.manifest.tasks[0].n_samples == len(expected)
    assert results.results["mini-qa"].counts["total"] == len(expected)
    assert "partial results: shard 2/3 holds 1/3 of each task's samples" in " ".join(stdout.split())


def test_unsharded_runs_record_no_shard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = ("eval", "--model", "random", "--task", "mini-qa", "--limit", "3", "--no-progress")
    code, stdout, _ = run_cli(*args, "--output-dir", out, capsys=capsys)
    assert code == 0 and "partial" not in stdout
    assert read_results(out).manifest.shard is None


def test_default_output_folder_names_the_shard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ("eval", "--model", "random", "--task", "mini-qa", "--limit", "4", "--no-progress")
    code, _, _ = run_cli(*args, "--shard", "1/2", capsys=capsys)
    assert code == 0
    assert read_results(tmp_path / "runs" / "random-shard-1-of-2").manifest.shard == "1/2"


def test_bad_shard_is_a_one_line_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("eval", "--model", "random", "--task", "mini-qa", "--no-progress")
    code, _, err = run_cli(*args, "--shard", "4/3", "--output-dir", tmp_path / "r", capsys=capsys)
    assert code == 2
    assert (
        err.strip() == "error: --shard 4/3 does not exist: shards are numbered 1/N to N/N, e.g. 1/3"
    )
    assert not (tmp_path / "r").exists()
