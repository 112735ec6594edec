"""Image degradations for synthetic quality benchmarks: pure numpy + Pillow (+ scipy's filter).

Every function takes an RGB ``uint8`` array of shape ``(height, width, 3)`` and returns a new
array of the same shape and dtype; inputs are never modified. Functions that need randomness take
a ``numpy.random.Generator``, so a fixed seed gives the same pixels. Strengths are explicit
arguments in pixel units of the image they are applied to (a blur sigma of 4 means something
different at 384 px than at 1024 px).

The five artifacts of the mix-degradation protocol (protocols.md section 6) are
:func:`gaussian_blur`, :func:`gaussian_noise`, :func:`low_resolution`, :func:`jpeg_compression`
and :func:`exposure`; the others change colour, brightness or style. :func:`box_mask` and
:func:`apply_masked` restrict any of them to a region (the face box) or its complement.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image
from scipy import ndimage

RGB = npt.NDArray[np.uint8]
"""An RGB image: ``uint8`` array of shape (height, width, 3)."""
Mask = npt.NDArray[np.float32]
"""A blending weight per pixel, shape (height, width), values in [0, 1]."""
Box = tuple[int, int, int, int]
"""A rectangle ``(x, y, width, height)`` in pixels."""
Degrade = Callable[[RGB], RGB]

# ITU-R BT.601 luma weights, the ones Pillow's "L" conversion uses.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
SEPIA = np.array(
    [[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], dtype=np.float32
)
TINTS: dict[str, tuple[float, float, float]] = {
    "green": (0.7, 1.1, 0.7),
    "magenta": (1.1, 0.7, 1.1),
    "blue": (0.7, 0.85, 1.2),
    "yellow": (1.1, 1.05, 0.6),
}
"""Channel gains of named colour casts, used by :func:`color_cast`."""


def check_rgb(image: RGB) -> None:
    """Raise ValueError unless ``image`` is an (h, w, 3) uint8 array."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 array (h, w, 3), got {image.dtype} {image.shape}")


def to_uint8(values: npt.NDArray[Any]) -> RGB:
    """Round and clip float pixel values to uint8."""
    result: RGB = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return result


def _lut(image: RGB, table: npt.NDArray[Any]) -> RGB:
    """Map every channel value through a 256-entry table: exact and fast."""
    return to_uint8(table)[image]


def gaussian_blur(image: RGB, sigma: float) -> RGB:
    """Defocus-like blur: Gaussian filter with standard deviation ``sigma`` pixels (> 0).

    Reference strengths at ~384 px: 1-2 mild, 3-6 hard.
    """
    check_rgb(image)
    if sigma <= 0:
        raise ValueError("sigma must be > 0")
    blurred = ndimage.gaussian_filter(image.astype(np.float32), sigma=(sigma, sigma, 0))
    return to_uint8(blurred)


def gaussian_noise(
    image: RGB, sigma: float, rng: np.random.Generator, *, monochrome: bool = False
) -> RGB:
    """Additive zero-mean Gaussian noise with standard deviation ``sigma`` in 0-255 units.

    ``monochrome`` adds the same value to the three channels (luma grain) instead of independent
    colour noise. Reference strengths: 5-15 mild, 25-50 hard.
    """
    check_rgb(image)
    if sigma < 0:
        raise ValueError("sigma must be >= 0")
    shape = (*image.shape[:2], 1) if monochrome else image.shape
    noise = rng.normal(0.0, sigma, size=shape).astype(np.float32)
    return to_uint8(image.astype(np.float32) + noise)


def low_resolution(
    image: RGB, factor: float, *, upsample: Literal["nearest", "bicubic"] = "bicubic"
) -> RGB:
    """Downscale by ``factor`` (e.g. 6 keeps 1/6 of each side, area-averaged) and scale back up.

    ``upsample="nearest"`` shows the lost resolution as square blocks (pixelation);
    ``"bicubic"`` as softness. Reference strengths: 2 mild, 6-8 hard.
    """
    check_rgb(image)
    if factor < 1:
        raise ValueError("factor must be >= 1")
    height, width = image.shape[:2]
    small_size = (max(1, round(width / factor)), max(1, round(height / factor)))
    small = Image.fromarray(image).resize(small_size, Image.Resampling.BOX)
    method = Image.Resampling.NEAREST if upsample == "nearest" else Image.Resampling.BICUBIC
    return np.asarray(small.resize((width, height), method), dtype=np.uint8).copy()


def jpeg_compression(image: RGB, quality: int) -> RGB:
    """Encode as JPEG at ``quality`` (1-100, Pillow's scale) and decode again.

    Reference strengths: 40-60 mild, 5-10 hard (visible 8x8 blocks and ringing).
    """
    check_rgb(image)
    if not 1 <= quality <= 100:
        raise ValueError("quality must be in 1..100")
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.uint8).copy()


