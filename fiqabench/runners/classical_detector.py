"""Classical degradation detector: the non-VLM row of the mix-degradation leaderboard.

For each request's first image the runner measures five statistics, compares them with
thresholds calibrated on images disjoint from the benchmark's faces, and answers exactly as a
model following the detection prompt would (protocols.md section 6)::

    {"quality_score": 62.5, "has_blur": true, "has_noise": false, "has_low_resolution": true,
     "has_compression": false, "has_poor_lighting": false}

The text is parsed by the task like any model's reply. Each detector compares one statistic
with its threshold; their known blind spots:

- blur, ``sharpness``: log10 of the variance of OpenCV's 3x3 Laplacian of the luma
  (:func:`fiqabench.runners.classical.laplacian_variance`) less what the image's noise adds
  (80 sigma^2 for that kernel, sigma from the wavelet estimate below): detail at the finest
  scale; fires when low. It depends on contrast (a dark, flat image reads as soft), and noise of
  sigma 30 or more, which the subtraction cannot remove exactly, hides blur.
- low resolution, ``detail``: log10 of the luma's spectral energy above 0.25 cycles/px (all
  that a x2 downscale loses) over that above 0.02, after the white-noise floor is taken off
  every frequency; fires when low. Gaussian blur and a bicubic down-up-sample are the same
  low-pass to every statistic tried (this one, the Laplacian, ``skimage.measure.blur_effect``,
  the residual of a down-up-sampled copy): a soft image usually gets both flags, and JPEG at
  quality 10 or lower, which discards fine detail too, often reads as low resolution.
  Nearest-neighbour pixelation has sharp block edges and is not seen.
- noise, ``noise``: ``skimage.restoration.estimate_sigma`` (median absolute finest diagonal
  wavelet coefficient, Donoho), mean of R, G and B, 0-255 units; fires when high. Fine texture
  (hair, fabric, gravel) reads as noise; strong JPEG after the noise removes most of it.
- compression, ``blockiness``: on the luma, the mean absolute difference between neighbouring
  pixels across the 8x8 block boundaries over that across the block middles, rows and columns
  averaged; about 1 without blocks; fires when high. A crop or resize after the compression
  moves the grid and hides it; a photo that was a JPEG before (even quality 85) shows some.
- poor lighting, ``brightness``: centre-weighted mean luma (BT.601, 0-255; Gaussian weights,
  sigma a quarter of each side, like a camera's centre-weighted metering, because dark suits and
  backgrounds fill a portrait's edges); fires below the under-exposure threshold or above the
  over-exposure one. A naturally dark portrait can read as under-exposed, and a mild
  brightening (gamma 0.7) of a dark portrait looks well exposed; it is often missed.

Quality score (0-100): 100 times the product, over the detectors that fire, of (1 - penalty),
penalty = 0.25 + 0.25 * severity, where severity runs from 0 at the threshold to 1 at the median
statistic of the calibration images carrying that artifact hard and alone (``<detector>.hard``
in the thresholds file). An image with no flag scores 100, one mild artifact about 70, one hard
50; a soft image usually loses to both blur and low resolution (25 when hard).

Calibration (``python -m fiqabench.runners.classical_detector --calibrate``) draws, from
scikit-image's bundled photographs (never the astronaut, one of the benchmark's faces), full
frames and portrait-shaped crops at 512, 256 and 192 px (never enlarged), and degrades each as
the benchmark does (:mod:`fiqabench.tasks.mixdeg`: its strengths, blur scaling and order of
application): clean, every artifact alone mild and hard (exposure in both directions) and
protocol mixes (three artifacts, one hard). Each detector's threshold maximises the balanced
accuracy between the images with its artifact and those without (the other artifacts included).
The thresholds, the settings, the seed, the image list and the date are written to
``classical_detector_thresholds.json`` beside this module, which the runner reads. Each
statistic was chosen for its balanced accuracy on the calibration set, except brightness: the
plain mean luma scored a little higher there (0.88 vs 0.87 dark, 0.84 vs 0.83 bright) but gave
twice the false alarms on the shipped portraits; that comparison saw the portraits, the
thresholds never did.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fiqabench import __version__
from fiqabench.benchmark.images import ImageError, load_rgb
from fiqabench.benchmark.schema import Request, Response
from fiqabench.errors import UserError
from fiqabench.extras import require
from fiqabench.runners.base import ModelIdentity
from fiqabench.runners.classical import MIN_SIDE, RGB, Floats, laplacian_variance, luma
from fiqabench.tasks.mixdeg import (
    APPLY_ORDER,
    ARTIFACTS,
    ARTIFACTS_PER_MIX,
    EXPOSURE_GAMMA,
    FLAG_KEYS,
    MIN_BLUR_SCALE,
    REFERENCE_SIDE,
    STRENGTHS,
    Artifact,
    Direction,
    Intensity,
    Params,
    apply_artifact,
)

EXTRA = "classical"
MODULES = ("cv2", "skimage.restoration", "pywt")  # pywt: estimate_sigma's wavelets
THRESHOLDS_FILE = Path(__file__).with_name("classical_detector_thresholds.json")
FILE_FORMAT = 1
SCORE_KEY = "quality_score"

# ---------------------------------------------------------------------------------------------
# Statistics

# Sum of the squared taps of OpenCV's ksize-3 Laplacian [[2, 0, 2], [0, -8, 0], [2, 0, 2]]:
# white noise of variance s^2 adds 80 s^2 to the Laplacian's variance.
LAPLACIAN_NOISE_GAIN = 80.0
BLOCK = 8  # JPEG's block size in pixels
_FLAT = 0.1  # grey levels added to both sides of the blockiness ratio: 1 for a flat image
DETAIL_CUTOFF = 0.25  # cycles/px: half the Nyquist frequency, the most a x2 downscale keeps
DETAIL_FLOOR = 0.02  # cycles/px: below this is the image's layout rather than its detail
_NO_POWER = 1e-6  # keeps the share defined for a flat image (then 1: nothing lost)


def _estimate_sigma(image: Any, **options: Any) -> float:
    restoration = require("skimage.restoration", EXTRA)
    return float(restoration.estimate_sigma(image, **options))


def noise_sigma(rgb: RGB) -> float:
    """Wavelet estimate of the Gaussian noise's standard deviation, mean of R, G, B (0-255)."""
    return _estimate_sigma(rgb, channel_axis=-1, average_sigmas=True)


