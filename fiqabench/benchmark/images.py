"""Safe image loading: a one-line error for every bad file, and one canonical 8-bit RGB view.

Nothing here touches Pillow's global settings (`LOAD_TRUNCATED_IMAGES`, `MAX_IMAGE_PIXELS`):
other code in the same process may rely on them, and a harness must not loosen them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import stat
import struct
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from fiqabench.errors import UserError

DEFAULT_MAX_PIXELS = 40_000_000

_CACHE_SIZE = 65_536
_WHITE = (255, 255, 255)
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_COLOUR_KEY_MODES = frozenset({"P", "L", "RGB"})  # transparency given as one colour or index
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_WIDE_MODES = frozenset({"I", "F"})
# What Pillow raises, besides OSError, when a file is corrupt part-way through decoding.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)

# A file's identity for memoisation: resolved path, size and modification time; a rewritten
# file gets a new key, so a cached answer can never describe stale bytes.
_FileKey = tuple[str, int, int]


class ImageError(UserError):
    """An image file that cannot be used; the message names the file and the problem."""

    def __init__(self, problem: str, *, path: str | Path):
        super().__init__(problem, path=path)
        self.problem = problem


class _Unusable(Exception):
    """A problem with a file; the public functions add the path the caller gave."""


def file_sha256(path: Path) -> str:
    """Hex sha256 of the file's bytes, memoised while the file is unchanged."""
    with _reported(path):
        return _sha256_of(_file_key(path))


def check_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> str:
    """Decode the image once to prove it is usable and return its `file_sha256`.

    Memoised while the file is unchanged: decoding is the expensive part and items often
    share images. Raises ImageError naming the file and the problem.
    """
    with _reported(path):
        return _validated_sha256(_file_key(path), max_pixels)


def load_rgb(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The image as 8-bit RGB, EXIF orientation applied and transparency composited on white."""
    with _reported(path):
        _file_key(path)
        return _decode_rgb(path, max_pixels)


def encode_image(path: Path, *, max_side: int | None = None, format: str = "PNG") -> bytes:
    """`load_rgb`, shrunk so that neither side exceeds `max_side`, encoded as `format`."""
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be at least 1, not {max_side}")
    image = load_rgb(path)
    if max_side is not None and max(image.size) > max_side:
        image = image.resize(_fitted_size(image.size, max_side), Image.Resampling.LANCZOS)
    pillow_format = "JPEG" if format.upper() in ("JPG", "JPEG") else format.upper()
    options = {"quality": 95} if pillow_format == "JPEG" else {}
    buffer = io.BytesIO()
    image.save(buffer, format=pillow_format, **options)
    return buffer.getvalue()


def _fitted_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    width, height = size
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


@contextlib.contextmanager
def _reported(path: Path) -> Iterator[None]:
    """Turn any problem with the file into an ImageError naming the path the caller gave."""
    try:
        yield
    except _Unusable as exc:
        raise ImageError(str(exc), path=path) from None
    except FileNotFoundError:  # deleted since it was checked
        raise ImageError("file not found", path=path) from None
    except OSError as exc:
        raise ImageError(f"cannot read file: {exc.strerror or exc}", path=path) from None


def _file_key(path: Path) -> _FileKey:
    """Stat the file, refusing anything that cannot be an image file."""
    info = path.stat()
    if stat.S_ISDIR(info.st_mode):
        raise _Unusable("is a directory, not an image file")
    if not stat.S_ISREG(info.st_mode):
        raise _Unusable("not a regular file")
    if info.st_size == 0:
        raise _Unusable("file is empty")
    return (str(path.resolve()), info.st_size, info.st_mtime_ns)


@lru_cache(maxsize=_CACHE_SIZE)
def _sha256_of(key: _FileKey) -> str:
    with open(key[0], "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@lru_cache(maxsize=_CACHE_SIZE)
def _validated_sha256(key: _FileKey, max_pixels: int) -> str:
    # The full RGB conversion, not just a decode: whatever passes here, load_rgb can load.
    _decode_rgb(Path(key[0]), max_pixels)
    return _sha256_of(key)


def _decode_rgb(path: Path, max_pixels: int) -> Image.Image:
    with path.open("rb") as handle:
        try:
            image = Image.open(handle)
            _check_size(image.size, max_pixels)
            image.load()  # pixels now live in memory, so closing the handle is safe
        except UnidentifiedImageError:
            raise _Unusable("not an image (unrecognised file format)") from None
        except Image.DecompressionBombError as exc:
            raise _Unusable(f"image too large: {_first_line(exc)}") from None
        except _DECODE_ERRORS as exc:
            raise _Unusable(_decode_problem(exc)) from None
    _apply_orientation(image)
    return _to_rgb(image)


def _apply_orientation(image: Image.Image) -> None:
    # Broken EXIF does not spoil good pixels: keep them as stored.
    with contextlib.suppress(*_DECODE_ERRORS):
        ImageOps.exif_transpose(image, in_place=True)


def _check_size(size: tuple[int, int], max_pixels: int) -> None:
    """Refuse oversize images from their header alone, before any pixel is decompressed."""
    width, height = size
    if width * height > max_pixels:
        raise _Unusable(
            f"image too large: {width}x{height} pixels exceeds the limit of {max_pixels} "
            "(possible decompression bomb)"
        )


def _decode_problem(exc: BaseException) -> str:
    text = _first_line(exc)
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return "image file is truncated"
    return f"cannot decode image: {text or type(exc).__name__}"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in _ALPHA_MODES or (mode in _COLOUR_KEY_MODES and "transparency" in image.info):
        return _over_white(image.convert("RGBA"))
    if mode == "RGB":
        return image
    if mode in _SIXTEEN_BIT_MODES or mode in _WIDE_MODES:
        pixels = _scaled_to_uint8(np.asarray(image), sixteen_bit=mode in _SIXTEEN_BIT_MODES)
        return Image.fromarray(pixels).convert("RGB")
    try:
        return image.convert("RGB")  # 1, L, P, CMYK, YCbCr, HSV
    except ValueError:
        raise _Unusable(f"unsupported colour mode {mode}") from None


def _over_white(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGB", rgba.size, _WHITE)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _scaled_to_uint8(pixels: NDArray[np.generic], *, sixteen_bit: bool) -> NDArray[np.uint8]:
    """Map wide samples onto 0..255 by scaling, never by clipping (65535 in 16 bit -> 255)."""
    values = pixels.astype(np.float64)
    if values.size == 0:
        return values.astype(np.uint8)
    low = 0.0 if sixteen_bit else min(float(values.min()), 0.0)
    full_scale = 65535.0 if sixteen_bit else _full_scale(values, low)
    scaled = (values - low) * (255.0 / full_scale)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _full_scale(values: NDArray[np.float64], low: float) -> float:
    """The range that 32-bit int and float samples were most likely written for.

    They carry no bit depth, so take the smallest usual range that holds the data: [0, 1]
    (float), 8 bit or 16 bit; data outside all of them is stretched over its own span.
    """
    high = float(values.max())
    if low < 0:
        return max(high - low, 1.0)
    for candidate in (1.0, 255.0, 65535.0):
        if high <= candidate:
            return candidate
    return high