def exposure(image: RGB, gamma: float, *, gain: float = 1.0) -> RGB:
    """Tone curve ``255 * gain * (x / 255) ** gamma``, clipped.

    ``gamma > 1`` darkens (underexposure), ``gamma < 1`` brightens (overexposure); ``gain > 1``
    also clips highlights. Reference strengths: gamma 1.4-1.6 or 0.7 mild, 2.5-3.5 or
    0.35-0.45 hard.
    """
    check_rgb(image)
    if gamma <= 0 or gain < 0:
        raise ValueError("gamma must be > 0 and gain >= 0")
    levels = np.arange(256, dtype=np.float64) / 255.0
    return _lut(image, 255.0 * gain * levels**gamma)


def brightness(image: RGB, gain: float) -> RGB:
    """Scale all channels by ``gain`` (0.3 puts a region into deep shadow, 1.5 brightens)."""
    check_rgb(image)
    if gain < 0:
        raise ValueError("gain must be >= 0")
    return _lut(image, np.arange(256, dtype=np.float64) * gain)


def color_cast(image: RGB, gains: tuple[float, float, float] | str) -> RGB:
    """Multiply R, G, B by ``gains`` (or a name from :data:`TINTS`, e.g. ``"green"``)."""
    check_rgb(image)
    factors = TINTS[gains] if isinstance(gains, str) else gains
    scaled = image.astype(np.float32) * np.asarray(factors, dtype=np.float32)
    return to_uint8(scaled)


def saturation(image: RGB, factor: float) -> RGB:
    """Blend with the grey version: 0 = grayscale, 1 = unchanged, > 1 = oversaturated."""
    check_rgb(image)
    pixels = image.astype(np.float32)
    grey = (pixels @ LUMA)[..., None]
    return to_uint8(grey + (pixels - grey) * factor)


def grayscale(image: RGB) -> RGB:
    """Black and white (BT.601 luma in all three channels)."""
    return saturation(image, 0.0)


def sepia(image: RGB) -> RGB:
    """Brownish vintage tone (the classic sepia matrix)."""
    check_rgb(image)
    return to_uint8(image.astype(np.float32) @ SEPIA.T)


def posterize(image: RGB, levels: int) -> RGB:
    """Quantise each channel to ``levels`` (2-256) evenly spaced values."""
    check_rgb(image)
    if not 2 <= levels <= 256:
        raise ValueError("levels must be in 2..256")
    step = 255.0 / (levels - 1)
    table = np.round(np.floor(np.arange(256) * levels / 256.0) * step)
    return _lut(image, table)


def box_mask(shape: tuple[int, int], box: Box, *, feather: float = 0.0) -> Mask:
    """Weight 1 inside ``box`` (x, y, w, h), falling linearly to 0 over ``feather`` px outside.

    The ramp lies entirely outside the box, so the box is fully covered and ``1 - mask`` leaves
    it exactly untouched; ``feather=0`` gives a hard edge. ``shape`` is (height, width).
    """
    height, width = shape
    x, y, w, h = box
    cols = np.arange(width, dtype=np.float32) + 0.5
    rows = np.arange(height, dtype=np.float32) + 0.5
    dx = np.maximum(np.maximum(x - cols, cols - (x + w)), 0.0)
    dy = np.maximum(np.maximum(y - rows, rows - (y + h)), 0.0)
    distance = np.hypot(dx[None, :], dy[:, None])
    mask: Mask = (
        np.clip(1.0 - distance / feather, 0.0, 1.0).astype(np.float32)
        if feather > 0
        else (distance == 0).astype(np.float32)
    )
    return mask


def blend(image: RGB, degraded: RGB, mask: Mask) -> RGB:
    """Per-pixel mix: ``degraded`` where mask is 1, ``image`` where it is 0 (exactly)."""
    check_rgb(image)
    check_rgb(degraded)
    if mask.shape != image.shape[:2] or degraded.shape != image.shape:
        raise ValueError("image, degraded and mask sizes differ")
    weight = mask[..., None]
    mixed = image.astype(np.float32) * (1.0 - weight) + degraded.astype(np.float32) * weight
    return to_uint8(mixed)


def apply_masked(image: RGB, degrade: Degrade, mask: Mask, *, outside: bool = False) -> RGB:
    """Apply ``degrade`` to the whole image, then keep it only where ``mask`` is set.

    ``outside=True`` uses ``1 - mask``: with a face-box mask that degrades the background only.
    Degrading the whole image first keeps filters seamless at the region's edge.
    """
    weight = (1.0 - mask).astype(np.float32) if outside else mask
    return blend(image, degrade(image), weight)
