"""Safe image loading: one-line errors for bad files, and exact conversions to 8-bit RGB."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFile

from fiqabench.benchmark import images
from fiqabench.benchmark.images import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    check_image,
    encode_image,
    file_sha256,
    load_rgb,
)
from fiqabench.errors import UserError

EXIF_ORIENTATION = 0x0112
RED = (255, 0, 0)


def jpeg_bytes(size: tuple[int, int] = (64, 48), seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


def png_with_declared_size(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose IHDR claims `width` x `height` (CRC fixed so Pillow trusts it)."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = 8  # the IHDR chunk follows the 8-byte signature: length, type, payload, crc
    struct.pack_into(">II", data, ihdr + 8, width, height)
    payload = bytes(data[ihdr + 4 : ihdr + 8 + 13])
    struct.pack_into(">I", data, ihdr + 8 + 13, zlib.crc32(payload))
    return bytes(data)


def saved(image: Image.Image, path: Path, **options: Any) -> Path:
    image.save(path, **options)
    return path


def stored_mode(path: Path) -> str:
    with Image.open(path) as image:
        return image.mode


def assert_image_error(path: Path, problem: str) -> None:
    with pytest.raises(ImageError) as caught:
        check_image(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert problem in message
    assert "\n" not in message


# --- bad files -----------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    assert_image_error(tmp_path / "absent.jpg", "file not found")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.touch()
    assert_image_error(path, "file is empty")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    path = tmp_path / "folder.jpg"
    path.mkdir()
    assert_image_error(path, "is a directory")


def test_text_file_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("just some text, not pixels\n")
    assert_image_error(path, "not an image")


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_jpeg(tmp_path: Path, keep: float) -> None:
    data = jpeg_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * keep)])
    assert_image_error(path, "image file is truncated")


def test_truncated_png(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64), np.uint8)).save(
        buffer, format="PNG"
    )
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    assert_image_error(path, "image file is truncated")


def test_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_with_declared_size(8000, 8000))
    assert_image_error(
        path,
        "image too large: 8000x8000 pixels exceeds the limit of 40000000 "
        "(possible decompression bomb)",
    )


def test_bomb_beyond_pillows_own_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    path.write_bytes(png_with_declared_size(20000, 20000))
    with pytest.raises(ImageError, match=r"huge\.png: image too large: .*decompression bomb"):
        load_rgb(path)


def test_genuine_large_image_over_a_low_limit(tmp_path: Path) -> None:
    path = saved(Image.new("RGB", (300, 200), "white"), tmp_path / "big.png")
    with pytest.raises(ImageError, match="300x200 pixels exceeds the limit of 10000"):
        check_image(path, max_pixels=10_000)
    with pytest.raises(ImageError, match="300x200 pixels"):
        load_rgb(path, max_pixels=10_000)
    assert check_image(path) == file_sha256(path)


def test_pillow_global_state_is_left_alone(tmp_path: Path) -> None:
    limit, truncated = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    data = jpeg_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "bomb.png").write_bytes(png_with_declared_size(8000, 8000))
    for name in ("cut.jpg", "bomb.png"):
        with pytest.raises(ImageError):
            load_rgb(tmp_path / name)
    assert (limit, truncated) == (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    assert limit is not None
    assert limit > DEFAULT_MAX_PIXELS


def test_image_error_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        load_rgb(tmp_path / "absent.png")
    assert isinstance(caught.value, ImageError)
    assert caught.value.problem == "file not found"
    assert caught.value.path == str(tmp_path / "absent.png")


# --- hashing and memoisation -----------------------------------------------------------------


def test_file_sha256_is_the_hash_of_the_bytes(tmp_path: Path) -> None:
    data = jpeg_bytes()
    path = tmp_path / "a.jpg"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert check_image(path) == hashlib.sha256(data).hexdigest()


def test_file_sha256_follows_changes_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg_bytes(seed=1))
    first = file_sha256(path)
    path.write_bytes(jpeg_bytes(seed=2, size=(32, 32)))
    assert file_sha256(path) != first
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_check_image_decodes_an_unchanged_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg_bytes(seed=3))
    decodes: list[Path] = []
    decode = images._decode_rgb

    def counting_decode(target: Path, max_pixels: int) -> Image.Image:
        decodes.append(target)
        return decode(target, max_pixels)

    monkeypatch.setattr(images, "_decode_rgb", counting_decode)
    digest = check_image(path)
    assert [check_image(path) for _ in range(3)] == [digest] * 3
    assert len(decodes) == 1
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000_000))  # a "new" file
    assert check_image(path) == digest
    assert len(decodes) == 2


# --- conversions -------------------------------------------------------------------------------


def rgb_at(path: Path, xy: tuple[int, int] = (0, 0)) -> tuple[int, ...]:
    image = load_rgb(path)
    assert image.mode == "RGB"
    return tuple(image.getpixel(xy))  # type: ignore[arg-type]


def test_rgb_passes_through(tmp_path: Path) -> None:
    path = saved(Image.new("RGB", (4, 3), (10, 20, 30)), tmp_path / "rgb.png")
    assert rgb_at(path) == (10, 20, 30)
    assert load_rgb(path).size == (4, 3)


def test_palette_without_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 12, 34, 56] + [0] * 762)
    assert rgb_at(saved(image, tmp_path / "p.png")) == (12, 34, 56)


def test_palette_with_transparency_becomes_white(tmp_path: Path) -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 12, 34, 56] + [0] * 762)
    image.putpixel((1, 0), 1)
    path = saved(image, tmp_path / "p.png", transparency=0)
    assert rgb_at(path, (0, 0)) == (255, 255, 255)
    assert rgb_at(path, (1, 0)) == (12, 34, 56)


@pytest.mark.parametrize(
    ("mode", "colour", "expected"),
    [
        ("RGBA", (0, 0, 0, 0), (255, 255, 255)),
        ("RGBA", (10, 20, 30, 255), (10, 20, 30)),
        ("RGBA", (0, 0, 0, 128), (127, 127, 127)),
        ("LA", (0, 0), (255, 255, 255)),
        ("LA", (40, 255), (40, 40, 40)),
    ],
)
def test_alpha_is_composited_over_white(
    tmp_path: Path, mode: str, colour: tuple[int, ...], expected: tuple[int, int, int]
) -> None:
    path = saved(Image.new(mode, (3, 3), colour), tmp_path / "alpha.png")
    assert rgb_at(path) == expected


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    pixels = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    path = saved(Image.fromarray(pixels), tmp_path / "g16.png")
    assert stored_mode(path).startswith("I;16")
    loaded = np.asarray(load_rgb(path))
    assert loaded[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (loaded[..., 0] == loaded[..., 2]).all()


def test_thirty_two_bit_integer_samples(tmp_path: Path) -> None:
    pixels = np.array([[0, 257, 65535]], dtype=np.int32)
    path = saved(Image.fromarray(pixels), tmp_path / "i32.tif")
    assert stored_mode(path) == "I"
    assert np.asarray(load_rgb(path))[0, :, 1].tolist() == [0, 1, 255]


def test_float_samples_in_unit_range(tmp_path: Path) -> None:
    pixels = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    path = saved(Image.fromarray(pixels), tmp_path / "f.tif")
    assert stored_mode(path) == "F"
    assert np.asarray(load_rgb(path))[0, :, 0].tolist() == [0, 128, 255]


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = saved(Image.new("CMYK", (16, 16), (255, 0, 0, 0)), tmp_path / "cmyk.jpg")
    assert stored_mode(path) == "CMYK"
    cyan = np.array(rgb_at(path, (8, 8)))
    assert np.abs(cyan - np.array([0, 255, 255])).max() <= 3


def test_one_bit(tmp_path: Path) -> None:
    image = Image.new("1", (4, 4), 0)
    image.putpixel((2, 1), 1)
    path = saved(image, tmp_path / "bw.png")
    assert rgb_at(path, (2, 1)) == (255, 255, 255)
    assert rgb_at(path, (0, 0)) == (0, 0, 0)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    stored = Image.new("RGB", (64, 32), (0, 0, 255))
    stored.paste(RED, (0, 0, 16, 16))  # a red block at the stored top-left
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # display = stored turned 90 degrees clockwise
    path = saved(stored, tmp_path / "rotated.jpg", exif=exif, quality=95)
    upright = load_rgb(path)
    assert upright.size == (32, 64)
    top_right = np.array(upright.getpixel((31 - 4, 4)))
    assert np.abs(top_right - np.array(RED)).max() <= 10


# --- encoding ------------------------------------------------------------------------------------


def test_encode_image_keeps_size_and_pixels(tmp_path: Path) -> None:
    path = saved(Image.new("LA", (8, 6), (0, 0)), tmp_path / "a.png")
    decoded = Image.open(io.BytesIO(encode_image(path)))
    assert (decoded.format, decoded.mode, decoded.size) == ("PNG", "RGB", (8, 6))
    assert decoded.getpixel((0, 0)) == (255, 255, 255)


def test_encode_image_downscales_keeping_the_aspect(tmp_path: Path) -> None:
    path = saved(Image.new("RGB", (200, 100), RED), tmp_path / "wide.png")
    decoded = Image.open(io.BytesIO(encode_image(path, max_side=50, format="jpeg")))
    assert (decoded.format, decoded.size) == ("JPEG", (50, 25))
    small = Image.open(io.BytesIO(encode_image(path, max_side=500)))
    assert small.size == (200, 100)


def test_encode_image_rejects_a_bad_max_side(tmp_path: Path) -> None:
    path = saved(Image.new("RGB", (2, 2)), tmp_path / "a.png")
    with pytest.raises(ValueError, match="max_side"):
        encode_image(path, max_side=0)


def test_encode_image_reports_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="file not found"):
        encode_image(tmp_path / "absent.png")


def test_check_image_from_many_threads(tmp_path: Path) -> None:
    paths = []
    for seed in range(4):
        path = tmp_path / f"{seed}.jpg"
        path.write_bytes(jpeg_bytes(seed=seed))
        paths.append(path)
    with ThreadPoolExecutor(max_workers=8) as pool:
        digests = list(pool.map(check_image, paths * 16))
    assert digests == [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths] * 16
