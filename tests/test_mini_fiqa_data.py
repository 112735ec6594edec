"""The shipped mini-fiqa data: complete, consistent with its generator, and deterministic."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

from fiqabench.tasks.mini import generate_fiqa as gen


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_shipped_data_matches_its_plan() -> None:
    images = [
        json.loads(line) for line in (gen.FIQA_DIR / "images.jsonl").read_text().split("\n") if line
    ]
    assert len(images) == 9 * (1 + 6 * 3)
    assert all((gen.FIQA_DIR / row["image"]).is_file() for row in images)
    mos = {row["image"]: float(row["mos"]) for row in _rows(gen.FIQA_DIR / "mos.csv")}
    for row in images:
        assert mos[row["id"]] == 100 - 25 * row["severity"]
    comparisons = _rows(gen.FIQA_DIR / "comparisons.csv")
    assert len(comparisons) == len(images) * (len(images) - 1) // 2
    subject = {row["id"]: row["subject"] for row in images}
    assert all(
        (row["mated"] == "1") == (subject[row["a"]] == subject[row["b"]]) for row in comparisons
    )


def test_sface_similarities_separate_identities_on_clean_images() -> None:
    rows = [
        r
        for r in _rows(gen.FIQA_DIR / "comparisons.csv")
        if r["a"].endswith("__clean.jpg") and r["b"].endswith("__clean.jpg")
    ]
    mated = [float(r["similarity_sface"]) for r in rows if r["mated"] == "1"]
    nonmated = [float(r["similarity_sface"]) for r in rows if r["mated"] == "0"]
    assert min(mated) > 0.363 > max(nonmated)  # SFace's published same-person threshold


def test_regeneration_is_deterministic(tmp_path: Path) -> None:
    gen.generate(tmp_path, seed=0)
    for name in ("images.jsonl", "mos.csv"):
        assert (tmp_path / name).read_text() == (gen.FIQA_DIR / name).read_text()
    fresh, shipped = _rows(tmp_path / "comparisons.csv"), _rows(gen.FIQA_DIR / "comparisons.csv")
    assert [(r["a"], r["b"], r["mated"]) for r in fresh] == [
        (r["a"], r["b"], r["mated"]) for r in shipped
    ]
    difference = [
        abs(float(f["similarity_sface"]) - float(s["similarity_sface"]))
        for f, s in zip(fresh, shipped, strict=True)
    ]
    assert max(difference) < 0.02  # JPEG encoders and ONNX kernels may differ slightly
    for image in sorted((gen.FIQA_DIR / "images").iterdir())[::17]:
        a = np.asarray(Image.open(image), dtype=float)
        b = np.asarray(Image.open(tmp_path / "images" / image.name), dtype=float)
        assert np.abs(a - b).mean() < 1.0
