"""Degradation detection end to end: oracle predictions, parse failures, data prepare mixdeg."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fiqabench.benchmark.results import read_results, read_samples
from fiqabench.tasks.mini.generate_fiqa import SOURCES_DIR
from fiqabench.tasks.mixdeg import ARTIFACTS, FLAG_KEYS, MINI_DIR
from tests.test_cli import run_cli


def _manifest() -> list[dict[str, object]]:
    lines = (MINI_DIR / "manifest.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line]


def _answer(item: dict[str, object], score: float) -> str:
    truth = item["artifacts"]
    assert isinstance(truth, dict)
    flags = {FLAG_KEYS[name]: bool(truth[name]) for name in ARTIFACTS}
    return json.dumps({"quality_score": score, **flags})


def test_oracle_predictions_score_perfectly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = _manifest()
    predictions = tmp_path / "oracle.jsonl"
    lines = []
    for item in items:
        ladder = item["ladder"]
        step = ladder["step"] if isinstance(ladder, dict) else 0
        # Quality falls with ladder strength, as a consistent model's would.
        lines.append(
            json.dumps({"sample_id": item["id"], "response": _answer(item, 90 - 10 * step)})
        )
    predictions.write_text("\n".join(lines) + "\n")
    code, stdout, _ = run_cli(
        "score",
        "--task",
        "mini-degradation",
        "--predictions",
        predictions,
        "--output-dir",
        tmp_path / "scored",
        capsys=capsys,
    )
    assert code == 0 and "mini-degradation" in stdout
    metrics = read_results(tmp_path / "scored").results["mini-degradation"].metrics
    assert metrics["hallucination_rate"] == 0.0 and metrics["clean_fp0_share"] == 1.0
    assert metrics["hard_recall"] == 1.0 and metrics["complete3_share"] == 1.0
    assert metrics["hamming_d0_share"] == 1.0 and metrics["hamming_mean"] == 0.0
    for artifact in ARTIFACTS:
        assert metrics[f"{artifact}_f1"] == 1.0
    assert metrics["ladder_spearman_blur"] == pytest.approx(-1.0)


def test_unparseable_answers_are_counted_not_guessed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = _manifest()
    broken = {"quality_score": 50, "has_blur": True}  # four flags missing
    lines = [json.dumps({"sample_id": items[0]["id"], "response": json.dumps(broken)})]
    lines += [
        json.dumps({"sample_id": item["id"], "response": _answer(item, 50)}) for item in items[1:]
    ]
    predictions = tmp_path / "p.jsonl"
    predictions.write_text("\n".join(lines) + "\n")
    run_cli(
        "score",
        "--task",
        "mini-degradation",
        "--predictions",
        predictions,
        "--output-dir",
        tmp_path / "scored",
        capsys=capsys,
    )
    entry = read_results(tmp_path / "scored").results["mini-degradation"]
    assert entry.counts["parse_fail"] == 1
    level = items[0]["level"]
    assert entry.metrics[f"n_unparsed_{level}"] == 1
    first = next(r for r in read_samples(tmp_path / "scored") if r.sample_id == items[0]["id"])
    assert first.status == "parse_fail" and first.parse_stage == "missing_keys"


def test_prepare_mixdeg_then_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "faces"
    src.mkdir()
    for photo in sorted(SOURCES_DIR.glob("*.jpg"))[:2]:
        shutil.copy(photo, src / photo.name)
    out = tmp_path / "mixdeg"
    code, stdout, _ = run_cli(
        "data",
        "prepare",
        "mixdeg",
        "--src",
        src,
        "--out",
        out,
        "--variants",
        "2",
        "--max-side",
        "128",
        "--no-ladders",
        capsys=capsys,
    )
    assert code == 0 and "--task mixdeg" in stdout
    run = tmp_path / "run"
    code, _, _ = run_cli(
        "eval",
        "--model",
        "random",
        "--task",
        "mixdeg",
        "--include-path",
        out,
        "--output-dir",
        run,
        "--no-progress",
        capsys=capsys,
    )
    assert code == 0
    entry = read_results(run).results["mixdeg"]
    assert entry.counts["total"] == 2 * (1 + 2)
    assert entry.metrics["clean_n"] == 2 and entry.metrics["mixed_n"] == 4
