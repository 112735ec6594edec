"""Thumbnails for submission bundles: made from a run's task images, checked and re-encoded on read.

The leaderboard site shows each sample beside a small picture of its (first) image; bundles
carry these so that the site needs neither the datasets nor paths into them.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from fiqabench.benchmark.images import load_rgb
from fiqabench.benchmark.schema import Record
from fiqabench.errors import UserError
from fiqabench.tasks.registry import TaskRegistry

THUMB_MAX_SIDE = 160
THUMB_QUALITY = 80
_JPEG_MAGIC = b"\xff\xd8\xff"
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError)


def thumbnail_key(task: str, sample_id: str) -> str:
    # Task names hold no "/", so the first one separates the parts again.
    return f"{task}/{sample_id}"


def _encode(image: Image.Image) -> bytes:
    # A fresh image from the pixels alone: Pillow would otherwise write the source's comment,
    # EXIF and ICC segments back out.
    bare = Image.frombytes("RGB", image.size, image.convert("RGB").tobytes())
    buffer = io.BytesIO()
    bare.save(buffer, format="JPEG", quality=THUMB_QUALITY, optimize=True)
    return buffer.getvalue()


def make_thumbnail(path: Path) -> bytes:
    """A JPEG of the image, upright RGB, shrunk so that neither side exceeds THUMB_MAX_SIDE.

    Raises ImageError (a UserError) naming the file when it cannot be used.
    """
    image = load_rgb(path)
    image.thumbnail((THUMB_MAX_SIDE, THUMB_MAX_SIDE), Image.Resampling.LANCZOS)
    return _encode(image)


def clean_thumbnail(data: bytes) -> bytes:
    """Decode a bundle's thumbnail and encode its pixels again, dropping any metadata.

    Raises ValueError when the bytes are not a small, complete JPEG. Re-encoding means that
    whatever a submitter hid in JPEG segments (comments, EXIF, ICC) never reaches the site.
    """
    if not data.startswith(_JPEG_MAGIC):
        raise ValueError("not a JPEG file")
    try:
        image = Image.open(io.BytesIO(data), formats=["JPEG"])
    except (UnidentifiedImageError, *_DECODE_ERRORS):
        raise ValueError("not a JPEG file") from None
    with image:
        # The header gives the size, so an oversized image is refused before decoding.
        if max(image.size) > THUMB_MAX_SIDE:
            width, height = image.size
            raise ValueError(
                f"thumbnail is {width}x{height} pixels, over {THUMB_MAX_SIDE} on a side"
            )
        try:
            image.load()
            pixels = image.convert("RGB")  # decodes every scan
        except _DECODE_ERRORS as exc:
            raise ValueError(f"cannot decode the JPEG: {exc}") from None
    return _encode(pixels)


def collect_thumbnails(
    registry: TaskRegistry, records: Iterable[Record], max_images: int
) -> dict[str, bytes]:
    """Thumbnails of the records' samples by `thumbnail_key`, from the tasks' own data.

    A sample whose task, data or image is unavailable gets none. At most `max_images` distinct
    images are used, in record order, so that huge runs still make bundles of bounded size.
    """
    wanted: dict[str, list[str]] = {}
    for record in records:
        wanted.setdefault(record.task, []).append(record.sample_id)
    made: dict[Path, bytes | None] = {}
    thumbnails: dict[str, bytes] = {}
    for task_name, sample_ids in wanted.items():
        images = _first_images(registry, task_name)
        for sample_id in sample_ids:
            path = images.get(sample_id)
            if path is None:
                continue
            if path not in made:
                if len(made) >= max_images:
                    continue
                made[path] = _thumbnail_or_none(path)
            thumbnail = made[path]
            if thumbnail is not None:
                thumbnails[thumbnail_key(task_name, sample_id)] = thumbnail
    return thumbnails


def _first_images(registry: TaskRegistry, task_name: str) -> dict[str, Path]:
    try:
        task = registry.get(task_name)
        if not task.data_available():
            return {}
        samples = task.samples()
    except UserError:
        return {}
    return {s.id: s.images[0] for s in samples if s.error is None and s.images}


def _thumbnail_or_none(path: Path) -> bytes | None:
    try:
        return make_thumbnail(path)
    except UserError:
        return None
