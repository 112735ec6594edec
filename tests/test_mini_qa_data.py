"""The shipped mini-qa data: valid, balanced, reproducible, and true by construction."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from fiqabench.benchmark.schema import QAItem
from fiqabench.tasks.mini import generate_qa as gen

ITEMS = gen.QA_DIR / "items.jsonl"
SUBDIMENSIONS = {
    "technical": {"noise", "blur", "exposure", "color", "artifacts"},
    "aesthetics": {"composition", "lighting", "style"},
}
Record = dict[str, Any]
FloatArray = npt.NDArray[np.float64]


def read(path: Path) -> list[Record]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return read(ITEMS)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mini-qa")
    gen.generate(out, seed=0)
    return out


def pixels(path: Path) -> FloatArray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64)


def clean_reference(record: Record) -> FloatArray:
    """The untouched source with the item's crop: what the image would be without edits."""
    source = pixels(gen.SOURCES_DIR / record["source_image"])
    if record["crop"]:
        x, y, w, h = record["crop"]
        source = source[y : y + h, x : x + w]
    return source


def luma(image: FloatArray) -> FloatArray:
    result: FloatArray = image @ np.array([0.299, 0.587, 0.114])
    return result


def laplacian_var(image: FloatArray) -> float:
    g = luma(image)
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]
    return float(lap.var())


def residual(image: FloatArray) -> float:
    """High-frequency energy: mean |pixel - mean of its 4 neighbours| of the luma."""
    g = luma(image)
    smooth = (g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]) / 4
    return float(np.abs(g[1:-1, 1:-1] - smooth).mean())


def chroma(image: FloatArray) -> float:
    return float(np.ptp(image, axis=2).mean())


def face(image: FloatArray, record: Record) -> FloatArray:
    x, y, w, h = record["face_box"]
    return image[y : y + h, x : x + w]


def strips(image: FloatArray, record: Record) -> list[FloatArray]:
    """Full-height strips left and right of the face region, clear of its feathered edge."""
    x, _, w, _ = record["face_region"]
    margin = round(gen.FEATHER * w) + 2
    parts = [image[:, : max(x - margin, 0)], image[:, x + w + margin :]]
    return [p for p in parts if p.shape[1] >= 12]


def scenes(records: list[Record]) -> list[Record]:
    """One record per image (the four questions of a scene share it)."""
    first: dict[str, Record] = {}
    for record in records:
        first.setdefault(record["image"], record)
    return list(first.values())


def test_every_line_is_a_valid_item(records: list[Record]) -> None:
    items = [QAItem.model_validate(record) for record in records]
    assert len(items) >= 200
    ids = [item.id for item in items]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"mqa-\d{4}", i) for i in ids)
    for item in items:
        if item.type in ("single", "multi"):
            assert item.options and len(item.options) == 4 == len(set(item.options))
        if item.type == "open":
            assert isinstance(item.answer, str) and len(item.answer) > 20


def test_images_exist_and_sources_are_documented(records: list[Record]) -> None:
    for record in records:
        assert (ITEMS.parent / record["image"]).is_file(), record["image"]
        assert (gen.SOURCES_DIR / record["source_image"]).is_file()
        assert record["source"] == ("synthetic-distortion" if record["degradations"] else "natural")
    provenance = json.loads((gen.SOURCES_DIR / "provenance.json").read_text(encoding="utf-8"))
    assert "YuNet" in provenance["detector"]["name"]
    for entry in provenance["files"]:
        assert entry["license"] and entry["origin"] and entry["identity"]
        with Image.open(gen.SOURCES_DIR / entry["file"]) as image:
            assert list(image.size) == entry["size"] and max(image.size) <= 384
        x, y, w, h = entry["box"]
        assert min(x, y) >= 0 and x + w <= entry["size"][0] and y + h <= entry["size"][1]


def test_data_folder_stays_small() -> None:
    folders = (gen.SOURCES_DIR, gen.QA_DIR)
    total = sum(p.stat().st_size for folder in folders for p in folder.rglob("*") if p.is_file())
    assert total < 4.5 * 2**20


def test_balance(records: list[Record]) -> None:
    n = len(records)
    types = Counter(r["type"] for r in records)
    assert set(types) == {"single", "multi", "tf", "open"}
    assert all(0.2 * n <= count <= 0.3 * n for count in types.values()), types
    scopes = Counter(r["scope"] for r in records)
    assert all(0.4 * n <= scopes[s] <= 0.6 * n for s in ("global", "local")), scopes
    dimensions = Counter(r["dimension"] for r in records)
    assert set(dimensions) == set(SUBDIMENSIONS)
    assert all(count >= 0.3 * n for count in dimensions.values()), dimensions
    subs = Counter((r["dimension"], r["subdimension"]) for r in records)
    assert {(d, s) for d, group in SUBDIMENSIONS.items() for s in group} == set(subs)
    assert min(subs.values()) >= 12, subs
    sources = Counter(r["source"] for r in records)
    assert sources["natural"] >= 0.1 * n and sources["synthetic-distortion"] >= 0.5 * n
    tf = Counter(r["answer"] for r in records if r["type"] == "tf")
    assert abs(tf[True] - tf[False]) <= 0.1 * (tf[True] + tf[False])


