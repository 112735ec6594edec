"""Each degradation is measurably present, stays in its region and is reproducible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from fiqabench.tasks import degradations as dg

PHOTO = Path(dg.__file__).parent / "mini" / "data" / "sources" / "hopper__grace_hopper.jpg"
BOX: dg.Box = (110, 70, 120, 150)

FloatArray = npt.NDArray[np.float64]


@pytest.fixture(scope="module")
def photo() -> dg.RGB:
    with Image.open(PHOTO) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def luma(image: dg.RGB) -> FloatArray:
    result: FloatArray = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return result


def laplacian(gray: FloatArray) -> FloatArray:
    return (
        gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:] - 4 * gray[1:-1, 1:-1]
    )


def laplacian_var(image: dg.RGB) -> float:
    return float(laplacian(luma(image)).var())


def residual(image: dg.RGB) -> float:
    """High-frequency energy: mean absolute difference from the 3x3 neighbourhood mean."""
    gray = luma(image)
    return float(np.abs(laplacian(gray)).mean() / 4)


def blockiness(image: dg.RGB) -> float:
    """Mean jump across 8x8 block borders divided by the mean jump elsewhere (1 = no blocks)."""
    diffs = np.abs(np.diff(luma(image), axis=1))
    border = diffs[:, 7::8].mean()
    inside = np.delete(diffs, np.s_[7::8], axis=1).mean()
    return float(border / inside)


def high_frequency_share(image: dg.RGB, cutoff: float = 0.25) -> float:
    """Share of spectral energy above ``cutoff`` cycles per pixel (the DC term excluded)."""
    gray = luma(image)
    power = np.abs(np.fft.fft2(gray - gray.mean())) ** 2
    fy = np.fft.fftfreq(gray.shape[0])[:, None]
    fx = np.fft.fftfreq(gray.shape[1])[None, :]
    return float(power[np.hypot(fx, fy) > cutoff].sum() / power.sum())


def test_blur_lowers_laplacian_variance(photo: dg.RGB) -> None:
    mild, hard = dg.gaussian_blur(photo, 1.0), dg.gaussian_blur(photo, 4.0)
    assert laplacian_var(hard) < laplacian_var(mild) < 0.5 * laplacian_var(photo)
    assert laplacian_var(hard) < 0.05 * laplacian_var(photo)


def test_noise_raises_high_frequency_residual(photo: dg.RGB) -> None:
    noisy = dg.gaussian_noise(photo, 30.0, np.random.default_rng(0))
    assert residual(noisy) > 3 * residual(photo)
    spread = (noisy.astype(np.float64) - photo).std()
    assert 20 < spread < 32  # sigma 30, a little lost to clipping at 0 and 255


def test_monochrome_noise_is_the_same_in_every_channel() -> None:
    grey = np.full((32, 32, 3), 128, dtype=np.uint8)
    noisy = dg.gaussian_noise(grey, 10.0, np.random.default_rng(0), monochrome=True)
    assert np.array_equal(noisy[..., 0], noisy[..., 1]) and noisy.std() > 5


def test_jpeg_adds_8x8_blockiness(photo: dg.RGB) -> None:
    assert blockiness(photo) < 1.3
    assert blockiness(dg.jpeg_compression(photo, 5)) > 1.5 * blockiness(photo)
    assert blockiness(dg.jpeg_compression(photo, 5)) > blockiness(dg.jpeg_compression(photo, 60))


def test_low_resolution_removes_high_frequencies(photo: dg.RGB) -> None:
    soft = dg.low_resolution(photo, 6)
    assert soft.shape == photo.shape
    assert high_frequency_share(soft, 0.1) < 0.2 * high_frequency_share(photo, 0.1)


def test_nearest_upsampling_pixelates(photo: dg.RGB) -> None:
    blocky = dg.low_resolution(photo, 8, upsample="nearest")
    flat_steps = (np.diff(blocky.astype(np.int16), axis=1) == 0).all(axis=2).mean()
    assert flat_steps > 0.8  # inside each ~8 px block neighbours are identical
    assert len(np.unique(blocky.reshape(-1, 3), axis=0)) <= (384 // 8 + 1) * (328 // 8 + 1)


@pytest.mark.parametrize(("gamma", "gain", "darker"), [(2.6, 1.0, True), (0.4, 1.1, False)])
def test_exposure_shifts_mean_luma(photo: dg.RGB, gamma: float, gain: float, darker: bool) -> None:
    before, after = luma(photo).mean(), luma(dg.exposure(photo, gamma, gain=gain)).mean()
    assert (after < 0.6 * before) if darker else (after > 1.3 * before)


def test_brightness_scales_luma(photo: dg.RGB) -> None:
    assert luma(dg.brightness(photo, 0.25)).mean() == pytest.approx(
        0.25 * luma(photo).mean(), abs=1
    )


def test_colour_changes(photo: dg.RGB) -> None:
    means = dg.color_cast(photo, "green").reshape(-1, 3).mean(axis=0)
    original = photo.reshape(-1, 3).mean(axis=0)
    assert means[1] > original[1] and means[0] < original[0] and means[2] < original[2]
    gray = dg.grayscale(photo)
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    washed = dg.saturation(photo, 0.2).astype(np.int16)
    assert np.ptp(washed, axis=2).mean() < 0.3 * np.ptp(photo.astype(np.int16), axis=2).mean()
    brown = dg.sepia(photo).reshape(-1, 3).astype(np.int16)
    assert ((brown[:, 0] >= brown[:, 1]) & (brown[:, 1] >= brown[:, 2])).mean() > 0.99
    assert len(np.unique(dg.posterize(photo, 3))) <= 3


def test_box_mask_hard_and_feathered() -> None:
    hard = dg.box_mask((40, 50), (10, 5, 20, 10))
    assert hard.dtype == np.float32 and hard.sum() == 200
    assert hard[5:15, 10:30].all() and hard[4].sum() == 0
    soft = dg.box_mask((40, 50), (10, 5, 20, 10), feather=6)
    assert (soft[5:15, 10:30] == 1).all()  # the ramp lies outside the box
    assert soft[10, 8] == pytest.approx(1 - 1.5 / 6) and soft[10, 36] == 0
    assert ((soft > 0) & (soft < 1)).any() and soft.max() == 1 and soft.min() == 0


def test_local_blur_leaves_the_rest_untouched(photo: dg.RGB) -> None:
    mask = dg.box_mask(photo.shape[:2], BOX, feather=12)
    x, y, w, h = BOX
    face_only = dg.apply_masked(photo, lambda im: dg.gaussian_blur(im, 4), mask)
    assert np.array_equal(face_only[mask == 0], photo[mask == 0])
    face = np.s_[y : y + h, x : x + w]
    assert laplacian_var(face_only[face]) < 0.1 * laplacian_var(photo[face])
    background = dg.apply_masked(photo, lambda im: dg.gaussian_blur(im, 4), mask, outside=True)
    assert np.array_equal(background[face], photo[face])
    assert laplacian_var(background[:, :60]) < 0.1 * laplacian_var(photo[:, :60])


def test_local_noise_and_hard_edge(photo: dg.RGB) -> None:
    mask = dg.box_mask(photo.shape[:2], BOX)
    x, y, w, h = BOX
    rng = np.random.default_rng(1)
    noisy = dg.apply_masked(photo, lambda im: dg.gaussian_noise(im, 30, rng), mask, outside=True)
    assert np.array_equal(noisy[y : y + h, x : x + w], photo[y : y + h, x : x + w])
    assert not np.array_equal(noisy[:, : x - 1], photo[:, : x - 1])
    assert residual(noisy[:, :60]) > 3 * residual(photo[:, :60])


def test_deterministic_for_a_seed(photo: dg.RGB) -> None:
    def run(seed: int) -> dg.RGB:
        rng = np.random.default_rng(seed)
        mask = dg.box_mask(photo.shape[:2], BOX, feather=8)
        noisy = dg.apply_masked(photo, lambda im: dg.gaussian_noise(im, 25, rng), mask)
        return dg.jpeg_compression(noisy, 10)

    assert np.array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_inputs_are_not_modified_and_outputs_keep_shape(photo: dg.RGB) -> None:
    copy = photo.copy()
    rng = np.random.default_rng(0)
    outputs = [
        dg.gaussian_blur(photo, 2),
        dg.gaussian_noise(photo, 10, rng),
        dg.low_resolution(photo, 3),
        dg.jpeg_compression(photo, 30),
        dg.exposure(photo, 1.5),
        dg.brightness(photo, 1.5),
        dg.color_cast(photo, (1.0, 0.9, 1.1)),
        dg.saturation(photo, 1.5),
        dg.grayscale(photo),
        dg.sepia(photo),
        dg.posterize(photo, 4),
    ]
    assert np.array_equal(photo, copy)
    assert all(out.shape == photo.shape and out.dtype == np.uint8 for out in outputs)


def test_bad_input_is_refused(photo: dg.RGB) -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        dg.gaussian_blur(photo.astype(np.float32), 2)
    with pytest.raises(ValueError, match="RGB uint8"):
        dg.grayscale(photo[..., 0])
    with pytest.raises(ValueError):
        dg.jpeg_compression(photo, 0)
    with pytest.raises(ValueError):
        dg.blend(photo, photo, np.ones((2, 2), dtype=np.float32))