def sharpness(rgb: RGB) -> float:
    """log10 of the Laplacian variance of the luma, less the part the luma's noise explains."""
    luma_sigma = _estimate_sigma(luma(rgb))
    detail = laplacian_variance(rgb) - LAPLACIAN_NOISE_GAIN * luma_sigma**2
    return math.log10(max(detail, 1.0))  # 1: at most the noise, i.e. no detail at all


def _boundary_ratio(differences: Floats) -> float:
    """Mean difference across block boundaries over that across block middles (last axis).

    The middle (between pixels 8k+3 and 8k+4) has the boundary's phase on every 2- and 4-px
    grid, so the periodic pattern of a x2 or x4 upscale does not read as blocks.
    """
    across = float(differences[..., BLOCK - 1 :: BLOCK].mean())
    middle = float(differences[..., BLOCK // 2 - 1 :: BLOCK].mean())
    return (across + _FLAT) / (middle + _FLAT)


def blockiness(rgb: RGB) -> float:
    """JPEG blocking on the luma's 8-px grid: about 1 without blocks, 2-10 for heavy JPEG."""
    gray = luma(rgb)
    horizontal = np.abs(np.diff(gray, axis=1))
    vertical = np.abs(np.diff(gray, axis=0)).T
    return (_boundary_ratio(horizontal) + _boundary_ratio(vertical)) / 2


def detail_share(rgb: RGB) -> float:
    """log10 of the luma's spectral energy above DETAIL_CUTOFF over that above DETAIL_FLOOR.

    The white-noise floor (the wavelet noise estimate) is taken off every frequency first, so
    that noise does not pass for detail.
    """
    gray = luma(rgb)
    noise_power = _estimate_sigma(gray) ** 2
    height, width = gray.shape
    window = np.outer(np.hanning(height), np.hanning(width))  # no wrap-around edge energy
    power = np.abs(np.fft.fft2((gray - gray.mean()) * window)) ** 2
    power = np.maximum(power - noise_power * float((window**2).sum()), 0.0)
    radius = np.hypot(np.fft.fftfreq(height)[:, None], np.fft.fftfreq(width)[None, :])
    fine = float(power[radius > DETAIL_CUTOFF].sum())
    structure = float(power[radius > DETAIL_FLOOR].sum())
    return math.log10((fine + _NO_POWER) / (structure + _NO_POWER))


def brightness(rgb: RGB) -> float:
    """Centre-weighted mean BT.601 luma, 0-255: Gaussian weights, sigma a quarter of each side."""
    gray = luma(rgb)
    rows, cols = (_centre_weights(size) for size in gray.shape)
    return float(rows @ gray @ cols / (rows.sum() * cols.sum()))


def _centre_weights(size: int) -> Floats:
    offsets = np.arange(size) + 0.5 - size / 2
    weights: Floats = np.exp(-0.5 * (offsets / (size / 4)) ** 2)
    return weights


STATISTICS: dict[str, Callable[[RGB], float]] = {
    "sharpness": sharpness,
    "detail": detail_share,
    "noise": noise_sigma,
    "blockiness": blockiness,
    "brightness": brightness,
}


def measure(rgb: RGB) -> dict[str, float]:
    """Every statistic of an RGB uint8 image; ValueError for an image under MIN_SIDE px."""
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ValueError(f"image is {width}x{height}; the detector needs {MIN_SIDE} px a side")
    return {name: statistic(rgb) for name, statistic in STATISTICS.items()}


# ---------------------------------------------------------------------------------------------
# Decisions


@dataclass(frozen=True)
class Detector:
    """One decision: `statistic` below (or above) the threshold sets `artifact`'s flag."""

    statistic: str
    fires_below: bool
    artifact: Artifact
    direction: Direction | None = None  # poor lighting only: the side it detects

    def fires(self, value: float, threshold: float) -> bool:
        return value < threshold if self.fires_below else value > threshold


DETECTORS: dict[str, Detector] = {
    "blur": Detector("sharpness", True, "blur"),
    "low_resolution": Detector("detail", True, "low_resolution"),
    "noise": Detector("noise", False, "noise"),
    "compression": Detector("blockiness", False, "compression"),
    "underexposure": Detector("brightness", True, "poor_lighting", "under"),
    "overexposure": Detector("brightness", False, "poor_lighting", "over"),
}
BASE_PENALTY = 0.25  # share of the score an artifact costs at its threshold
SEVERITY_PENALTY = 0.25  # and the extra share at its typical hard strength


def hard_key(detector: str) -> str:
    """Thresholds-file key of the detector's statistic at hard strength (quality anchor)."""
    return f"{detector}.hard"


def fired(statistics: Mapping[str, float], thresholds: Mapping[str, float]) -> dict[str, bool]:
    """Whether each detector fires."""
    return {
        name: detector.fires(statistics[detector.statistic], thresholds[name])
        for name, detector in DETECTORS.items()
    }


def flags(decisions: Mapping[str, bool]) -> dict[Artifact, bool]:
    """Each artifact's flag: set when any of its detectors fires."""
    return {
        artifact: any(decisions[n] for n, d in DETECTORS.items() if d.artifact == artifact)
        for artifact in ARTIFACTS
    }


def severity(value: float, threshold: float, hard: float) -> float:
    """0 at the threshold, 1 at (or past) the typical hard value, linear in between."""
    span = hard - threshold
    return 1.0 if span == 0 else min(max((value - threshold) / span, 0.0), 1.0)


def quality_score(statistics: Mapping[str, float], thresholds: Mapping[str, float]) -> float:
    """100 times the product of (1 - penalty) over the detectors that fire (module doc)."""
    score = 100.0
    for name, did_fire in fired(statistics, thresholds).items():
        if did_fire:
            value = statistics[DETECTORS[name].statistic]
            how_bad = severity(value, thresholds[name], thresholds[hard_key(name)])
            score *= 1.0 - (BASE_PENALTY + SEVERITY_PENALTY * how_bad)
    return score


def answer_text(statistics: Mapping[str, float], thresholds: Mapping[str, float]) -> str:
    """The detection prompt's strict JSON: the quality score, then one boolean per artifact."""
    answer: dict[str, float | bool] = {SCORE_KEY: round(quality_score(statistics, thresholds), 1)}
    for artifact, flag in flags(fired(statistics, thresholds)).items():
        answer[FLAG_KEYS[artifact]] = flag
    return json.dumps(answer)


# ---------------------------------------------------------------------------------------------
# Thresholds file

THRESHOLD_KEYS = tuple(key for name in DETECTORS for key in (name, hard_key(name)))


def check_thresholds(thresholds: Mapping[str, Any], path: Path) -> dict[str, float]:
    """The thresholds as floats; UserError when one is missing or not a finite number."""
    missing = [key for key in THRESHOLD_KEYS if key not in thresholds]
    if missing:
        raise UserError(f"thresholds file lacks {', '.join(missing)}", path=path)
    checked: dict[str, float] = {}
    for key in THRESHOLD_KEYS:
        value = thresholds[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise UserError(f"threshold '{key}' must be a finite number, not {value!r}", path=path)
        checked[key] = float(value)
    return checked


def load_thresholds(path: Path = THRESHOLDS_FILE) -> dict[str, float]:
    """Read the `thresholds` of a file written by `--calibrate`; UserError if unusable."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("thresholds file not found", path=path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read the thresholds file: {exc}", path=path) from None
    if not isinstance(document, dict) or not isinstance(document.get("thresholds"), dict):
        raise UserError("not a thresholds file: no 'thresholds' object", path=path)
    return check_thresholds(document["thresholds"], path)


# ---------------------------------------------------------------------------------------------
# Runner


class ClassicalDetectorRunner:
    """Answers detection requests from classical statistics; never raises for one request."""

    def __init__(self, identity: ModelIdentity, thresholds: str | None = None):
        for module in MODULES:  # a missing library fails the run here, once
            require(module, EXTRA)
        self.identity = identity
        self.thresholds = load_thresholds(Path(thresholds) if thresholds else THRESHOLDS_FILE)
        # Tasks may ask about one image under several prompts: measure each content once.
        self._answers: dict[tuple[str, str], str] = {}

    def respond(self, request: Request) -> Response:
        started = time.perf_counter()
        if not request.images:
            return Response(error="the request has no image to examine")
        image = request.images[0]
        try:
            text = self._answers.get((image.path, image.sha256))
            if text is None:
                rgb = np.asarray(load_rgb(Path(image.path)), dtype=np.uint8)
                text = answer_text(measure(rgb), self.thresholds)
                self._answers[image.path, image.sha256] = text
        except ImageError as exc:
            return Response(error=str(exc), latency_s=time.perf_counter() - started)
        except Exception as exc:  # one odd image must not stop the run (Runner protocol)
            error = f"classical detector failed: {type(exc).__name__}: {exc}"
            return Response(error=error, latency_s=time.perf_counter() - started)
        return Response(text=text, latency_s=time.perf_counter() - started)

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[Request, Response]]:
        for request in requests:
            yield request, self.respond(request)

    def close(self) -> None:
        return None


# ---------------------------------------------------------------------------------------------
# Calibration images

# scikit-image's bundled photographs. Left out: astronaut (a benchmark face), cat (= chelsea),
# and images that are not photographs of a lit scene (text pages, synthetic figures, the
# Hubble field and the retina, which are mostly black by nature).
CALIBRATION_SOURCES = (
    "brick",
    "camera",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "immunohistochemistry",
    "moon",
    "rocket",
    "stereo_motorcycle",
)
CALIBRATION_SIDES = (512, 256, 192)  # longest side; the benchmark renders at 512 and 192
PORTRAIT_ASPECT = 0.77  # width / height of the benchmark's portraits (about 295 x 384)


def _source_rgb(name: str) -> RGB:
    data = require("skimage.data", EXTRA)
    loaded = getattr(data, name)()
    # stereo_motorcycle is (left, right, disparity): the left view.
    pixels = np.asarray(loaded[0] if name == "stereo_motorcycle" else loaded)
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    rgb: RGB = np.ascontiguousarray(pixels[..., :3], dtype=np.uint8)
    return rgb


def _frames(rgb: RGB) -> dict[str, RGB]:
    """The full image and two portrait-shaped crops at its ends (left/right or top/bottom)."""
    height, width = rgb.shape[:2]
    crop_width = min(width, round(height * PORTRAIT_ASPECT))
    crop_height = min(height, round(crop_width / PORTRAIT_ASPECT))
    return {
        "full": rgb,
        "start": rgb[:crop_height, :crop_width],
        "end": rgb[height - crop_height :, width - crop_width :],
    }


def _shrunk(rgb: RGB, side: int) -> RGB:
    """Lanczos-resized so that the longest side is `side`; never enlarged."""
    height, width = rgb.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8).copy()


def calibration_images(
    sources: Sequence[str] = CALIBRATION_SOURCES, sides: Sequence[int] = CALIBRATION_SIDES
) -> dict[str, RGB]:
    """Frames of the bundled photographs at each side, named `source/frame@side`."""
    images: dict[str, RGB] = {}
    for source in sources:
        for frame, pixels in _frames(_source_rgb(source)).items():
            for side in sides:
                shrunk = _shrunk(pixels, side)
                images.setdefault(f"{source}/{frame}@{max(shrunk.shape[:2])}", shrunk)
    return images


# ---------------------------------------------------------------------------------------------
# Calibration

MIXES_PER_IMAGE = 4


@dataclass(frozen=True)
class Applied:
    """One artifact as applied to a calibration image."""

    artifact: Artifact
    intensity: Intensity
    params: Params


@dataclass(frozen=True)
class Sample:
    """A degraded calibration image, reduced to what it carries and what was measured."""

    image: str
    applied: tuple[Applied, ...]
    statistics: dict[str, float]

    def carries(self, detector: Detector) -> bool:
        """Whether the image has the detector's artifact (and exposure direction)."""
        for entry in self.applied:
            if entry.artifact == detector.artifact:
                return detector.direction in (None, entry.params.get("direction"))
        return False

    def label(self, detector: Detector) -> bool | None:
        """True with the detector's artifact; None for the opposite exposure (neither side)."""
        if self.carries(detector):
            return True
        has_artifact = any(entry.artifact == detector.artifact for entry in self.applied)
        return None if has_artifact else False

    def alone_hard(self, detector: Detector) -> bool:
        """Whether the image has only the detector's artifact, at hard strength."""
        return (
            len(self.applied) == 1
            and self.carries(detector)
            and self.applied[0].intensity == "hard"
        )


def _params(
    rng: np.random.Generator,
    artifact: Artifact,
    intensity: Intensity,
    blur_scale: float,
    direction: Direction,
) -> Params:
    """A strength drawn as the benchmark draws it (uniform within the mild or hard range)."""
    if artifact == "poor_lighting":
        return {
            "direction": direction,
            "gamma": float(rng.uniform(*EXPOSURE_GAMMA[direction][intensity])),
        }
    low, high = STRENGTHS[artifact][intensity]
    if artifact == "compression":
        return {"quality": int(rng.integers(int(low), int(high), endpoint=True))}
    value = float(rng.uniform(low, high))
    if artifact == "blur":
        return {"sigma": value * blur_scale}
    if artifact == "noise":
        return {"sigma": value, "seed": int(rng.integers(2**32))}
    return {"factor": value}


def _variants(
    rng: np.random.Generator, mixes: int
) -> list[list[tuple[Artifact, Intensity, Direction]]]:
    """Clean, every artifact alone mild and hard (exposure both ways), then protocol mixes.

    Each step is (artifact, intensity, exposure direction); the direction matters only for
    poor lighting.
    """
    variants: list[list[tuple[Artifact, Intensity, Direction]]] = [[]]
    intensities: tuple[Intensity, ...] = ("mild", "hard")
    for artifact in ARTIFACTS:
        directions: tuple[Direction, ...] = (
            ("under", "over") if artifact == "poor_lighting" else ("under",)
        )
        variants += [[(artifact, i, d)] for d in directions for i in intensities]
    for _ in range(mixes):
        picked = [ARTIFACTS[int(i)] for i in rng.permutation(len(ARTIFACTS))[:ARTIFACTS_PER_MIX]]
        direction: Direction = "under" if rng.random() < 0.5 else "over"
        chosen: dict[Artifact, Intensity] = {
            a: "hard" if a == picked[0] else "mild" for a in picked
        }
        variants.append([(a, chosen[a], direction) for a in APPLY_ORDER if a in chosen])
    return variants


def _degraded(
    rgb: RGB, plan: Sequence[tuple[Artifact, Intensity, Direction]], rng: np.random.Generator
) -> tuple[RGB, tuple[Applied, ...]]:
    blur_scale = max(max(rgb.shape[:2]) / REFERENCE_SIDE, MIN_BLUR_SCALE)
    applied = tuple(
        Applied(artifact, intensity, _params(rng, artifact, intensity, blur_scale, direction))
        for artifact, intensity, direction in plan
    )
    pixels = rgb
    for entry in applied:
        pixels = apply_artifact(pixels, entry.artifact, entry.params)
    return pixels, applied


def calibration_samples(
    images: Mapping[str, RGB], seed: int, mixes: int = MIXES_PER_IMAGE
) -> list[Sample]:
    """Every variant of every image, measured. Deterministic for given images and seed."""
    samples: list[Sample] = []
    for index, (name, rgb) in enumerate(images.items()):
        rng = np.random.default_rng([seed, index])
        for plan in _variants(rng, mixes):
            pixels, applied = _degraded(rgb, plan, rng)
            samples.append(Sample(name, applied, measure(pixels)))
    return samples


@dataclass(frozen=True)
class Rates:
    """How a decision did on labelled samples."""

    true_positive_rate: float
    false_positive_rate: float
    positives: int
    negatives: int

    @property
    def balanced_accuracy(self) -> float:
        return (self.true_positive_rate + 1.0 - self.false_positive_rate) / 2


def fit_threshold(values: Sequence[float], positive: Sequence[bool], fires_below: bool) -> float:
    """The cut maximising balanced accuracy, midway between two neighbouring values.

    Among equally good cuts the strictest wins (the fewest images firing).
    """
    sign = -1.0 if fires_below else 1.0  # fire when sign * value > cut
    oriented = sign * np.asarray(values, dtype=np.float64)
    labels = np.asarray(positive, dtype=bool)
    if labels.all() or not labels.any():
        raise ValueError("calibration needs samples with and without the artifact")
    order = np.argsort(oriented, kind="stable")
    ranked, ranked_labels = oriented[order], labels[order]
    # Cutting after position k leaves ranked[k + 1:] firing; only cuts between distinct values.
    missed = np.cumsum(ranked_labels)[:-1]
    passed = np.cumsum(~ranked_labels)[:-1]
    true_positive_rate = 1.0 - missed / labels.sum()
    true_negative_rate = passed / (~labels).sum()
    balanced = np.where(np.diff(ranked) > 0, (true_positive_rate + true_negative_rate) / 2, -1.0)
    best = int(np.flatnonzero(balanced == balanced.max())[-1])
    return float(sign * (ranked[best] + ranked[best + 1]) / 2)


def fit_thresholds(samples: Sequence[Sample]) -> dict[str, float]:
    """Each detector's threshold and its statistic's median at hard strength."""
    thresholds: dict[str, float] = {}
    for name, detector in DETECTORS.items():
        labelled = [(s, label) for s in samples if (label := s.label(detector)) is not None]
        values = [s.statistics[detector.statistic] for s, _ in labelled]
        thresholds[name] = fit_threshold(
            values, [label for _, label in labelled], detector.fires_below
        )
        hard = [s.statistics[detector.statistic] for s in samples if s.alone_hard(detector)]
        if not hard:
            raise ValueError(f"calibration has no image with {name} alone at hard strength")
        thresholds[hard_key(name)] = float(np.median(hard))
    return thresholds


def calibrate(
    images: Mapping[str, RGB], seed: int, mixes: int = MIXES_PER_IMAGE
) -> dict[str, float]:
    """Thresholds (and hard-strength anchors) fitted on degraded copies of `images`."""
    return fit_thresholds(calibration_samples(images, seed, mixes))


def flag_rates(samples: Sequence[Sample], thresholds: Mapping[str, float]) -> dict[Artifact, Rates]:
    """Per artifact, how its flag (what the runner answers) does on the samples."""
    predicted = [flags(fired(sample.statistics, thresholds)) for sample in samples]
    rates: dict[Artifact, Rates] = {}
    for artifact in ARTIFACTS:
        truth = np.array([any(e.artifact == artifact for e in s.applied) for s in samples])
        said = np.array([p[artifact] for p in predicted])
        rates[artifact] = Rates(
            true_positive_rate=float(said[truth].mean()),
            false_positive_rate=float(said[~truth].mean()),
            positives=int(truth.sum()),
            negatives=int((~truth).sum()),
        )
    return rates


# ---------------------------------------------------------------------------------------------
# Command line


def thresholds_document(
    thresholds: Mapping[str, float],
    rates: Mapping[Artifact, Rates],
    *,
    images: Sequence[str],
    seed: int,
    mixes: int,
    samples: int,
) -> dict[str, Any]:
    """What `--calibrate` writes: thresholds, calibration accuracy, settings, images, date."""
    return {
        "format": FILE_FORMAT,
        "created": datetime.date.today().isoformat(),
        "command": "python -m fiqabench.runners.classical_detector --calibrate",
        "fiqabench_version": __version__,
        "seed": seed,
        "settings": {
            "criterion": "balanced accuracy, images with the artifact vs without it",
            "variants_per_image": "clean; each artifact alone mild and hard (exposure both "
            f"ways); {mixes} mixes of {ARTIFACTS_PER_MIX} artifacts, one hard",
            "apply_order": list(APPLY_ORDER),
            "strengths": {
                **{artifact: dict(ranges) for artifact, ranges in STRENGTHS.items()},
                "poor_lighting": {d: dict(ranges) for d, ranges in EXPOSURE_GAMMA.items()},
            },
            "blur_sigma_scale": f"longest side / {REFERENCE_SIDE}, at least {MIN_BLUR_SCALE}",
            "sides": list(CALIBRATION_SIDES),
            "samples": samples,
        },
        "images": list(images),
        "detectors": {
            name: {
                "statistic": d.statistic,
                "fires": "below" if d.fires_below else "above",
                "flag": FLAG_KEYS[d.artifact],
            }
            for name, d in DETECTORS.items()
        },
        "thresholds": dict(thresholds),
        "calibration_accuracy": {
            artifact: {
                "balanced_accuracy": round(r.balanced_accuracy, 4),
                "true_positive_rate": round(r.true_positive_rate, 4),
                "false_positive_rate": round(r.false_positive_rate, 4),
                "positives": r.positives,
                "negatives": r.negatives,
            }
            for artifact, r in rates.items()
        },
    }


def report_lines(thresholds: Mapping[str, float], rates: Mapping[Artifact, Rates]) -> list[str]:
    lines = [f"{'detector':<16}{'statistic':<12}{'fires':<7}{'threshold':>11}{'hard median':>13}"]
    for name, d in DETECTORS.items():
        side = "below" if d.fires_below else "above"
        lines.append(
            f"{name:<16}{d.statistic:<12}{side:<7}"
            f"{thresholds[name]:>11.4f}{thresholds[hard_key(name)]:>13.4f}"
        )
    lines.append(f"\n{'flag':<22}{'balanced acc':>13}{'TPR':>7}{'FPR':>7}{'pos':>6}{'neg':>6}")
    for artifact, r in rates.items():
        lines.append(
            f"{FLAG_KEYS[artifact]:<22}{r.balanced_accuracy:>13.3f}{r.true_positive_rate:>7.3f}"
            f"{r.false_positive_rate:>7.3f}{r.positives:>6}{r.negatives:>6}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calibrate", action="store_true", help="fit and write the thresholds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mixes", type=int, default=MIXES_PER_IMAGE, help="mixes per image")
    parser.add_argument("--output", type=Path, default=THRESHOLDS_FILE)
    args = parser.parse_args(argv)
    if not args.calibrate:
        parser.error("nothing to do: pass --calibrate")
    images = calibration_images()
    samples = calibration_samples(images, args.seed, args.mixes)
    thresholds = fit_thresholds(samples)
    rates = flag_rates(samples, thresholds)
    print(f"{len(images)} calibration images, {len(samples)} samples, seed {args.seed}\n")
    print("\n".join(report_lines(thresholds, rates)))
    document = thresholds_document(
        thresholds,
        rates,
        images=list(images),
        seed=args.seed,
        mixes=args.mixes,
        samples=len(samples),
    )
    args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