def test_correct_letters_are_spread(records: list[Record]) -> None:
    singles = Counter(r["answer"] for r in records if r["type"] == "single")
    total = sum(singles.values())
    assert set(singles) == set("ABCD") and min(singles.values()) >= 0.2 * total, singles
    multi = [r["answer"] for r in records if r["type"] == "multi"]
    letters = Counter(letter for answer in multi for letter in answer)
    assert set(letters) == set("ABCD") and min(letters.values()) >= 0.1 * sum(letters.values())
    sizes = Counter(len(answer) for answer in multi)
    assert sizes[1] and sizes[2] and sizes[1] < len(multi)  # "one or more" really varies


def test_regeneration_is_identical(records: list[Record], regenerated: Path) -> None:
    assert (regenerated / "items.jsonl").read_bytes() == ITEMS.read_bytes()
    for record in scenes(records):
        shipped, fresh = (
            pixels(ITEMS.parent / record["image"]),
            pixels(regenerated / record["image"]),
        )
        assert shipped.shape == fresh.shape
        assert np.abs(shipped - fresh).mean() < 1.0, record["image"]


def test_another_seed_gives_another_set(records: list[Record], tmp_path: Path) -> None:
    other = gen.generate(tmp_path, seed=1)
    assert len(other) == len(records)
    assert [r["question"] for r in other] != [r["question"] for r in records]
    assert [r["degradations"] for r in other] != [r["degradations"] for r in records]


def ops(record: Record, name: str) -> list[str]:
    return [d["region"] for d in record["degradations"] if d["name"] == name]


def region_check(
    records: list[Record],
    name: str,
    measure: Callable[[FloatArray], float],
    factor: float,
    confounders: frozenset[str] = frozenset(),
) -> int:
    """For every image with ``name`` applied, ``measure`` in each edited region must move by
    ``factor`` against the clean reference (down if factor < 1, up if > 1), and an untouched
    face box must stay put. Regions also edited by a ``confounders`` op are skipped (noise
    raises the Laplacian variance that blur lowers). Returns how many regions were checked."""
    checked = 0
    for record in scenes(records):
        regions = ops(record, name)
        if not regions:
            continue
        image, clean = pixels(ITEMS.parent / record["image"]), clean_reference(record)
        others = {d["region"] for d in record["degradations"] if d["name"] != name}
        mixed = {d["region"] for d in record["degradations"] if d["name"] in confounders}
        for part in ("face", "background"):
            hit = {part, "global"}
            if not hit & set(regions) or hit & mixed:
                if part == "face" and not hit & (set(regions) | others):
                    assert measure(face(image, record)) == pytest.approx(
                        measure(face(clean, record)), rel=0.3
                    )
                continue
            if part == "face":
                pairs = [(face(image, record), face(clean, record))]
            else:
                pairs = list(zip(strips(image, record), strips(clean, record), strict=True))
            for new, old in pairs:
                _moved(measure(new), measure(old), factor, record)
                checked += 1
    return checked


def _moved(new: float, old: float, factor: float, record: Record) -> None:
    assert (new < factor * old) if factor < 1 else (new > factor * old), (record["id"], new, old)


def test_blur_items_are_blurred_where_they_say(records: list[Record]) -> None:
    assert region_check(records, "blur", laplacian_var, 0.2, frozenset({"noise"})) >= 10


def test_noise_items_are_noisy_where_they_say(records: list[Record]) -> None:
    assert region_check(records, "noise", residual, 3.0) >= 10


def test_grayscale_and_shadow_items(records: list[Record]) -> None:
    assert region_check(records, "gray", chroma, 0.05) >= 6
    assert region_check(records, "shadow", lambda im: float(luma(im).mean()), 0.3) >= 6


def test_global_exposure_and_jpeg_items(records: list[Record]) -> None:
    for record in scenes(records):
        image, clean = pixels(ITEMS.parent / record["image"]), clean_reference(record)
        if ops(record, "under"):
            assert luma(image).mean() < 0.6 * luma(clean).mean()
        if ops(record, "over"):
            assert luma(image).mean() > 1.3 * luma(clean).mean()
        if ops(record, "jpeg"):
            jumps = np.abs(np.diff(luma(image), axis=1))
            assert jumps[:, 7::8].mean() > 1.5 * np.delete(jumps, np.s_[7::8], axis=1).mean()


def test_natural_images_are_the_untouched_sources(records: list[Record]) -> None:
    for record in scenes(records):
        if record["source"] == "natural":
            diff = np.abs(pixels(ITEMS.parent / record["image"]) - clean_reference(record))
            assert diff.mean() < 2.0, record["image"]


def test_composition_answers_match_the_face_position(records: list[Record]) -> None:
    labels = {label: key for key, (label, _) in gen.POSITIONS.items()}
    checked = 0
    for record in records:
        if record["subdimension"] != "composition" or record["type"] != "single":
            continue
        position = labels[record["options"]["ABCD".index(record["answer"])]]
        width = record["crop"][2]
        x, _, w, _ = record["face_box"]
        centre = (x + w / 2) / width
        detected = next(
            e["box"]
            for e in json.loads((gen.SOURCES_DIR / "provenance.json").read_text())["files"]
            if e["file"] == record["source_image"]
        )
        cut = w < 0.8 * detected[2]
        expected = {"centre": 0.4 < centre < 0.6, "left": centre < 0.3, "right": centre > 0.7}
        assert cut if position == "cut" else (not cut and expected[position]), record["id"]
        checked += 1
    assert checked >= 5
