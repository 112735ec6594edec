"""Bad data files: each bad sample is a named, counted error; the other samples still run."""

from __future__ import annotations

from pathlib import Path

import pytest

from fiqabench.benchmark.results import read_results, read_samples
from tests.conftest import TaskFolderFactory, qa_item, write_image
from tests.test_cli import run_cli


def test_bad_samples_are_counted_and_named(
    task_folder: TaskFolderFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items: list[dict[str, object] | str] = [
        qa_item(0),
        qa_item(1, image="missing.png"),
        qa_item(2, image="empty.png"),
        qa_item(3, image="truncated.png"),
        qa_item(4, image="text.png"),
        '{"id": "q00005", "image": "img.png", ',
        qa_item(6, options="Sharp"),
        qa_item(7, kind="ranking"),
        qa_item(8, answer="E"),
        qa_item(9, image=["img.png", "second.png"]),
        qa_item(10),
        qa_item(10),
    ]
    folder = task_folder(items)
    (folder / "empty.png").write_bytes(b"")
    write_image(folder / "second.png", seed=2)
    good = (folder / "img.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "text.png").write_text("this is not an image")
    out = tmp_path / "run"

    code, _, err = run_cli(
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
    assert code == 1
    assert "failed, more than --max-error-rate" in err

    records = {r.sample_id: r for r in read_samples(out)}
    data = folder / "items.jsonl"
    expected = {
        "q00001": (str(folder / "missing.png"), "not found"),
        "q00002": (str(folder / "empty.png"), "empty"),
        "q00003": (str(folder / "truncated.png"), "truncated"),
        "q00004": (str(folder / "text.png"), "not an image"),
        "line-6": (f"{data}:6", "malformed JSON"),
        "q00006": (f"{data}:7", "options"),
        "q00007": (f"{data}:8", "type"),
        "q00008": (f"{data}:9", "not among the option letters"),
        "q00010@line-12": (f"{data}:12", "duplicate id"),
    }
    for sample_id, (where, problem) in expected.items():
        record = records[sample_id]
        assert record.status == "error", sample_id
        assert record.error is not None and where in record.error and problem in record.error
        assert "\n" not in record.error
    assert {sid for sid, r in records.items() if r.status != "error"} == {
        "q00000",
        "q00009",
        "q00010",
    }

    results = read_results(out).results["ext-qa"]
    assert results.counts["error"] == len(expected) and results.counts["total"] == len(records)

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
        "--max-error-rate",
        "1",
        capsys=capsys,
    )
    assert code == 0
