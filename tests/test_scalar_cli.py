"""Scalar tasks from the command line: mini-fiqa, data prepare, consistency between runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from fiqabench.benchmark.results import read_results, read_samples
from fiqabench.tasks.mini.generate_fiqa import SOURCES_DIR
from tests.test_cli import run_cli

VARIANTS = ("simple", "utility", "reliability", "classification", "levels")


def test_mini_fiqa_with_the_chance_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code, stdout, _ = run_cli(
        "eval",
        "--model",
        "random",
        "--task",
        "mini-fiqa",
        "--output-dir",
        out,
        "--no-progress",
        capsys=capsys,
    )
    assert code == 0 and "mini-fiqa:simple" in stdout
    results = read_results(out).results
    assert set(results) == {*(f"mini-fiqa:{v}" for v in VARIANTS), "mini-fiqa:consistency"}
    simple = results["mini-fiqa:simple"]
    assert simple.counts["total"] == 171 and simple.metrics["coverage"] == 1.0
    for key in (
        "iso_edc_pauc_01",
        "iso_edc_pauc_20",
        "iso_edc_auc",
        "vlm4fiqa_evr_pauc_20",
        "vlm4fiqa_evr_auc",
        "fnmr_at_fmr",
        "distinct_quality_values",
        "largest_tie_group",
        "srocc",
        "plcc_logistic",
        "vquala_score",
    ):
        assert simple.metrics[key] is not None, key
    edc = simple.curves["iso_edc/fnm_edc"]
    assert edc[0][0] == 0.0 and edc[-1] == (1.0, 0.0)  # from no discard to the end point
    assert "vlm4fiqa_evr/recomputed_threshold" in simple.curves
    # A chance baseline's scores carry no information about the pseudo opinion scores.
    assert abs(simple.metrics["srocc"] or 0.0) < 0.3
    levels = [r for r in read_samples(out) if r.meta.get("variant") == "levels"]
    assert {r.parse_stage for r in levels} == {"level_digit"}


def test_variants_option_selects_prompts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code, _, _ = run_cli(
        "eval",
        "--model",
        "random",
        "--task",
        "mini-fiqa",
        "--variants",
        "levels",
        "--output-dir",
        out,
        "--no-progress",
        "--limit",
        "10",
        capsys=capsys,
    )
    assert code == 0
    assert list(read_results(out).results) == ["mini-fiqa:levels"]
    code, _, err = run_cli(
        "eval",
        "--model",
        "random",
        "--task",
        "mini-fiqa",
        "--variants",
        "fancy",
        "--output-dir",
        out,
        capsys=capsys,
    )
    assert code == 2 and "unknown prompt variant(s) ['fancy']" in err


def test_prepare_scface_then_evaluate_distance_sensitivity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "scface"
    src.mkdir()
    photos = sorted(SOURCES_DIR.glob("*.jpg"))[:3]
    for subject, photo in enumerate(photos, start=1):
        for distance, side in ((1, 48), (2, 96), (3, 192)):
            with Image.open(photo) as image:
                image.convert("RGB").resize((side, side)).save(
                    src / f"{subject:03d}_cam1_{distance}.jpg"
                )
    (src / "notes.jpg").write_bytes((src / "001_cam1_1.jpg").read_bytes())
    out = tmp_path / "prepared"
    code, stdout, _ = run_cli(
        "data", "prepare", "scface", "--src", src, "--out", out, capsys=capsys
    )
    assert code == 0 and "fiqabench eval --include-path" in stdout
    assert (out / "scface.yaml").is_file() and (out / "images.jsonl").is_file()

    run = tmp_path / "run"
    code, _, _ = run_cli(
        "eval",
        "--model",
        "random",
        "--task",
        "scface",
        "--include-path",
        out,
        "--output-dir",
        run,
        "--no-progress",
        capsys=capsys,
    )
    assert code == 0
    entry = read_results(run).results["scface:simple"]
    sensitivity = entry.details["surveillance"]
    assert {name: d["n"] for name, d in sensitivity["distances"].items()} == {
        "far": 3,
        "medium": 3,
        "close": 3,
    }
    assert entry.metrics["scface_monotonic"] in (0.0, 1.0)


def test_consistency_between_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = []
    for seed in ("0", "1"):
        out = tmp_path / f"run{seed}"
        run_cli(
            "eval",
            "--model",
            "random",
            "--task",
            "mini-fiqa",
            "--variants",
            "simple",
            "--seed",
            seed,
            "--output-dir",
            out,
            "--no-progress",
            capsys=capsys,
        )
        runs.append(out)
    report = tmp_path / "agreement.json"
    code, stdout, _ = run_cli("consistency", *runs, "--output", report, capsys=capsys)
    assert code == 0 and "mini-fiqa" in stdout
    rows = json.loads(report.read_text())
    assert len(rows) == 1 and rows[0]["agreement"]["n"] == 171
    assert abs(rows[0]["agreement"]["pearson"]) < 0.3  # two independent chance runs

    code, _, _ = run_cli("consistency", runs[0], runs[0], "--output", report, capsys=capsys)
    same = json.loads(report.read_text())[0]["agreement"]
    assert same["pearson"] == pytest.approx(1.0) and same["mae"] == 0.0


def test_lfw_pairs_file_as_comparisons(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "lfw"
    names = {
        "Barack_Obama": ["obama", "obama2", "obama3"],
        "Joe_Biden": ["biden"],
        "Grace_Hopper": ["grace_hopper"],
    }
    rows = []
    for person, stems in names.items():
        for number, stem in enumerate(stems, start=1):
            target = folder / person / f"{person}_{number:04d}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(next(SOURCES_DIR.glob(f"*__{stem}.jpg")), target)
            image_id = f"{person}/{person}_{number:04d}.jpg"
            rows.append({"id": image_id, "image": image_id, "subject": person})
    (folder / "images.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "pairs.txt").write_text(
        "1 2\nBarack_Obama 1 2\nBarack_Obama 2 3\nBarack_Obama 1 Joe_Biden 1\n"
        "Joe_Biden 1 Grace_Hopper 1\n"
    )
    (folder / "lfw.yaml").write_text(
        "name: lfw-mini\nkind: scalar\nprotocol: p\ndata:\n  jsonl: images.jsonl\n"
        "scalar:\n  comparisons: pairs.txt\n  embeddings: null\n"
    )
    out = tmp_path / "run"
    code, _, _ = run_cli(
        "eval",
        "--model",
        "random",
        "--task",
        "lfw-mini",
        "--include-path",
        folder,
        "--output-dir",
        out,
        "--no-progress",
        capsys=capsys,
    )
    assert code == 0
    entry = read_results(out).results["lfw-mini:simple"]
    assert entry.details["utility"]["fr_models"] == ["sface"]
    assert entry.metrics["fnmr_at_fmr"] == 0.0  # SFace separates these photos cleanly
